"""Records the registry builder cannot read are dead-lettered with a reason, never stored."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kafka import KafkaConsumer
from sqlalchemy import func, select

from exchange.broker import LocalKafka
from exchange.builder import DLQ_TOPIC, RegistryBuilder
from exchange.clients import close_producer, ensure_topics, producer
from exchange.db import make_engine, migrate, session_factory
from exchange.models import SourceRecord
from exchange.wire import frame
from schemas import SchemaStore, load_standard

pytestmark = pytest.mark.integration


def test_unreadable_records_are_dead_lettered(kafka: LocalKafka, tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    person = load_standard("person")
    schema_id = SchemaStore(sessions).register(person.subject, person.schema)
    topic = f"std.rejects_{uuid.uuid4().hex[:6]}.v1"
    ensure_topics(kafka.bootstrap_servers, [topic], partitions=1)
    marker = uuid.uuid4().hex.encode()
    headers = [("department", b"d"), ("source-id", b"s1"), ("content-hash", b"h")]
    bad = {
        b"magic": b"\x01" + b"\x00" * 10,
        b"unknown-id": frame(999_999, b"\x00"),
        b"truncated": frame(schema_id, b"\x02"),
        b"short": b"\x00\x00",
    }
    kafka_producer = producer(kafka.bootstrap_servers)
    try:
        for name, value in bad.items():
            kafka_producer.send(topic, key=marker + b":" + name, value=value, headers=headers)
        kafka_producer.flush(30)
    finally:
        close_producer(kafka_producer)

    builder = RegistryBuilder(
        kafka.bootstrap_servers, sessions, linkage_key=b"k", group_id=f"g-{marker.decode()}"
    )
    try:
        deadline = time.monotonic() + 60
        while builder.stats.dead_lettered < len(bad) and time.monotonic() < deadline:
            builder.poll_once(500)
    finally:
        builder.close()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SourceRecord)) == 0

    consumer = KafkaConsumer(
        DLQ_TOPIC,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        entries = {
            m.key.split(b":", 1)[1]: json.loads(m.value)
            for m in consumer
            if m.key and m.key.startswith(marker)
        }
    finally:
        consumer.close()
    assert set(entries) == set(bad)
    assert "magic byte" in entries[b"magic"]["reason"]
    assert "schema_not_found" in entries[b"unknown-id"]["reason"]
    assert "truncated" in entries[b"truncated"]["reason"]
    assert "shorter than the 5-byte" in entries[b"short"]["reason"]
    assert all(e["topic"] == topic for e in entries.values())
