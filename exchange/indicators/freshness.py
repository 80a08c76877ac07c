"""Freshness (the source's own change time to the registry) and timeliness (against the
update frequency the owner declared in the resource catalogue).

Freshness, per department and dataset: for each record version (not a withdrawal)
the builder applied in the period, ``applied_at - source_changed_at``, in seconds;
its median and 95th percentile (nearest rank). A version whose source sent no change
time is counted apart, never given one.

Timeliness, per catalogue resource (the owner department's versions of its dataset):
the calendar intervals of its ``update_frequency`` (UTC hours for ``realtime``, days,
ISO weeks from Monday, months, quarters, years) that lie wholly inside the period,
and how many of them received at least one applied version; and, at the period's
end, the age of the newest version applied before it, against the frequency's
nominal interval (an hour, a day, 7, 31, 92 or 366 days).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.core.models import CatalogueResource, RecordVersion, SourceRecord
from exchange.indicators.figures import Freshness, Timeliness
from exchange.indicators.percentiles import p50_p95
from exchange.indicators.period import Period, Scope

# The longest interval of each frequency: data older than this at the period's end is late.
NOMINAL = {
    "realtime": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "yearly": timedelta(days=366),
}


def freshness(session: Session, period: Period, scope: Scope) -> list[Freshness]:
    """One row per (department, dataset) with versions applied in the period."""
    stmt = (
        select(
            SourceRecord.department,
            SourceRecord.dataset,
            RecordVersion.source_changed_at,
            RecordVersion.applied_at,
        )
        .select_from(RecordVersion)
        .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
        .where(
            RecordVersion.applied_at >= period.start,
            RecordVersion.applied_at < period.end,
            RecordVersion.deleted.is_(False),
        )
    )
    if scope.department is not None:
        stmt = stmt.where(SourceRecord.department == scope.department)
    if scope.dataset is not None:
        stmt = stmt.where(SourceRecord.dataset == scope.dataset)
    lags: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    unknown: defaultdict[tuple[str, str], int] = defaultdict(int)
    ahead: defaultdict[tuple[str, str], int] = defaultdict(int)
    for department, dataset, changed, applied in session.execute(stmt):
        key = (department, dataset)
        if applied is None:
            continue  # the query asks for an applied time: never here
        if changed is None:
            unknown[key] += 1
            lags.setdefault(key, [])
        elif changed > applied:
            # The source's clock ahead of the exchange's, or a change time set to come: no
            # lag to measure, and left out of the percentiles (a department cannot make its
            # data look fresher by dating it in the future); counted apart.
            ahead[key] += 1
            lags.setdefault(key, [])
        else:
            lags[key].append((applied - changed).total_seconds())
    rows = []
    for key in sorted(lags):
        p50, p95 = p50_p95(lags[key])
        rows.append(
            Freshness(
                department=key[0],
                dataset=key[1],
                versions=len(lags[key]) + unknown[key] + ahead[key],
                with_change_time=len(lags[key]) + ahead[key],
                without_change_time=unknown[key],
                change_time_ahead=ahead[key],
                p50_s=p50,
                p95_s=p95,
            )
        )
    return rows


def _floor(moment: datetime, frequency: str) -> datetime:
    """The start of the calendar interval of ``frequency`` holding ``moment`` (UTC)."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    if frequency == "realtime":
        return hour
    if frequency == "daily":
        return day
    if frequency == "weekly":
        return day - timedelta(days=day.weekday())
    if frequency == "monthly":
        return day.replace(day=1)
    if frequency == "quarterly":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)  # yearly


def _next(start: datetime, frequency: str) -> datetime:
    """The start of the interval after the one starting at ``start``."""
    if frequency == "realtime":
        return start + timedelta(hours=1)
    if frequency == "daily":
        return start + timedelta(days=1)
    if frequency == "weekly":
        return start + timedelta(days=7)
    months = {"monthly": 1, "quarterly": 3}.get(frequency, 12)
    index = start.month - 1 + months
    return start.replace(year=start.year + index // 12, month=index % 12 + 1)


def intervals(frequency: str, period: Period) -> list[tuple[datetime, datetime]]:
    """The calendar intervals of ``frequency`` wholly inside ``period``, in order."""
    if frequency not in NOMINAL:
        return []
    start = _floor(period.start, frequency)
    if start < period.start:
        start = _next(start, frequency)
    found = []
    while (end := _next(start, frequency)) <= period.end:
        found.append((start, end))
        start = end
    return found


def timeliness(session: Session, period: Period, scope: Scope) -> list[Timeliness]:
    """One row per catalogue resource in scope (its owner's versions of its dataset)."""
    resources = select(
        CatalogueResource.owner_department,
        CatalogueResource.dataset,
        CatalogueResource.update_frequency,
    ).order_by(CatalogueResource.owner_department, CatalogueResource.dataset)
    if scope.department is not None:
        resources = resources.where(CatalogueResource.owner_department == scope.department)
    if scope.dataset is not None:
        resources = resources.where(CatalogueResource.dataset == scope.dataset)
    rows = []
    for owner, dataset, frequency in session.execute(resources).all():
        owned = (
            select(RecordVersion.applied_at)
            .select_from(RecordVersion)
            .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
            .where(SourceRecord.department == owner, SourceRecord.dataset == dataset)
        )
        in_period = owned.where(
            RecordVersion.applied_at >= period.start, RecordVersion.applied_at < period.end
        )
        applied = sorted(at for at in session.scalars(in_period) if at is not None)
        newest = session.scalar(
            select(func.max(RecordVersion.applied_at))
            .select_from(RecordVersion)
            .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
            .where(
                SourceRecord.department == owner,
                SourceRecord.dataset == dataset,
                RecordVersion.applied_at < period.end,
            )
        )
        expected = intervals(frequency, period)
        served = len([1 for start, end in expected if _any_within(applied, start, end)])
        age = (period.end - newest).total_seconds() if newest is not None else None
        nominal = NOMINAL.get(frequency)
        rows.append(
            Timeliness(
                department=owner,
                dataset=dataset,
                frequency=frequency,
                expected_intervals=len(expected),
                intervals_with_data=served,
                share=served / len(expected) if expected else None,
                newest_applied_at=newest,
                age_s=age,
                within_frequency=(
                    None if age is None or nominal is None else age <= nominal.total_seconds()
                ),
            )
        )
    return rows


def _any_within(ordered: list[datetime], start: datetime, end: datetime) -> bool:
    """Whether sorted ``ordered`` holds a time in ``[start, end)``."""
    at = bisect_left(ordered, start)
    return at < len(ordered) and ordered[at] < end
