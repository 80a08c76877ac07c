"""Appending to the audit log: every gateway decision, before the response is sent.

Each entry is a leaf of a Merkle tree in the manner of RFC 6962: its *canonical
encoding* (:func:`row_content`, sorted-key compact JSON of the entry with its
``seq``) is hashed as a leaf (``SHA-256(0x00 || encoding)``), and the tree over the
leaves is signed periodically (:mod:`exchange.audit.heads`). Entries are also
hash-linked, ``entry_hash = SHA-256(prev_hash || encoding)``, so that a change
between two signed heads is still found at the entry where it was made.

Appends serialise on the one-row ``audit_tip`` table, updated first in the
caller's transaction: a row lock on PostgreSQL, the write lock on SQLite. The
caller commits, or the request fails closed. Entries hold no plaintext personal
data; data subjects appear as blind indexes.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from exchange.core.errors import AuditLogError
from exchange.core.models import AuditEntry, AuditSubject, AuditTip
from exchange.security import merkle

GENESIS = "0" * 64
REASON_MAX = 500
KEY_ID_MAX = 64
# The columns the canonical encoding covers, in the order the table declares them.
CONTENT_COLUMNS = (
    "seq", "at", "request_id", "actor", "department", "role", "purpose", "case_ref",
    "action", "dataset", "subjects", "fields", "decision", "reason", "status", "key_id",
    "latency_ms",
)  # fmt: skip
# Columns added after entries were first written: in the encoding only when set, so that
# the entries written before them keep the encoding (and hashes) they were written with.
OPTIONAL_COLUMNS = ("key_id", "latency_ms")


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
    # The id of the API key (or OIDC subject) the request presented, never its secret: set
    # on refused credentials too, so that a replayed revoked key can be traced.
    key_id: str | None = None
    # Milliseconds from the request's arrival to its answer starting (set by the gateway;
    # the sharing indicators' query latency). Covered by the hashes when set.
    latency_ms: int | None = None


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def row_content(row: Mapping[str, Any]) -> bytes:
    """The canonical encoding of an entry given as a mapping of its columns: compact JSON,
    keys sorted, UTF-8 (``json.dumps(body, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``), with ``at`` as UTC ISO 8601 with microseconds."""
    return encode(row, canonical_time(row["at"]))


_STRING_KEYS = (
    "action", "actor", "case_ref", "dataset", "decision", "department", "purpose", "reason",
    "request_id", "role",
)  # fmt: skip


def encode(row: Mapping[str, Any], at: str) -> bytes:
    """:func:`row_content` with ``at`` already in its canonical form.

    Built by hand, since verifying a million entries spends most of its time here; the
    result is byte for byte what ``json.dumps`` gives (a test holds it to that), and any
    value of an unexpected type takes ``json.dumps`` itself.
    """
    subjects, fields, seq, status = row["subjects"], row["fields"], row["seq"], row["status"]
    key_id, latency = row.get("key_id"), row.get("latency_ms")
    if (
        type(seq) is int
        and type(status) is int
        and type(subjects) is list
        and type(fields) is list
        and (latency is None or type(latency) is int)
    ):
        try:  # _quote raises TypeError for anything but a string
            q = [_NULL if (v := row[k]) is None else _quote(v) for k in _STRING_KEYS]
            text = (
                f'{{"action":{q[0]},"actor":{q[1]},"at":{_quote(at)},"case_ref":{q[2]},'
                f'"dataset":{q[3]},"decision":{q[4]},"department":{q[5]},'
                f'"fields":[{",".join(map(_quote, fields))}],'
                + ("" if key_id is None else f'"key_id":{_quote(key_id)},')
                + ("" if latency is None else f'"latency_ms":{latency},')
                + f'"purpose":{q[6]},"reason":{q[7]},'
                f'"request_id":{q[8]},"role":{q[9]},"seq":{seq},"status":{status},'
                f'"subjects":[{",".join(map(_quote, subjects))}]}}'
            )
            return text.encode()
        except TypeError:
            pass
    return reference_encoding(row, at)


def reference_encoding(row: Mapping[str, Any], at: str) -> bytes:
    """The definition the canonical encoding follows (slower; used for odd values)."""
    body = {
        k: row.get(k)
        for k in CONTENT_COLUMNS
        if k not in ("at", "subjects", "fields")
        and not (k in OPTIONAL_COLUMNS and row.get(k) is None)
    }
    body |= {"at": at, "subjects": list(row["subjects"]), "fields": list(row["fields"])}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_NULL = "null"
_quote = json.encoder.encode_basestring  # what json.dumps uses with ensure_ascii=False


def content(entry: AuditEntry) -> bytes:
    """The canonical encoding of a stored entry (what its leaf hash and chain hash cover)."""
    return row_content({c: getattr(entry, c) for c in CONTENT_COLUMNS})


def leaf_hex(encoding: bytes) -> str:
    return merkle.leaf_hash(encoding).hex()


def chain_hex(prev_hash: str, encoding: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + encoding).hexdigest()


_ENTRIES = cast(Table, AuditEntry.__table__)
_SUBJECTS = cast(Table, AuditSubject.__table__)
_TIP = cast(Table, AuditTip.__table__)
# Built once: an append runs these thousands of times a second.
_TAKE_TIP = (
    update(_TIP)
    .where(_TIP.c.id == 1)
    .values(size=_TIP.c.size + bindparam("count"))
    .returning(_TIP.c.size, _TIP.c.entry_hash)
)
_INSERT_ENTRY = insert(_ENTRIES)
_INSERT_SUBJECTS = insert(_SUBJECTS)
_SET_TIP_HASH = update(_TIP).where(_TIP.c.id == 1).values(entry_hash=bindparam("hash"))


@dataclass(frozen=True)
class Appended:
    """What :func:`append` stored: the entry's position and hashes."""

    seq: int
    entry_hash: str
    leaf_hash: str

    @property
    def index(self) -> int:
        """The entry's Merkle leaf index (0-based)."""
        return self.seq - 1


def entry_values(seq: int, prev_hash: str, decision: Decision, at: datetime) -> dict[str, Any]:
    """The row that :func:`append` stores for ``decision`` at ``seq`` after ``prev_hash``."""
    values: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "request_id": decision.request_id,
        "actor": decision.actor,
        "department": decision.department,
        "role": decision.role,
        "purpose": decision.purpose,
        "case_ref": decision.case_ref,
        "action": decision.action,
        "dataset": decision.dataset,
        "subjects": list(decision.subjects),
        "fields": list(decision.fields),
        "decision": decision.decision,
        "reason": decision.reason[:REASON_MAX],
        "status": decision.status,
        "key_id": decision.key_id[:KEY_ID_MAX] if decision.key_id is not None else None,
        "latency_ms": decision.latency_ms,
    }
    encoding = row_content(values)
    values["prev_hash"] = prev_hash
    values["entry_hash"] = chain_hex(prev_hash, encoding)
    values["leaf_hash"] = leaf_hex(encoding)
    return values


