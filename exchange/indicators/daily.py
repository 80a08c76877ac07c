"""The period day by day (UTC): record versions applied, rows and records rejected, data
requests served and refused; what the monthly report draws as timelines.

Each day is counted as its figure is over the period: a version by ``applied_at``, a
connector run's rejected rows by the run's start, a registry rejection by when the
builder decided it, a data request by its audit entry's time; with the same scope.
Every UTC day the period touches has a row, a day with nothing included (a gap shows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import ConnectorRun, RecordVersion, RegistryRejection, SourceRecord
from exchange.indicators.figures import Day
from exchange.indicators.period import Period, Scope
from exchange.indicators.requests import Asked


def days_of(period: Period) -> list[date]:
    """The UTC days ``[start, end)`` touches, in order."""
    first, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily(session: Session, period: Period, scope: Scope, asked: Iterable[Asked]) -> list[Day]:
    """One row a day of the period; ``asked``: the period's data requests (in scope)."""
    within = (RecordVersion.applied_at >= period.start, RecordVersion.applied_at < period.end)
    versions = (
        select(RecordVersion.applied_at)
        .select_from(RecordVersion)
        .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
        .where(*within)
    )
    runs = select(ConnectorRun.started_at, ConnectorRun.rejected).where(
        ConnectorRun.started_at >= period.start, ConnectorRun.started_at < period.end
    )
    refused = select(RegistryRejection.at).where(
        RegistryRejection.at >= period.start, RegistryRejection.at < period.end
    )
    if scope.department is not None:
        versions = versions.where(SourceRecord.department == scope.department)
        runs = runs.where(ConnectorRun.department == scope.department)
        refused = refused.where(RegistryRejection.department == scope.department)
    if scope.dataset is not None:
        versions = versions.where(SourceRecord.dataset == scope.dataset)
        runs = runs.where(ConnectorRun.dataset == scope.dataset)
        refused = refused.where(RegistryRejection.dataset == scope.dataset)
    applied = _per_day(at for at in session.scalars(versions) if at is not None)
    rejected: Counter[date] = Counter()
    for started, count in session.execute(runs):
        rejected[_day(started)] += int(count)
    registry = _per_day(session.scalars(refused))
    served: Counter[date] = Counter()
    denied: Counter[date] = Counter()
    for request in asked:
        (served if request.decision == "allow" else denied)[_day(request.at)] += 1
    return [
        Day(
            day=day,
            applied=applied[day],
            rejected=rejected[day],
            registry_rejected=registry[day],
            served=served[day],
            refused=denied[day],
        )
        for day in days_of(period)
    ]


def _day(at: datetime) -> date:
    return at.date()  # stored and read in UTC


def _per_day(times: Iterable[datetime]) -> Counter[date]:
    return Counter(_day(at) for at in times)
