"""Data requests served and refused, and their latency, from the audit log.

A data request is an audit entry that states a purpose (lookups, searches, linked
views): ``decision`` allow is served (an answer of 404 included: the caller was
entitled to ask), deny is refused. Grouped by the consuming department (the
caller's), the purpose and the dataset as audited. Latency is the entry's
``latency_ms`` (arrival at the gateway to the answer starting); entries written
before it was recorded are counted apart.

Scope: a department sees the requests it made and the requests for the datasets it
owns (resource catalogue); a dataset, the entries naming it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import AuditEntry, CatalogueResource
from exchange.indicators.figures import Latency, Requests
from exchange.indicators.percentiles import p50_p95
from exchange.indicators.period import Period, Scope


class Asked(NamedTuple):
    """One data request, as its audit entry records it."""

    department: str | None
    action: str
    purpose: str
    dataset: str | None
    decision: str
    latency_ms: int | None
    at: datetime


def data_requests(session: Session, period: Period, scope: Scope) -> list[Asked]:
    """The data requests (audit entries stating a purpose) in the period and scope."""
    stmt = select(
        AuditEntry.department,
        AuditEntry.action,
        AuditEntry.purpose,
        AuditEntry.dataset,
        AuditEntry.decision,
        AuditEntry.latency_ms,
        AuditEntry.at,
    ).where(
        AuditEntry.at >= period.start,
        AuditEntry.at < period.end,
        AuditEntry.purpose.is_not(None),
    )
    owned: set[str] = set()
    if scope.department is not None:
        owned = set(
            session.scalars(
                select(CatalogueResource.dataset).where(
                    CatalogueResource.owner_department == scope.department
                )
            )
        )
    rows: list[Asked] = []
    for department, action, purpose, dataset, decision, latency, at in session.execute(stmt):
        named = set((dataset or "").split(","))
        if scope.dataset is not None and scope.dataset not in named:
            continue
        if scope.department is not None and department != scope.department:
            if not named & owned:
                continue
            # Another department's request, seen by an owner: of the datasets its answer
            # drew on, only the owner's own (not which other departments' it held too).
            dataset = ",".join(sorted(named & owned))
        rows.append(Asked(department, action, purpose or "", dataset, decision, latency, at))
    return rows


def requests(
    session: Session, period: Period, scope: Scope, asked: list[Asked] | None = None
) -> tuple[list[Requests], list[Latency]]:
    """Served and refused by (department, purpose, dataset); latency overall and by action
    (``asked``: the period's data requests, if already read)."""
    rows = data_requests(session, period, scope) if asked is None else asked
    groups: defaultdict[tuple[str, str, str], list[Asked]] = defaultdict(list)
    for row in rows:
        groups[(row.department or "", row.purpose, row.dataset or "")].append(row)
    served = []
    for (department, purpose, dataset), members in sorted(groups.items()):
        p50, p95 = p50_p95(r.latency_ms for r in members if r.latency_ms is not None)
        served.append(
            Requests(
                department=department or None,
                purpose=purpose,
                dataset=dataset or None,
                served=sum(1 for r in members if r.decision == "allow"),
                refused=sum(1 for r in members if r.decision != "allow"),
                latency_p50_ms=p50,
                latency_p95_ms=p95,
            )
        )
    by_action: defaultdict[str, list[Asked]] = defaultdict(list)
    for row in rows:
        by_action[row.action].append(row)
    latency = [_latency(None, rows)] + [
        _latency(action, members) for action, members in sorted(by_action.items())
    ]
    return served, latency


def _latency(action: str | None, rows: list[Asked]) -> Latency:
    known = [r.latency_ms for r in rows if r.latency_ms is not None]
    p50, p95 = p50_p95(known)
    return Latency(
        action=action,
        requests=len(rows),
        without_latency=len(rows) - len(known),
        p50_ms=p50,
        p95_ms=p95,
    )
