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

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import AuditEntry, CatalogueResource
from exchange.indicators.figures import Latency, Requests
from exchange.indicators.percentiles import p50_p95
from exchange.indicators.period import Period, Scope

Row = tuple[str | None, str, str, str | None, str, int | None]


def _rows(session: Session, period: Period, scope: Scope) -> list[Row]:
    """(department, action, purpose, dataset, decision, latency_ms) of the data requests
    in the period and scope."""
    stmt = select(
        AuditEntry.department,
        AuditEntry.action,
        AuditEntry.purpose,
        AuditEntry.dataset,
        AuditEntry.decision,
        AuditEntry.latency_ms,
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
    rows: list[Row] = []
    for department, action, purpose, dataset, decision, latency in session.execute(stmt):
        named = set((dataset or "").split(","))
        if scope.dataset is not None and scope.dataset not in named:
            continue
        if scope.department is not None and department != scope.department and not named & owned:
            continue
        rows.append((department, action, purpose or "", dataset, decision, latency))
    return rows


def requests(
    session: Session, period: Period, scope: Scope
) -> tuple[list[Requests], list[Latency]]:
    """Served and refused by (department, purpose, dataset); latency overall and by action."""
    rows = _rows(session, period, scope)
    groups: defaultdict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row[0] or "", row[2], row[3] or "")].append(row)
    served = []
    for (department, purpose, dataset), members in sorted(groups.items()):
        p50, p95 = p50_p95(r[5] for r in members if r[5] is not None)
        served.append(
            Requests(
                department=department or None,
                purpose=purpose,
                dataset=dataset or None,
                served=sum(1 for r in members if r[4] == "allow"),
                refused=sum(1 for r in members if r[4] != "allow"),
                latency_p50_ms=p50,
                latency_p95_ms=p95,
            )
        )
    by_action: defaultdict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_action[row[1]].append(row)
    latency = [_latency(None, rows)] + [
        _latency(action, members) for action, members in sorted(by_action.items())
    ]
    return served, latency


def _latency(action: str | None, rows: list[Row]) -> Latency:
    known = [r[5] for r in rows if r[5] is not None]
    p50, p95 = p50_p95(known)
    return Latency(
        action=action,
        requests=len(rows),
        without_latency=len(rows) - len(known),
        p50_ms=p50,
        p95_ms=p95,
    )
