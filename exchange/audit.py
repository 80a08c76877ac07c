"""The audit log: every gateway decision, appended before the response is sent.

Entries are hash-linked: ``entry_hash = SHA-256(prev_hash || canonical JSON of the
entry)``, so editing, deleting, inserting or reordering a stored entry breaks the
chain at that point, which :func:`verify` reports. Entries hold no plaintext
personal data; data subjects appear as blind indexes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.models import AuditEntry

GENESIS = "0" * 64


@dataclass
class Decision:
    """What the gateway decided about one request."""

    request_id: str
    action: str
    decision: str  # "allow" or "deny"
    reason: str
    status: int
    actor: str | None = None
    department: str | None = None
    role: str | None = None
    purpose: str | None = None
    case_ref: str | None = None
    dataset: str | None = None
    subjects: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


def _content(entry: AuditEntry) -> bytes:
    body = {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
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
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _chain(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + _content(entry)).hexdigest()


def append(session: Session, decision: Decision, *, at: datetime) -> AuditEntry:
    """Append one entry in the caller's transaction (the caller commits or fails closed)."""
    last = session.scalar(
        select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1).with_for_update()
    )
    prev_hash = last.entry_hash if last else GENESIS
    entry = AuditEntry(
        seq=(last.seq + 1) if last else 1,
        at=at,
        request_id=decision.request_id,
        actor=decision.actor,
        department=decision.department,
        role=decision.role,
        purpose=decision.purpose,
        case_ref=decision.case_ref,
        action=decision.action,
        dataset=decision.dataset,
        subjects=list(decision.subjects),
        fields=list(decision.fields),
        decision=decision.decision,
        reason=decision.reason[:500],
        status=decision.status,
        prev_hash=prev_hash,
    )
    entry.entry_hash = _chain(prev_hash, entry)
    session.add(entry)
    session.flush()
    return entry


def verify(session: Session) -> int | None:
    """Recompute the chain; return the first bad sequence number, or None if intact."""
    prev_hash = GENESIS
    expected_seq = 1
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        if entry.seq != expected_seq or entry.prev_hash != prev_hash:
            return expected_seq
        if _chain(prev_hash, entry) != entry.entry_hash:
            return entry.seq
        prev_hash = entry.entry_hash
        expected_seq += 1
    return None
