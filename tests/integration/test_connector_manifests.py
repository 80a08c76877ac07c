"""Connector runs publish signed batches in Kafka transactions (exchange.security.manifest).

Against the session's Kafka broker: a run's records, read back ``read_committed`` as
the registry builder reads them, are each covered by the signed manifest of their
batch on their partition; a batch whose transaction is aborted leaves nothing a
``read_committed`` reader sees (though its records reached the log), and the run
resumed after it publishes each row once; withdrawals are covered like records.
Each test publishes under its own department, reading from the offsets at which it began.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import connectors.publisher as publisher
from connectors import load_definition, run_connector
from connectors.withdraw import withdraw_records
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import BrokerError
from exchange.core.models import ConnectorCheckpoint
from exchange.kafka.producer import Producer
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from exchange.security import manifest, provenance
from schemas import SchemaStore
from tests.support.deadletters import dead_letters
from tests.support.exports import Export, write_definition, write_export
from tests.support.keys import keys_for
from tests.support.manifests import (
    covered_batches,
    digest_of,
    end_offsets,
    headers,
    read,
    source_ids,
)

pytestmark = pytest.mark.integration

TOPIC = "std.person.v1"
BATCH = 400  # rows a batch here (5,000 in a real run), so a small export makes several


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    return session_factory(engine)


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher, "BATCH", BATCH)


def _export(tmp_path: Path, rows: int) -> tuple[Export, str, Path]:
    department = f"mf_{uuid.uuid4().hex[:10]}"
    export = write_export(tmp_path / "export", rows)
    path = write_definition(tmp_path / "export", connector_id=department, department=department)
    return export, department, path


def _run(bootstrap: str, sessions: sessionmaker[Session], path: Path, **options: object):
    return run_connector(
        load_definition(path),
        bootstrap=bootstrap,
        store=SchemaStore(sessions),
        keys=keys_for(sessions),
        sessions=sessions,
        **options,  # type: ignore[arg-type]
    )


def _checkpoint(sessions: sessionmaker[Session], connector_id: str) -> ConnectorCheckpoint:
    with sessions() as session:
        checkpoint = session.get(ConnectorCheckpoint, connector_id)
        assert checkpoint is not None
        session.expunge(checkpoint)
        return checkpoint


@pytest.mark.parametrize("workers", [1, 2])
def test_every_record_is_covered_by_its_batchs_signed_manifest_on_its_partition(
    kafka: LocalKafka, sessions: sessionmaker[Session], tmp_path: Path, workers: int
) -> None:
    bootstrap = kafka.bootstrap_servers
    start = end_offsets(bootstrap, TOPIC)
    export, department, path = _export(tmp_path, 2_100)
    report = _run(bootstrap, sessions, path, workers=workers)
    assert report.reconciled
    assert report.published == len(export.valid)

    keys = keys_for(sessions)
    serde = AvroSerde(SchemaStore(sessions).schema_text)
    public = keys.keystore.public_keys(department)
    committed = read(bootstrap, TOPIC, start)
    batches = covered_batches(committed, department, public, serde)
    # Every valid row once; nothing else of the department's on the topic.
    ids = source_ids(batches)
    assert sorted(ids) == sorted(export.valid)
    # Batches of BATCH rows (records and dead letters), each a manifest a partition written.
    names = {b.manifest.batch for b in batches}
    batch_count = -(-export.rows // BATCH)
    assert names == {f"{report.run_id}/{n}" for n in range(batch_count)}
    for name in names:
        partitions = [b.partition for b in batches if b.manifest.batch == name]
        assert len(partitions) == len(set(partitions))
    for batch in batches:
        item = batch.manifest
        assert (item.department, item.connector_id) == (department, department)
        assert item.dataset == "person"
        assert item.count == len(batch.records)
        assert item.signing_key_id in public
    # The records carry their provenance and their batch, and no signature of their own.
    for batch in batches:
        for record in batch.records:
            named = headers(record)
            assert named[manifest.BATCH].decode() == batch.manifest.batch
            assert provenance.SIGNING_KEY_ID not in named
            assert record.key == f"{department}:{named[provenance.SOURCE_ID].decode()}".encode()
    # Nothing was aborted: a reader of every record in the log sees the same.
    everything = read(bootstrap, TOPIC, start, committed=False)
    assert {p: [m.offset for m in ms] for p, ms in everything.items()} == {
        p: [m.offset for m in ms] for p, ms in committed.items()
    }
    assert len(dead_letters(bootstrap, sessions, department)) == export.invalid


def test_an_aborted_batch_leaves_nothing_visible_and_the_resumed_run_publishes_each_row_once(
    kafka: LocalKafka,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = kafka.bootstrap_servers
    start = end_offsets(bootstrap, TOPIC)
    export, department, path = _export(tmp_path, 1_500)
    real_commit = Producer.commit
    commits: list[int] = []

    def failing_commit(self: Producer, timeout: float = 120.0) -> None:
        commits.append(1)
        if len(commits) == 2:  # the second batch: its records and manifests are sent
            raise BrokerError("injected: the broker refused the commit")
        real_commit(self, timeout)

    with monkeypatch.context() as patch:
        patch.setattr(Producer, "commit", failing_commit)
        with pytest.raises(BrokerError, match="injected"):
            _run(bootstrap, sessions, path, workers=1)
    checkpoint = _checkpoint(sessions, department)
    assert (checkpoint.status, checkpoint.position) == ("running", BATCH)

    keys = keys_for(sessions)
    serde = AvroSerde(SchemaStore(sessions).schema_text)
    public = keys.keystore.public_keys(department)
    committed = covered_batches(read(bootstrap, TOPIC, start), department, public, serde)
    assert {b.manifest.batch for b in committed} == {f"{checkpoint.run_id}/0"}
    first = source_ids(committed)
    assert 0 < len(first) <= BATCH
    # The aborted batch's records did reach the log (Kafka acknowledged them before the
    # manifests were sent): only read_committed hides them.
    in_log = read(bootstrap, TOPIC, start, committed=False)
    aborted = [
        m
        for ms in in_log.values()
        for m in ms
        if headers(m).get(manifest.BATCH) == f"{checkpoint.run_id}/1".encode()
        and not manifest.is_manifest(headers(m))
    ]
    assert len(aborted) > BATCH // 2

    report = _run(bootstrap, sessions, path, workers=1)
    assert report.resumed_from == BATCH
    assert report.run_id == checkpoint.run_id
    assert (report.read, report.published, report.rejected) == (
        export.rows,
        len(export.valid),
        export.invalid,
    )
    batches = covered_batches(read(bootstrap, TOPIC, start), department, public, serde)
    ids = source_ids(batches)
    assert Counter(ids) == Counter(export.valid)  # each row once
    # The resumed run's batches are named under an attempt of their own.
    resumed = {b.manifest.batch for b in batches} - {f"{checkpoint.run_id}/0"}
    assert resumed
    assert all(name.startswith(f"{checkpoint.run_id}.") for name in resumed)


def test_a_withdrawal_is_covered_by_a_manifest_of_its_own(
    kafka: LocalKafka, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    export, department, path = _export(tmp_path, 50)
    _run(bootstrap, sessions, path, workers=1)
    start = end_offsets(bootstrap, TOPIC)
    withdrawn = sorted(export.valid)[:3]
    count = withdraw_records(
        load_definition(path),
        [*withdrawn, withdrawn[0], " "],
        bootstrap=bootstrap,
        store=SchemaStore(sessions),
        keys=keys_for(sessions),
    )
    assert count == 3
    keys = keys_for(sessions)
    serde = AvroSerde(SchemaStore(sessions).schema_text)
    batches = covered_batches(
        read(bootstrap, TOPIC, start), department, keys.keystore.public_keys(department), serde
    )
    assert sorted(source_ids(batches)) == withdrawn
    assert len({b.manifest.batch for b in batches}) == 1
    for batch in batches:
        for record in batch.records:
            assert record.value is None  # a tombstone
            named = headers(record)
            assert named[provenance.CONTENT_HASH] == provenance.WITHDRAWN.encode()
            assert digest_of(record) == manifest.record_digest(
                department=department,
                dataset="person",
                source_id=named[provenance.SOURCE_ID].decode(),
                content_hash="withdrawn",
                value=b"",
            )