def append(session: Session, decision: Decision, *, at: datetime) -> Appended:
    """Append one entry in the caller's transaction (the caller commits or fails closed).

    Raises AuditLogError if the log's tip row is missing; database errors propagate.
    """
    return append_many(session, [(decision, at)])[0]


def append_many(session: Session, batch: Sequence[tuple[Decision, datetime]]) -> list[Appended]:
    """Append several entries, in the order given, in the caller's transaction: the tip
    is taken once and the rows go in one statement each for entries and subjects (what
    group commit, :mod:`exchange.audit.group`, uses). The entries are exactly those that
    :func:`append` would store one after another.

    Raises AuditLogError if the log's tip row is missing; database errors propagate.
    """
    if not batch:
        return []
    conn = session.connection()
    # Taking the tip first serialises appenders: a second one waits here until the first
    # commits, then reads the size and hash the first one left.
    tip = conn.execute(_TAKE_TIP, {"count": len(batch)}).one_or_none()
    if tip is None:
        raise AuditLogError("the audit log has no tip row; run `exchange audit verify`")
    first, prev_hash = int(tip[0]) - len(batch) + 1, str(tip[1])
    rows: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    appended: list[Appended] = []
    for seq, (decision, at) in enumerate(batch, start=first):
        values = entry_values(seq, prev_hash, decision, at)
        rows.append(values)
        # each subject once per entry, in order
        subjects.extend({"subject": s, "seq": seq} for s in dict.fromkeys(values["subjects"]))
        prev_hash = values["entry_hash"]
        appended.append(Appended(seq, prev_hash, values["leaf_hash"]))
    conn.execute(_INSERT_ENTRY, rows)
    if subjects:
        conn.execute(_INSERT_SUBJECTS, subjects)
    conn.execute(_SET_TIP_HASH, {"hash": prev_hash})
    return appended


def size(session: Session) -> int:
    """How many entries the log holds, by its tip."""
    value = session.scalar(select(_TIP.c.size).where(_TIP.c.id == 1))
    return int(value or 0)
