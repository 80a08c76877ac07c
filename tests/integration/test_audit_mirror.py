"""The audit log's mirror to Kafka, against the real broker: every entry and signed head
reaches the topic in log order, none is lost while the broker does not acknowledge, and
the gateway's background worker mirrors what requests appended."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.audit import heads, mirror
from exchange.core.config import Settings
from exchange.core.db import transaction
from exchange.core.errors import BrokerError
from exchange.core.models import AuditEntry, AuditMirrorState
from exchange.identity.apikeys import create_key
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from exchange.local.broker import LocalKafka
from exchange.security.keystore import LocalKeyStore
from tests.support import audit as log
from tests.support.catalogue import add_grant, add_purpose
from tests.support.database import migrated
from tests.support.gateway import running_gateway
from tests.support.keys import LINKAGE_KEY, MASTER_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/registry.db") as factory:
        yield factory


def _topic() -> str:
    return f"audit.access.t{uuid.uuid4().hex[:8]}"


def _read(bootstrap: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every message of the (one-partition) topic, in order: (key, decoded value)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        out: list[tuple[str, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while consumer.position(tp) < end:
            assert time.monotonic() < deadline, "the topic did not deliver its records"
            for records in consumer.poll(timeout_ms=500).values():
                out += [(r.key.decode(), json.loads(r.value)) for r in records]
        return out
    finally:
        consumer.close()


class _Unacknowledged:
    """A sender whose broker never acknowledges (Kafka down)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, topic: str, value: bytes | None, **_: Any) -> object:
        self.sent += 1
        return object()

    def settle(self, deliveries: Any, timeout: float = 120.0) -> None:
        raise BrokerError("Kafka did not acknowledge 11 record(s): timed out")


def _watermark(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as s:
        state = s.scalar(select(AuditMirrorState))
        assert state is not None
        return state.entries, state.heads


def test_entries_and_heads_reach_the_topic_in_order_and_none_is_lost(
    kafka: LocalKafka, sessions: sessionmaker[Session]
) -> None:
    bootstrap, topic = kafka.bootstrap_servers, _topic()
    keystore = LocalKeyStore(sessions, MASTER_KEY)
    log.build(sessions, keystore, 10, head_every=10)
    ensure_topics(bootstrap, [topic], partitions=1)

    down = _Unacknowledged()
    with pytest.raises(BrokerError):
        mirror.publish_once(sessions, down, topic)
    assert down.sent == 11
    assert _watermark(sessions) == (0, 0)  # nothing counts as mirrored

    producer = Producer(bootstrap)
    try:
        assert mirror.publish_all(sessions, producer, topic) == 11
        log.build(sessions, keystore, 0)
        with transaction(sessions) as s:
            for n in range(11, 16):
                audit.append(s, log.decision(n), at=log.T0)
        heads.sign(sessions, keystore)
        assert mirror.publish_all(sessions, producer, topic) == 6
        assert mirror.publish_all(sessions, producer, topic) == 0
    finally:
        producer.close()

    messages = _read(bootstrap, topic)
    assert [k for k, _ in messages] == [
        *(f"entry:{n}" for n in range(1, 11)),
        "head:10",
        *(f"entry:{n}" for n in range(11, 16)),
        "head:15",
    ]
    assert _watermark(sessions) == (15, 15)
    with sessions() as s:
        stored = {e.seq: e.leaf_hash for e in s.scalars(select(AuditEntry))}
        latest = heads.latest(s)
    for key, body in messages:
        if body["type"] == "entry":
            # A consumer can recompute each leaf from the message alone.
            leaf = hashlib.sha256(b"\x00" + body["entry"].encode()).hexdigest()
            assert leaf == body["leaf_hash"] == stored[body["seq"]], key
    assert latest is not None
    assert messages[-1][1] | {"type": None} == latest.as_dict() | {"type": None}


def test_the_gateway_mirrors_what_its_requests_appended(
    kafka: LocalKafka, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    topic = _topic()
    with transaction(sessions) as s:
        key = create_key(s, actor="li.na", department="civil_affairs", role="caseworker")
    add_purpose(sessions, "case-review")  # deny by default: a purpose and a grant to ask under
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="person",
        fields={"family_name": "full"},
        purposes=["case-review"],
    )
    with sessions() as s:
        url = str(s.get_bind().url)
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
        kafka={"bootstrap_servers": kafka.bootstrap_servers},
        audit={"head_interval_s": 1, "mirror_topic": topic, "mirror_interval_s": 0.2},
    )
    with running_gateway(settings) as base:
        for n in range(3):
            response = httpx.post(
                f"{base}/v1/persons/lookup",
                json={"resident_id": "11010519491231002X"},
                params={"purpose": "case-review", "case_ref": f"C{n}"},
                headers={"X-API-Key": key},
                timeout=30,
            )
            assert response.status_code == 404  # nobody published this person: still audited
        deadline = time.monotonic() + 60
        while _watermark(sessions) < (3, 3):
            assert time.monotonic() < deadline, "the worker did not mirror the entries"
            time.sleep(0.2)

    messages = _read(kafka.bootstrap_servers, topic)
    entries = [b for _, b in messages if b["type"] == "entry"]
    with sessions() as s:
        request_ids = [e.request_id for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert [json.loads(b["entry"])["request_id"] for b in entries] == request_ids
    assert any(b["type"] == "tree_head" and b["tree_size"] == 3 for _, b in messages)
