"""The registry builder accepts records of signed batches (issue 19): a record enters once
the manifest of its batch, in the same partition and Kafka transaction, verifies and lists
its digest. What no valid manifest covers is dead-lettered with its reason, and the rest of
the batch is applied; an aborted transaction leaves nothing; records signed one by one (before
signed batches) still verify."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import SourceRecord
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from exchange.registry import builder as builder_module
from exchange.registry.builder import DLQ_TOPIC, RegistryBuilder
from exchange.security import provenance
from exchange.security.crypto import sign
from exchange.security.keystore import KeyStore
from schemas import SchemaStore, load_standard
from tests.support.batches import BatchPublisher, person
from tests.support.kafka import read_topic, start_group_at_ends
from tests.support.keys import keys_for

pytestmark = pytest.mark.integration
TOPIC = "std.person.v1"


@dataclass
class Setup:
    bootstrap: str
    sessions: sessionmaker[Session]
    keystore: KeyStore
    department: str
    group: str

    def publisher(self) -> BatchPublisher:
        return BatchPublisher(
            self.bootstrap, TOPIC, self.department, SchemaStore(self.sessions), self.keystore
        )

    def builder(self, **options: int) -> RegistryBuilder:
        return RegistryBuilder(
            self.bootstrap,
            self.sessions,
            linkage_key=b"k" * 32,
            keystore=self.keystore,
            group_id=self.group,
            **options,
        )

    def build(self, **options: int) -> RegistryBuilder:
        builder = self.builder(**options)
        try:
            builder.run_until_idle(idle_s=2.0, timeout_s=90)
        finally:
            builder.close()
        return builder

    def stored(self) -> set[str]:
        with self.sessions() as session:
            return set(
                session.scalars(
                    select(SourceRecord.source_id).where(
                        SourceRecord.department == self.department,
                        SourceRecord.deleted.is_(False),
                    )
                )
            )

    def dead(self) -> dict[str, str]:
        """Dead letters of this test's records: source id (or 'manifest') -> reason."""
        found: dict[str, str] = {}
        for message in read_topic(self.bootstrap, DLQ_TOPIC, self.department.encode()):
            entry = json.loads(message.value)
            name = message.key.decode().split(":", 1)[1]
            where = f"manifest@{entry['partition']}:{entry['offset']}"
            found[name if name != "manifest" else where] = entry["reason"]
        return found


@pytest.fixture
def setup(kafka: LocalKafka, tmp_path) -> Iterator[Setup]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    marker = uuid.uuid4().hex[:10]
    group = f"g-{marker}"
    ensure_topics(kafka.bootstrap_servers, [TOPIC, DLQ_TOPIC])
    # The builder reads every std. topic: its group starts at their ends now.
    start_group_at_ends(kafka.bootstrap_servers, group, "std.", but="")
    yield Setup(kafka.bootstrap_servers, sessions, keys_for(sessions).keystore, f"d{marker}", group)
    engine.dispose()


def test_a_tampered_record_is_dead_lettered_and_the_rest_of_its_batch_applied(
    setup: Setup,
) -> None:
    publisher = setup.publisher()
    records = {f"s{i}": person(f"s{i}") for i in range(30)}
    published = publisher.publish(records, tamper={"s7"})
    publisher.close()
    assert len({m.partition for m in published.manifests}) > 1  # several partitions, one each

    built = setup.build()

    assert setup.stored() == set(records) - {"s7"}
    dead = setup.dead()
    assert set(dead) == {"s7"}
    assert dead["s7"].startswith("not_in_manifest: record is not covered by the manifest")
    assert built.stats.manifests == len(published.manifests)
    assert built.stats.applied == 29


