"""Records the registry builder cannot verify or read are dead-lettered with a reason.

Unsigned, tampered or foreign-signed records are refused before they are decoded;
signed but unreadable ones with their wire-format reason. None is ever stored.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import func, select

from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import SourceRecord
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from exchange.kafka.wire import frame
from exchange.local.broker import LocalKafka
from exchange.registry.builder import DLQ_TOPIC, RegistryBuilder
from exchange.security import provenance
from exchange.security.crypto import sign
from schemas import SchemaStore, load_standard
from tests.support.kafka import read_topic, start_group_at_ends
from tests.support.keys import keys_for

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
    keystore = keys_for(sessions).keystore
    key_id, private = keystore.signing_key("d")

    def signed(value: bytes) -> list[tuple[str, bytes]]:
        message = provenance.signed_message(
            department="d", dataset="rejects", source_id="s1", content_hash="h", value=value
        )
        return [
            ("department", b"d"),
            ("dataset", b"rejects"),
            ("source-id", b"s1"),
            ("content-hash", b"h"),
            ("signing-key-id", key_id.encode()),
            ("signature", sign(private, message)),
        ]

    # Signed by the department, but not readable: wire-format reasons.
    bad = {
        b"magic": b"\x01" + b"\x00" * 10,
        b"unknown-id": frame(999_999, b"\x00"),
        b"truncated": frame(schema_id, b"\x02"),
        b"short": b"\x00\x00",
    }
    records = {name: (value, signed(value)) for name, value in bad.items()}
    # Not provably the department's: never decoded at all.
    readable = frame(schema_id, b"\x00" * 8)
    records[b"unsigned"] = (
        readable,
        [("department", b"d"), ("source-id", b"s1"), ("content-hash", b"h")],
    )
    records[b"tampered"] = (readable + b"\x00", signed(readable))
    records[b"foreign-key"] = (
        readable,
        [*signed(readable)[:4], ("signing-key-id", b"nope"), ("signature", b"\x00" * 64)],
    )
    # Withdrawals (tombstones: no value) are verified like records.
    withdrawal = [
        ("department", b"d"),
        ("dataset", b"rejects"),
        ("source-id", b"s1"),
        ("content-hash", b"withdrawn"),
        ("signing-key-id", key_id.encode()),
    ]
    forged = sign(private, b"something else")
    records[b"withdrawal-forged"] = (None, [*withdrawal, ("signature", forged)])
    records[b"withdrawal-hash"] = (None, signed(b""))  # signed, but not as a withdrawal
    kafka_producer = Producer(kafka.bootstrap_servers)
    try:
        for name, (value, headers) in records.items():
            kafka_producer.send(topic, value, key=marker + b":" + name, headers=headers)
        kafka_producer.flush(30)
    finally:
        kafka_producer.close()

    # The builder reads every std. topic; on the session broker they hold what earlier tests
    # published (tens of thousands of records that would be dead-lettered first): its new
    # group starts at their ends, and at the start of this test's topic.
    group = f"g-{marker.decode()}"
    start_group_at_ends(kafka.bootstrap_servers, group, "std.", but=topic)
    builder = RegistryBuilder(
        kafka.bootstrap_servers,
        sessions,
        linkage_key=b"k",
        keystore=keystore,
        group_id=group,
    )
    try:
        deadline = time.monotonic() + 60
        while builder.stats.dead_lettered < len(records) and time.monotonic() < deadline:
            builder.poll_once(500)
    finally:
        builder.close()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SourceRecord)) == 0

    # The dead letters were acknowledged before poll_once returned: read up to the end offsets
    # (not until the topic is quiet for a few seconds, which a slow start can outlast).
    entries = {
        m.key.split(b":", 1)[1]: json.loads(m.value)
        for m in read_topic(kafka.bootstrap_servers, DLQ_TOPIC, marker)
    }
    assert set(entries) == set(records)
    assert "magic byte" in entries[b"magic"]["reason"]
    assert "schema_not_found" in entries[b"unknown-id"]["reason"]
    assert "truncated" in entries[b"truncated"]["reason"]
    assert "shorter than the 5-byte" in entries[b"short"]["reason"]
    assert "unverified_record" in entries[b"unsigned"]["reason"]
    assert "bad_signature" in entries[b"tampered"]["reason"]
    assert "bad_signature" in entries[b"withdrawal-forged"]["reason"]
    assert "must carry content-hash 'withdrawn'" in entries[b"withdrawal-hash"]["reason"]
    assert "not in the department's catalogue" in entries[b"foreign-key"]["reason"]
    assert all(e["topic"] == topic for e in entries.values())
