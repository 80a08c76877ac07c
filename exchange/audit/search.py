"""Searching and exporting the audit log: by actor, data subject, dataset, purpose,
decision and time.

Data subjects are searched by blind index through the ``audit_subjects`` table
(the gateway turns a resident id into its blind index first). Results come in log
order (by ``seq``), a page at a time: ``after`` is the last ``seq`` already seen.
Exports stream, so a large export never sits in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from exchange.audit.log import canonical_time
from exchange.core.errors import ValidationError
from exchange.core.models import AuditEntry, AuditSubject
from exchange.core.spreadsheet import cell

MAX_PAGE = 1000
EXPORT_FORMATS = ("csv", "jsonl")
EXPORT_BATCH = 2000

# What a search result shows of an entry: every column but the chain's internals.
PUBLIC_COLUMNS = (
    "index", "seq", "at", "request_id", "actor", "department", "role", "purpose", "case_ref",
    "action", "dataset", "subjects", "fields", "decision", "reason", "status", "key_id",
    "leaf_hash",
)  # fmt: skip


@dataclass(frozen=True)
class Filters:
    """Every given filter must hold; ``since`` is inclusive, ``until`` exclusive."""

    actor: str | None = None
    subject: str | None = None
    dataset: str | None = None
    purpose: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    key_id: str | None = None

    def __post_init__(self) -> None:
        if self.decision is not None and self.decision not in ("allow", "deny"):
            raise ValidationError(
                [("decision", "decision.invalid", "decision must be allow or deny")]
            )
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))
                moment = getattr(self, name)
            try:
                if moment is not None:
                    moment.astimezone(UTC)  # as the database stores it
            except OverflowError:  # 0001-01-01T00:00+08:00, 9999-12-31T23:59-08:00
                raise ValidationError(
                    [(name, "time.invalid", f"{name} is too far in the past or the future")]
                ) from None


def _query(filters: Filters) -> Select[Any]:
    stmt = select(AuditEntry)
    if filters.subject is not None:
        stmt = stmt.join(AuditSubject, AuditSubject.seq == AuditEntry.seq).where(
            AuditSubject.subject == filters.subject
        )
    if filters.actor is not None:
        stmt = stmt.where(AuditEntry.actor == filters.actor)
    if filters.key_id is not None:
        stmt = stmt.where(AuditEntry.key_id == filters.key_id)
    if filters.dataset is not None:
        stmt = stmt.where(AuditEntry.dataset == filters.dataset)
    if filters.purpose is not None:
        stmt = stmt.where(AuditEntry.purpose == filters.purpose)
    if filters.decision is not None:
        stmt = stmt.where(AuditEntry.decision == filters.decision)
    if filters.since is not None:
        stmt = stmt.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEntry.at < filters.until)
    return stmt.order_by(AuditEntry.seq)


def search(
    session: Session, filters: Filters, *, after: int = 0, limit: int = 100
) -> list[AuditEntry]:
    """Up to ``limit`` matching entries with ``seq > after``, in log order."""
    limit = max(1, min(limit, MAX_PAGE))
    return list(session.scalars(_query(filters).where(AuditEntry.seq > after).limit(limit)))


def iter_entries(session: Session, filters: Filters) -> Iterator[AuditEntry]:
    """Every matching entry, in log order, read in batches."""
    after = 0
    while True:
        page = list(
            session.scalars(_query(filters).where(AuditEntry.seq > after).limit(EXPORT_BATCH))
        )
        yield from page
        if len(page) < EXPORT_BATCH:
            return
        after = page[-1].seq
        session.expunge_all()


def public(entry: AuditEntry) -> dict[str, Any]:
    """An entry as a search result or export row shows it (JSON-ready)."""
    return {
        "index": entry.seq - 1,
        "seq": entry.seq,
        "at": canonical_time(entry.at),
        "request_id": entry.request_id,
        "actor": entry.actor,
        "department": entry.department,
        "role": entry.role,
        "purpose": entry.purpose,
        "case_ref": entry.case_ref,
        "action": entry.action,
        "dataset": entry.dataset,
        "subjects": list(entry.subjects),
        "fields": list(entry.fields),
        "decision": entry.decision,
        "reason": entry.reason,
        "status": entry.status,
        "key_id": entry.key_id,
        "leaf_hash": entry.leaf_hash,
    }


def export(entries: Iterator[AuditEntry], fmt: str) -> Iterator[str]:
    """The entries as CSV (a header row; lists joined by ``;``; a text cell that could start
    a spreadsheet formula gets a leading ``'``) or JSON Lines, in chunks."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(
            [("format", "format.invalid", f"format must be one of {', '.join(EXPORT_FORMATS)}")]
        )
    if fmt == "jsonl":
        for entry in entries:
            yield json.dumps(public(entry), ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PUBLIC_COLUMNS)
    for n, entry in enumerate(entries, 1):
        row = public(entry)
        row["subjects"] = ";".join(row["subjects"])
        row["fields"] = ";".join(row["fields"])
        # A case reference or a reason is typed by users: never a formula in a spreadsheet.
        writer.writerow(
            [cell(v) if isinstance(v, str) else v for v in (row[c] for c in PUBLIC_COLUMNS)]
        )
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