def test_a_manifest_with_a_wrong_signature_dead_letters_its_batch(setup: Setup) -> None:
    publisher = setup.publisher()
    forged = {f"f{i}": person(f"f{i}") for i in range(12)}
    good = {f"g{i}": person(f"g{i}") for i in range(5)}
    bad = publisher.publish(forged, bad_signature=True)
    publisher.publish(good)
    publisher.close()

    setup.build()

    assert setup.stored() == set(good)
    dead = setup.dead()
    records = {k: v for k, v in dead.items() if not k.startswith("manifest@")}
    assert set(records) == set(forged)
    assert all(r.startswith("bad_signature: ") for r in records.values())
    manifests = [k for k in dead if k.startswith("manifest@")]
    assert len(manifests) == len(bad.manifests)  # the forged manifests themselves


def test_an_aborted_transaction_leaves_nothing_in_the_registry(setup: Setup) -> None:
    publisher = setup.publisher()
    publisher.publish({f"a{i}": person(f"a{i}") for i in range(10)}, abort=True)
    publisher.publish({"kept": person("kept")})
    publisher.close()

    built = setup.build()

    assert setup.stored() == {"kept"}
    assert setup.dead() == {}
    assert built.stats.dead_lettered == 0


def test_records_whose_manifest_never_follows_are_dead_lettered_after_the_window(
    setup: Setup,
) -> None:
    publisher = setup.publisher()
    orphans = {f"o{i}": person(f"o{i}") for i in range(4)}
    publisher.publish(orphans, manifests=False)
    # Later batches of 12 records (about 4 a partition, each followed by its manifest and
    # a commit marker) pass a window of 30 offsets on every partition; each batch's own
    # records wait far less than that for their manifest.
    later = {f"n{i}": person(f"n{i}") for i in range(120)}
    names = list(later)
    for start in range(0, len(names), 12):
        publisher.publish({n: later[n] for n in names[start : start + 12]})
    publisher.close()

    setup.build(manifest_window=30)

    assert setup.stored() == set(later)
    dead = setup.dead()
    assert set(dead) == set(orphans)
    assert all("no manifest of batch" in r and "within 30 offsets" in r for r in dead.values())


def test_a_batch_read_across_polls_and_a_restart_is_applied_whole(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A builder stopped while records wait for their manifest never commits past them: the
    next builder of the group reads the batch again and applies it."""
    publisher = setup.publisher()
    records = {f"r{i}": person(f"r{i}") for i in range(40)}
    publisher.publish(records)
    publisher.close()
    monkeypatch.setattr(builder_module, "MAX_POLL_RECORDS", 3)
    first = setup.builder()
    try:
        deadline = time.monotonic() + 60
        while not first._pending and time.monotonic() < deadline:
            first.poll_once(500)
        assert first._pending  # records read, their manifest not yet
    finally:
        first.close()
    monkeypatch.setattr(builder_module, "MAX_POLL_RECORDS", 5000)

    setup.build()

    assert setup.stored() == set(records)
    assert setup.dead() == {}


def test_records_signed_one_by_one_still_verify(setup: Setup) -> None:
    """Topics written before signed batches rebuild: a record carrying its own signature
    is verified on its own, beside records of signed batches."""
    store = SchemaStore(setup.sessions)
    wire = load_standard("person").wire
    schema_id = store.register(wire.subject, wire.schema)
    value = AvroSerde(store.schema_text).encode(schema_id, person("old"))
    key_id, private = setup.keystore.signing_key(setup.department)
    message = provenance.signed_message(
        department=setup.department,
        dataset="person",
        source_id="old",
        content_hash="h-old",
        value=value,
    )
    producer = Producer(setup.bootstrap)
    try:
        producer.send(
            TOPIC,
            value,
            key=f"{setup.department}:old".encode(),
            headers=[
                (provenance.DEPARTMENT, setup.department.encode()),
                (provenance.DATASET, b"person"),
                (provenance.SOURCE_ID, b"old"),
                (provenance.CONTENT_HASH, b"h-old"),
                (provenance.SIGNING_KEY_ID, key_id.encode()),
                (provenance.SIGNATURE, sign(private, message)),
            ],
        )
        producer.flush(30)
    finally:
        producer.close()
    publisher = setup.publisher()
    publisher.publish({"new": person("new")})
    publisher.close()

    setup.build()

    assert setup.stored() == {"old", "new"}
    assert setup.dead() == {}
