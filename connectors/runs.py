"""The stored reports of connector runs (table ``connector_runs``), as a department reads
them: each run's counts, whether they reconcile (read = published + rejected), and its
rejected rows by reason code. Written by :mod:`connectors.publisher` as a run goes; read
by ``GET /v1/connectors/runs`` and the publisher's page of the web console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import ConnectorRun

MAX_RUNS = 500


@dataclass(frozen=True, slots=True)
class Run:
    """One run's report."""

    run_id: str
    connector_id: str
    department: str
    dataset: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    read: int
    published: int
    rejected: int
    reasons: dict[str, int]

    @property
    def reconciled(self) -> bool:
        """Every row read was published or rejected (and nothing else)."""
        return self.read == self.published + self.rejected


def runs(
    session: Session,
    *,
    department: str | None = None,
    dataset: str | None = None,
    limit: int = 100,
) -> list[Run]:
    """The newest runs first (of ``department`` and ``dataset`` when given), at most
    ``limit`` (capped at :data:`MAX_RUNS`)."""
    stmt = select(ConnectorRun)
    if department is not None:
        stmt = stmt.where(ConnectorRun.department == department)
    if dataset is not None:
        stmt = stmt.where(ConnectorRun.dataset == dataset)
    stmt = stmt.order_by(ConnectorRun.started_at.desc(), ConnectorRun.run_id).limit(
        max(1, min(limit, MAX_RUNS))
    )
    return [
        Run(
            run_id=r.run_id,
            connector_id=r.connector_id,
            department=r.department,
            dataset=r.dataset,
            status=r.status,
            started_at=r.started_at,
            finished_at=r.finished_at,
            read=int(r.read or 0),
            published=int(r.published or 0),
            rejected=int(r.rejected or 0),
            reasons={str(k): int(v) for k, v in sorted((r.reasons or {}).items())},
        )
        for r in session.scalars(stmt)
    ]


def datasets(session: Session, department: str) -> list[str]:
    """The datasets ``department`` has run connectors for, in order."""
    return list(
        session.scalars(
            select(ConnectorRun.dataset)
            .where(ConnectorRun.department == department)
            .distinct()
            .order_by(ConnectorRun.dataset)
        )
    )
