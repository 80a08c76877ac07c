"""Sharing-request turnaround: from a consuming department's submission to the owner's
decision, per owner department and dataset.

Decided in the period: requests approved, narrowed or refused with ``decided_at`` in
it (a withdrawn request was not decided by the owner). Open at the period's end:
submitted before it and not decided before it (withdrawn requests aside). Scope: a
department sees the requests to its own datasets.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import SharingRequest
from exchange.indicators.figures import Turnaround
from exchange.indicators.percentiles import p50_p95
from exchange.indicators.period import Period, Scope

DECIDED = ("approved", "narrowed", "refused")


def turnaround(session: Session, period: Period, scope: Scope) -> list[Turnaround]:
    """One row per (owner department, dataset) with a request decided or open."""
    stmt = select(
        SharingRequest.owner_department,
        SharingRequest.dataset,
        SharingRequest.status,
        SharingRequest.submitted_at,
        SharingRequest.decided_at,
    ).where(SharingRequest.submitted_at < period.end, SharingRequest.status != "withdrawn")
    if scope.department is not None:
        stmt = stmt.where(SharingRequest.owner_department == scope.department)
    if scope.dataset is not None:
        stmt = stmt.where(SharingRequest.dataset == scope.dataset)
    durations: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    outcomes: defaultdict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys((*DECIDED, "open"), 0)
    )
    for owner, dataset, status, submitted, decided in session.execute(stmt):
        key = (owner, dataset)
        if decided is None or decided >= period.end:
            outcomes[key]["open"] += 1
        elif decided >= period.start and status in DECIDED:
            outcomes[key][status] += 1
            durations[key].append((decided - submitted).total_seconds())
    rows = []
    for key in sorted(outcomes):
        counts = outcomes[key]
        if not any(counts.values()):
            continue  # decided before the period: nothing to say about it
        p50, p95 = p50_p95(durations[key])
        rows.append(
            Turnaround(
                department=key[0],
                dataset=key[1],
                decided=len(durations[key]),
                approved=counts["approved"],
                narrowed=counts["narrowed"],
                refused=counts["refused"],
                open=counts["open"],
                p50_s=p50,
                p95_s=p95,
            )
        )
    return rows
