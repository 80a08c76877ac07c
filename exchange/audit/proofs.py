"""Inclusion and consistency proofs of the audit log, against its signed tree heads.

A proof is only worth something against a root the auditor trusts, so both kinds
are given for tree sizes that have a signed head, and come with that head. Leaf
hashes are read from storage; computing a proof costs O(tree size) hashes (the
subtree roots of the path), which is fine for an auditor's request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.audit import heads
from exchange.audit.heads import TreeHead
from exchange.audit.log import content
from exchange.core.errors import (
    AuditLogError,
    NotFoundError,
    TreeHeadNotFoundError,
    ValidationError,
)
from exchange.core.models import AuditEntry
from exchange.security import merkle


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``index`` (0-based; its ``seq`` is ``index + 1``) is in the tree of ``head``."""

    index: int
    leaf_hash: str
    entry: str  # the canonical encoding the leaf hash covers: SHA-256(0x00 || entry)
    path: list[str]
    head: TreeHead


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``second`` extends the tree of ``first`` without changing an entry."""

    first: TreeHead
    second: TreeHead
    path: list[str]


def _leaves(session: Session, size: int) -> list[bytes]:
    rows = session.scalars(
        select(AuditEntry.leaf_hash).where(AuditEntry.seq <= size).order_by(AuditEntry.seq)
    ).all()
    if len(rows) != size:
        raise AuditLogError(
            f"the log holds {len(rows)} of the first {size} entries; run `exchange audit verify`"
        )
    return [bytes.fromhex(r) for r in rows]


def _head(session: Session, tree_size: int | None) -> TreeHead:
    if tree_size is None:
        head = heads.latest(session)
        if head is None:
            raise TreeHeadNotFoundError("the audit log has no signed tree head yet")
        return head
    return heads.at_size(session, tree_size)


def inclusion(session: Session, index: int, tree_size: int | None = None) -> InclusionProof:
    """The audit path of entry ``index`` in the signed head of ``tree_size`` (default latest)."""
    head = _head(session, tree_size)
    if not 0 <= index < head.tree_size:
        raise NotFoundError(
            f"entry {index} is not in the tree of {head.tree_size} entries (indexes start at 0)"
        )
    entry = session.get(AuditEntry, index + 1)
    if entry is None:
        raise AuditLogError(f"entry {index} is missing; run `exchange audit verify`")
    path = merkle.inclusion_proof(_leaves(session, head.tree_size), index)
    return InclusionProof(
        index=index,
        leaf_hash=entry.leaf_hash,
        entry=content(entry).decode(),
        path=[p.hex() for p in path],
        head=head,
    )


def consistency(session: Session, first: int, second: int) -> ConsistencyProof:
    """Proof that the signed head of size ``second`` extends the one of size ``first``."""
    if first > second:
        raise ValidationError(
            [("first", "proof.order", f"tree size {first} is larger than {second}")]
        )
    old, new = heads.at_size(session, first), heads.at_size(session, second)
    path = merkle.consistency_proof(_leaves(session, second), first)
    return ConsistencyProof(first=old, second=new, path=[p.hex() for p in path])
