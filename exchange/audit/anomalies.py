"""Anomaly flags for auditors: patterns in the audit log worth a human look.

Five kinds, each explained by its numbers so an auditor can judge it:

- ``volume``: an actor accessed more distinct data subjects within one clock hour
  than ``audit.volume_per_hour``;
- ``off_hours``: an actor accessed personal records (entries with data subjects,
  allowed) outside ``audit.office_hours`` (Monday to Friday, in ``audit.timezone``);
  one flag per actor and day;
- ``denial_burst``: an actor was denied ``audit.denial_burst`` times within
  ``audit.denial_window_s`` seconds; one flag per burst;
- ``no_case_ref``: an actor accessed personal records without a case reference;
  one flag per actor and day;
- ``auth_failures``: ``audit.auth_failure_burst`` failed authentications (entries
  answered 401) within ``audit.auth_failure_window_s`` seconds, by one actor or, for
  callers not identified (unknown or malformed keys, no key), by all of them together
  under the actor ``(unidentified)``; one flag per burst. Requests the gateway refused
  before authentication (the per-address limit) leave no entry: the metric
  ``exchange_gateway_auth_throttled_total`` counts them.

The scan reads the entries of the asked period once (default: the last 30 days).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.config import AuditSettings
from exchange.core.models import AuditEntry

DEFAULT_PERIOD = timedelta(days=30)
UNIDENTIFIED = "(unidentified)"  # the actor of failed authentications that named no one
SAMPLE = 20  # seqs shown per flag


@dataclass
class Anomaly:
    kind: str
    actor: str
    start: datetime
    end: datetime
    count: int
    detail: str
    seqs: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    seq: int
    at: datetime
    actor: str
    decision: str
    case_ref: str | None
    subjects: tuple[str, ...]
    status: int = 0


def _office(settings: AuditSettings) -> tuple[time, time]:
    start, end = settings.office_hours.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def scan(
    session: Session,
    settings: AuditSettings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Anomaly]:
    """The anomalies of ``[since, until)`` (default: the 30 days before now), by start time."""
    until = until or datetime.now(UTC)
    since = since or until - DEFAULT_PERIOD
    stmt = (
        select(
            AuditEntry.seq,
            AuditEntry.at,
            AuditEntry.actor,
            AuditEntry.decision,
            AuditEntry.case_ref,
            AuditEntry.subjects,
            AuditEntry.status,
        )
        .where(AuditEntry.at >= since, AuditEntry.at < until)
        .order_by(AuditEntry.seq)
    )
    every = [
        _Row(seq, at, actor or "", decision, case_ref, tuple(subjects), status)
        for seq, at, actor, decision, case_ref, subjects, status in session.execute(stmt)
    ]
    rows = [r for r in every if r.actor]
    found = [
        *_auth_failures(
            every, settings.auth_failure_burst, timedelta(seconds=settings.auth_failure_window_s)
        ),
        *_volume(rows, settings.volume_per_hour),
        *_off_hours(rows, ZoneInfo(settings.timezone), *_office(settings)),
        *_denial_bursts(rows, settings.denial_burst, timedelta(seconds=settings.denial_window_s)),
        *_no_case_ref(rows, ZoneInfo(settings.timezone)),
    ]
    return sorted(found, key=lambda a: (a.start, a.kind, a.actor))


def _record_access(row: _Row) -> bool:
    return row.decision == "allow" and bool(row.subjects)


def _volume(rows: Iterable[_Row], limit: int) -> list[Anomaly]:
    hours: dict[tuple[str, datetime], list[_Row]] = defaultdict(list)
    for row in rows:
        if row.subjects:
            hour = row.at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            hours[(row.actor, hour)].append(row)
    out = []
    for (actor, hour), group in hours.items():
        subjects = {s for r in group for s in r.subjects}
        if len(subjects) > limit:
            out.append(
                Anomaly(
                    "volume",
                    actor,
                    hour,
                    hour + timedelta(hours=1),
                    len(subjects),
                    f"{len(subjects)} data subjects in one hour (limit {limit})",
                    [r.seq for r in group[:SAMPLE]],
                )
            )
    return out


def _by_actor_day(rows: Iterable[_Row], zone: ZoneInfo) -> dict[tuple[str, str], list[_Row]]:
    days: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for row in rows:
        days[(row.actor, row.at.astimezone(zone).date().isoformat())].append(row)
    return days


def _day_flag(kind: str, actor: str, group: list[_Row], detail: str) -> Anomaly:
    return Anomaly(
        kind,
        actor,
        group[0].at,
        group[-1].at,
        len(group),
        detail,
        [r.seq for r in group[:SAMPLE]],
    )


def _off_hours(rows: Iterable[_Row], zone: ZoneInfo, opens: time, closes: time) -> list[Anomaly]:
    def outside(at: datetime) -> bool:
        local = at.astimezone(zone)
        return local.weekday() >= 5 or not opens <= local.time() < closes

    flagged = [r for r in rows if _record_access(r) and outside(r.at)]
    return [
        _day_flag(
            "off_hours",
            actor,
            group,
            f"{len(group)} record accesses outside office hours on {day} "
            f"({opens:%H:%M}-{closes:%H:%M} Mon-Fri, {zone.key})",
        )
        for (actor, day), group in _by_actor_day(flagged, zone).items()
    ]


def _no_case_ref(rows: Iterable[_Row], zone: ZoneInfo) -> list[Anomaly]:
    flagged = [r for r in rows if _record_access(r) and not (r.case_ref or "").strip()]
    return [
        _day_flag(
            "no_case_ref",
            actor,
            group,
            f"{len(group)} record accesses without a case reference on {day}",
        )
        for (actor, day), group in _by_actor_day(flagged, zone).items()
    ]


def _auth_failures(rows: Iterable[_Row], burst: int, window: timedelta) -> list[Anomaly]:
    failed = [
        _Row(r.seq, r.at, r.actor or UNIDENTIFIED, r.decision, r.case_ref, r.subjects, r.status)
        for r in rows
        if r.status == 401
    ]
    found = _bursts(failed, "auth_failures", burst, window)
    for anomaly in found:
        anomaly.detail = (
            f"{anomaly.count} failed authentications, at least {burst} within "
            f"{int(window.total_seconds())} s"
        )
    return found


def _denial_bursts(rows: Iterable[_Row], burst: int, window: timedelta) -> list[Anomaly]:
    found = _bursts([r for r in rows if r.decision == "deny"], "denial_burst", burst, window)
    for anomaly in found:
        anomaly.detail = f"{anomaly.count} denials, at least {burst} within " + (
            f"{int(window.total_seconds())} s"
        )
    return found


def _bursts(rows: Iterable[_Row], kind: str, burst: int, window: timedelta) -> list[Anomaly]:
    """One flag per burst of ``rows`` (already chosen) of one actor: ``burst`` or more
    within ``window``, extended while they keep coming within ``window`` of the last."""
    recent: dict[str, deque[_Row]] = defaultdict(deque)
    open_burst: dict[str, Anomaly] = {}
    out = []
    for row in rows:
        queue = recent[row.actor]
        queue.append(row)
        while queue and row.at - queue[0].at > window:
            queue.popleft()
        current = open_burst.get(row.actor)
        if current is not None and row.at - current.end <= window:
            current.end, current.count = row.at, current.count + 1
            if len(current.seqs) < SAMPLE:
                current.seqs.append(row.seq)
            continue
        open_burst.pop(row.actor, None)
        if len(queue) >= burst:
            anomaly = Anomaly(
                kind,
                row.actor,
                queue[0].at,
                row.at,
                len(queue),
                f"{burst} or more denials within {int(window.total_seconds())} s",
                [r.seq for r in list(queue)[:SAMPLE]],
            )
            open_burst[row.actor] = anomaly
            out.append(anomaly)
    return out
