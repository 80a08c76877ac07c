"""A department's withdrawn records, as the registry recorded them.

A withdrawal is a tombstone the department published (``exchange connector withdraw``,
:mod:`connectors.withdraw`); the registry builder applies it as a new version of the
record marked ``deleted`` (table ``record_versions``) and takes the record out of its
entity. Each such version is listed here: the dataset, the record's source id, when the
department withdrew it (the tombstone's ingest time) and when the registry applied it,
and whether the record is still withdrawn (a later publication brings it back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import RecordVersion, SourceRecord

MAX_WITHDRAWALS = 1000


@dataclass(frozen=True, slots=True)
class Withdrawal:
    dataset: str
    department: str
    source_id: str
    version: int
    withdrawn_at: datetime
    applied_at: datetime | None
    still_withdrawn: bool


def withdrawals(
    session: Session,
    *,
    department: str | None = None,
    dataset: str | None = None,
    limit: int = 200,
) -> list[Withdrawal]:
    """The newest withdrawals first (of ``department`` and ``dataset`` when given), at most
    ``limit`` (capped at :data:`MAX_WITHDRAWALS`)."""
    stmt = (
        select(
            SourceRecord.dataset,
            SourceRecord.department,
            SourceRecord.source_id,
            RecordVersion.version,
            RecordVersion.ingested_at,
            RecordVersion.applied_at,
            SourceRecord.deleted,
            SourceRecord.version,
        )
        .join(SourceRecord, SourceRecord.id == RecordVersion.record_id)
        .where(RecordVersion.deleted.is_(True))
    )
    if department is not None:
        stmt = stmt.where(SourceRecord.department == department)
    if dataset is not None:
        stmt = stmt.where(SourceRecord.dataset == dataset)
    stmt = stmt.order_by(RecordVersion.ingested_at.desc(), RecordVersion.id.desc()).limit(
        max(1, min(limit, MAX_WITHDRAWALS))
    )
    return [
        Withdrawal(
            dataset=ds,
            department=dept,
            source_id=source_id,
            version=int(version),
            withdrawn_at=ingested,
            applied_at=applied,
            # Still withdrawn: the record's newest version is this tombstone.
            still_withdrawn=bool(deleted) and int(current) == int(version),
        )
        for ds, dept, source_id, version, ingested, applied, deleted, current in session.execute(
            stmt
        )
    ]
