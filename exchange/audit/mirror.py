"""The audit log's mirror to Kafka (topic ``audit.access``), as an outbox.

The request path never waits for Kafka: entries are committed to the database, and
this publisher copies them, and the signed tree heads, to the topic afterwards. The
watermark (``audit_mirror``: the last entry seq and head size acknowledged by the
broker) moves only after the broker acknowledged a batch, so nothing is lost while
Kafka is down: the publisher resumes where the watermark stands. A crash between the
acknowledgement and the watermark's commit re-sends that batch: delivery is at least
once, and a consumer de-duplicates by the message key (``entry:<seq>``,
``head:<tree size>``).

The topic has one partition, so its order is the log's order, and a head always
comes after the entries it covers. Each entry message carries the entry's canonical
encoding, so a consumer can recompute its leaf hash, and with the heads, the tree.
On PostgreSQL the watermark row is locked while a batch is published, so several
gateway processes take turns instead of sending the same entries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.audit.log import content
from exchange.core.db import transaction, utcnow
from exchange.core.models import AuditEntry, AuditMirrorState, AuditTreeHead

log = logging.getLogger(__name__)

BATCH = 2000


class _Sender(Protocol):
    def send(
        self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Any = ()
    ) -> Any: ...

    def settle(self, deliveries: Any, timeout: float = 120.0) -> None: ...


def entry_message(entry: AuditEntry) -> tuple[bytes, bytes]:
    body = {
        "type": "entry",
        "index": entry.seq - 1,
        "seq": entry.seq,
        "entry": content(entry).decode(),
        "leaf_hash": entry.leaf_hash,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }
    return f"entry:{entry.seq}".encode(), json.dumps(body, ensure_ascii=False).encode()


def head_message(head: AuditTreeHead) -> tuple[bytes, bytes]:
    body = {
        "type": "tree_head",
        "tree_size": head.tree_size,
        "root": head.root,
        "timestamp_ms": head.timestamp_ms,
        "key_id": head.key_id,
        "signature": head.signature,
    }
    return f"head:{head.tree_size}".encode(), json.dumps(body).encode()


def publish_once(
    sessions: sessionmaker[Session], producer: _Sender, topic: str, *, batch: int = BATCH
) -> int:
    """Publish the next batch of unmirrored entries and heads; how many were sent.

    Raises BrokerError (the watermark unchanged) if the broker did not acknowledge all.
    """
    with transaction(sessions) as session:
        state = session.scalar(
            select(AuditMirrorState).where(AuditMirrorState.id == 1).with_for_update()
        )
        if state is None:
            state = AuditMirrorState(id=1, entries=0, heads=0)
            session.add(state)
        entries = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > state.entries)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
        )
        upto = entries[-1].seq if entries else state.entries
        heads = list(
            session.scalars(
                select(AuditTreeHead)
                .where(AuditTreeHead.tree_size > state.heads, AuditTreeHead.tree_size <= upto)
                .order_by(AuditTreeHead.tree_size)
            )
        )
        messages: list[tuple[int, str, bytes, bytes]] = [
            (e.seq, "entry", *entry_message(e)) for e in entries
        ]
        # A head goes right after the last entry it covers.
        messages += [(h.tree_size, "tree_head", *head_message(h)) for h in heads]
        messages.sort(key=lambda m: (m[0], m[1] == "tree_head"))
        if not messages:
            return 0
        deliveries = [
            producer.send(topic, value, key=key, headers=[("type", kind.encode())])
            for _, kind, key, value in messages
        ]
        producer.settle(deliveries, timeout=60)
        state.entries = upto
        if heads:
            state.heads = heads[-1].tree_size
        state.updated_at = utcnow()
    log.debug("mirrored %d entries and %d heads to %s", len(entries), len(heads), topic)
    return len(messages)


def publish_all(
    sessions: sessionmaker[Session],
    producer: _Sender,
    topic: str,
    *,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Publish until the mirror has caught up (or ``stop()``); how many were sent."""
    total = 0
    while not stop():
        sent = publish_once(sessions, producer, topic)
        total += sent
        if sent == 0:
            break
    return total


def lag(session: Session) -> tuple[int, int]:
    """``(entries mirrored, entries in the log)``."""
    mirrored = session.scalar(select(AuditMirrorState.entries).where(AuditMirrorState.id == 1))
    from exchange.audit.log import size

    return int(mirrored or 0), size(session)
