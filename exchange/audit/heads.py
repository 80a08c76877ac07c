"""Signed tree heads of the audit log, and the Merkle frontier that makes them cheap.

A tree head says "the first ``tree_size`` entries of the log have Merkle root
``root``" (RFC 6962 tree hash over the entries' leaf hashes), signed with the audit
log's own Ed25519 key at ``timestamp_ms``. The signed message is

    b"exchange.audit.tree-head.v1\\x00" || tree_size (8 bytes, big-endian)
        || timestamp_ms (8 bytes, big-endian) || root (32 bytes)

The key lives in the keystore under the reserved name :data:`SIGNER` (created on
first use, its private half wrapped like every department's signing key); its
public key is what auditors pin (``exchange audit public-key``).

Each head stores its *frontier*: the roots of the perfect subtrees the tree is made
of, one per set bit of ``tree_size``, largest first. They hash to the root, so the
signature covers them; the next head extends them with only the entries appended
since, so signing costs O(new entries + log n), never O(n).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction
from exchange.core.errors import AuditLogError, SignatureError, TreeHeadNotFoundError
from exchange.core.models import AuditEntry, AuditTip, AuditTreeHead, SigningKeyRecord
from exchange.security import crypto, merkle

if TYPE_CHECKING:
    from exchange.security.keystore import KeyStore

log = logging.getLogger(__name__)

SIGNER = "_audit_log"  # the keystore name of the audit log's signing key
HEAD_DOMAIN = b"exchange.audit.tree-head.v1\x00"


class Frontier:
    """The perfect-subtree roots of a Merkle tree of ``size`` leaves, largest first."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} subtrees")
        self.size = size
        # (height, root) pairs; heights follow from the set bits of size.
        heights = [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]
        self._nodes: list[tuple[int, bytes]] = list(zip(heights, nodes, strict=True))

    @property
    def nodes(self) -> list[bytes]:
        return [node for _, node in self._nodes]

    def subtrees(self) -> list[tuple[int, int, bytes]]:
        """``(first leaf, leaf count, root)`` of each perfect subtree, left to right."""
        out, start = [], 0
        for height, node in self._nodes:
            out.append((start, 1 << height, node))
            start += 1 << height
        return out

    def append(self, leaf: bytes) -> None:
        nodes = self._nodes
        height, node = 0, leaf
        while nodes and nodes[-1][0] == height:
            node = merkle.node_hash(nodes.pop()[1], node)
            height += 1
        nodes.append((height, node))
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The RFC 6962 tree hash: the subtree roots joined from the right."""
        if not self._nodes:
            return merkle.EMPTY_ROOT
        acc = self._nodes[-1][1]
        for _, node in reversed(self._nodes[:-1]):
            acc = merkle.node_hash(node, acc)
        return acc

    def copy(self) -> Frontier:
        return Frontier(self.size, self.nodes)


@dataclass(frozen=True)
class TreeHead:
    """A signed tree head; hashes and the signature as lowercase hex."""

    tree_size: int
    root: str
    timestamp_ms: int
    key_id: str
    signature: str

    def message(self) -> bytes:
        return head_message(self.tree_size, self.timestamp_ms, bytes.fromhex(self.root))

    def verify(self, public_keys: dict[str, bytes]) -> bool:
        """Whether the signature is good under the key it names, among ``public_keys``."""
        public = public_keys.get(self.key_id)
        if public is None:
            return False
        try:
            crypto.verify(public, self.message(), bytes.fromhex(self.signature))
        except (SignatureError, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root,
            "timestamp_ms": self.timestamp_ms,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def head_message(tree_size: int, timestamp_ms: int, root: bytes) -> bytes:
    return HEAD_DOMAIN + tree_size.to_bytes(8, "big") + timestamp_ms.to_bytes(8, "big") + root


def _head(row: AuditTreeHead) -> TreeHead:
    return TreeHead(row.tree_size, row.root, row.timestamp_ms, row.key_id, row.signature)


def frontier_of(row: AuditTreeHead | None) -> Frontier:
    if row is None:
        return Frontier()
    return Frontier(row.tree_size, [bytes.fromhex(n) for n in row.frontier])


def latest(session: Session) -> TreeHead | None:
    row = session.scalar(select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(1))
    return None if row is None else _head(row)


def at_size(session: Session, tree_size: int) -> TreeHead:
    row = session.get(AuditTreeHead, tree_size)
    if row is None:
        raise TreeHeadNotFoundError(f"no signed tree head has tree size {tree_size}")
    return _head(row)


def all_heads(session: Session) -> list[tuple[TreeHead, list[bytes]]]:
    """Every stored head with its frontier, by tree size."""
    rows = session.scalars(select(AuditTreeHead).order_by(AuditTreeHead.tree_size))
    return [(_head(r), [bytes.fromhex(n) for n in r.frontier]) for r in rows]


def public_keys(session: Session) -> dict[str, bytes]:
    """The audit log's public keys (current and retired) by key id, as stored."""
    rows = session.execute(
        select(SigningKeyRecord.key_id, SigningKeyRecord.public_key)
        .where(SigningKeyRecord.department == SIGNER)
        .order_by(SigningKeyRecord.generation)
    ).all()
    return {str(k): bytes(v) for k, v in rows}


def sign(
    sessions: sessionmaker[Session], keystore: KeyStore, *, now_ms: int | None = None
) -> TreeHead | None:
    """Sign a head over every entry committed so far; the latest head if nothing was added
    since it, None if the log is empty. Safe to call from several processes at once."""
    with sessions() as session:
        last_size = session.scalar(select(func.max(AuditTreeHead.tree_size))) or 0
        tip_size = session.scalar(select(AuditTip.size).where(AuditTip.id == 1)) or 0
    if tip_size == 0:
        return None
    # Before our transaction, which it must not wait for: the keystore writes on first use.
    key_id, private = keystore.signing_key(SIGNER) if tip_size > last_size else ("", b"")
    with transaction(sessions) as session:
        last = session.scalar(
            select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(1)
        )
        size = session.scalar(select(AuditTip.size).where(AuditTip.id == 1)) or 0
        if last is not None and last.tree_size >= size:
            return _head(last)
        if size == 0 or not private:  # emptied meanwhile (verify will say), or nothing new
            return None if last is None else _head(last)
        frontier = frontier_of(last)
        leaves = session.scalars(
            select(AuditEntry.leaf_hash)
            .where(AuditEntry.seq > frontier.size, AuditEntry.seq <= size)
            .order_by(AuditEntry.seq)
        ).all()
        if len(leaves) != size - frontier.size:
            raise AuditLogError(
                f"the audit log's tip says {size} entries but entries {frontier.size + 1} to "
                f"{size} are not all there; run `exchange audit verify`"
            )
        frontier.extend(bytes.fromhex(leaf) for leaf in leaves)
        root = frontier.root()
        stamp = now_ms if now_ms is not None else int(time.time() * 1000)
        signature = crypto.sign(private, head_message(size, stamp, root))
        row = AuditTreeHead(
            tree_size=size,
            root=root.hex(),
            timestamp_ms=stamp,
            key_id=key_id,
            signature=signature.hex(),
            frontier=[n.hex() for n in frontier.nodes],
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            # Another process signed this very size first: its head is as good as ours.
            session.rollback()
            return at_size(session, size)
        head = _head(row)
    log.info("signed audit tree head: size %d, root %s", head.tree_size, head.root)
    return head
