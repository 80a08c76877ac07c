"""Connector runs that prepare records in worker processes (connectors.workers).

Kafka is replaced by a transactional producer that records every send in order (so
the order is compared exactly) and acknowledges it at once; the database is SQLite.
The worker processes are real.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import connectors.publisher as publisher
from connectors import load_definition, run_connector
from connectors import workers as workers_module
from connectors.pipeline import Keys, RecordPreparer, open_dead_letter
from connectors.publisher import RunReport
from connectors.workers import CHUNK_ROWS, WorkerError, usable_cores
from exchange.core.config import load_settings
from exchange.core.errors import ConfigError
from exchange.core.models import ConnectorCheckpoint
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance
from exchange.security.keystore import FieldCipher
from schemas import SchemaStore, load_standard
from schemas.standards import Sensitivity
from tests.support.database import migrated
from tests.support.exports import write_definition, write_export
from tests.support.keys import keys_for
from tests.support.producers import RecordingProducer


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path / 'registry.db'}") as factory:
        yield factory


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[RecordingProducer]:
    """Every producer the runs make, in order; no broker is needed."""
    made: list[RecordingProducer] = []

    def producer(bootstrap: str, *, transactional_id: str, **_: Any) -> RecordingProducer:
        assert transactional_id.startswith("exchange-connector-")
        made.append(RecordingProducer())
        return made[-1]

    monkeypatch.setattr(publisher, "Producer", producer)
    monkeypatch.setattr(publisher, "ensure_topics", lambda *_args, **_kw: None)
    return made


@pytest.fixture
def chunks_sent(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """Make the run wait for its workers to start (so chunks do go to them, however slow
    the machine) and count the chunks each worker was sent, by worker number."""
    counts: dict[int, int] = {}
    real_send = workers_module._Worker.send
    real_ready = workers_module._Worker.check_ready

    def send(self: workers_module._Worker, message: object) -> None:
        if isinstance(message, tuple):
            counts[self.number] = counts.get(self.number, 0) + 1
        real_send(self, message)

    def check_ready(self: workers_module._Worker) -> bool:
        if not self.ready:
            assert self.results.poll(60), f"{self.name} did not start in 60 s"
        return real_ready(self)

    monkeypatch.setattr(workers_module._Worker, "send", send)
    monkeypatch.setattr(workers_module._Worker, "check_ready", check_ready)
    return counts


def _run(
    definition_path: Path, sessions: sessionmaker[Session], keys: Keys, workers: int
) -> RunReport:
    return run_connector(
        load_definition(definition_path),
        bootstrap="unused:9092",
        store=SchemaStore(sessions),
        keys=keys,
        sessions=sessions,
        workers=workers,
    )


def _comparable(producer: RecordingProducer, keys: Keys, store: SchemaStore) -> list[Any]:
    """What was committed, with what differs from run to run by design taken out:
    ciphertexts (decrypted here), manifests (verified here, and each record found in its
    batch's manifest of its partition), batch names, times and the connector's id."""
    serde = AvroSerde(store.schema_text)
    cipher = FieldCipher(keys.keystore)
    public = keys.keystore.public_keys("dept_w")
    out: list[Any] = []
    committed = [t for t in producer.transactions if t.outcome == "committed"]
    assert committed
    for transaction in committed:
        # The manifests close the transaction, one for each partition its records went to.
        manifests: dict[int, manifest.Manifest] = {}
        records = [(s, p) for s, p in transaction.sent if not _is_manifest(s[3])]
        for (topic, _, value, headers), partition in transaction.sent[len(records) :]:
            assert _is_manifest(headers)
            assert value is not None
            item = manifest.Manifest.from_record(serde.decode(value)[1])
            named = provenance.headers_dict(headers)
            manifest.verify_manifest(item, named[provenance.SIGNATURE], public)
            assert (item.topic, item.partition) == (topic, partition)
            manifests[partition] = item
        assert set(manifests) == {p for (t, *_), p in records if t == "std.person.v1"}
        covered = {p: m.covered() for p, m in manifests.items()}
        for sent, partition in records:
            out.append(_comparable_record(sent, partition, manifests, covered, serde, cipher))
    return out


def _is_manifest(headers: list[tuple[str, bytes]]) -> bool:
    return manifest.is_manifest(provenance.headers_dict(headers))


def _comparable_record(
    sent: tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]],
    partition: int,
    manifests: dict[int, manifest.Manifest],
    covered: dict[int, Any],
    serde: AvroSerde,
    cipher: FieldCipher,
) -> Any:
    standard = load_standard("person")
    topic, key, value, headers = sent
    assert key is not None
    assert value is not None
    if topic.startswith("dlq."):
        # Sealed values differ run to run (fresh nonces): compared opened.
        entry = open_dead_letter(cipher, json.loads(value))
        assert entry.pop("connector").startswith("w")
        for varying in ("at", "raw_sealed"):
            entry.pop(varying)
        entry["reasons"] = [
            {k: v for k, v in r.items() if k != "message_sealed"} for r in entry["reasons"]
        ]
        return (topic, key, entry)
    named = provenance.headers_dict(headers)
    assert provenance.SIGNATURE not in named  # one signature a batch, none a record
    assert named[manifest.BATCH].decode() == manifests[partition].batch
    digest = manifest.record_digest(
        department=named[provenance.DEPARTMENT].decode(),
        dataset=named[provenance.DATASET].decode(),
        source_id=named[provenance.SOURCE_ID].decode(),
        content_hash=named[provenance.CONTENT_HASH].decode(),
        value=value,
    )
    assert covered[partition][digest] == 1
    schema_id, record = serde.decode(value)
    for spec in standard.fields:
        if spec.sensitivity is Sensitivity.SENSITIVE and record.get(spec.name) is not None:
            plain = cipher.decrypt(standard.dataset, spec.name, key.decode(), record[spec.name])
            record[spec.name] = json.loads(plain)
    varying = (manifest.BATCH, provenance.INGEST_TIME, provenance.CONNECTOR_ID)
    kept = {k: v for k, v in named.items() if k not in varying}
    return (topic, key, schema_id, record, kept)


def test_workers_publish_exactly_what_one_process_publishes(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    producers: list[RecordingProducer],
    chunks_sent: dict[int, int],
) -> None:
    export = write_export(tmp_path / "export", 3 * CHUNK_ROWS + 500)
    keys = keys_for(sessions)
    store = SchemaStore(sessions)
    runs: dict[int, tuple[RunReport, list[Any]]] = {}
    for workers in (1, 2, 3):
        chunks_sent.clear()
        path = write_definition(
            tmp_path / "export", connector_id=f"w{workers}", department="dept_w"
        )
        report = _run(path, sessions, keys, workers)
        assert report.reconciled
        assert (report.read, report.published, report.rejected) == (
            export.rows,
            len(export.valid),
            export.invalid,
        )
        if workers > 1:  # every worker was sent chunks (the rest the run prepared itself)
            assert sorted(chunks_sent) == list(range(1, workers))
        runs[workers] = (report, _comparable(producers[-1], keys, store))

    one, sent_one = runs[1]
    for workers in (2, 3):
        report, sent = runs[workers]
        assert report.reasons == one.reasons
        assert [e["line"] for e in report.rejections] == [e["line"] for e in one.rejections]
        assert len(sent) == len(sent_one) == export.rows
        assert sent == sent_one  # same records, same order, same keys, same content
    published = {entry[1] for entry in sent_one if entry[0] == "std.person.v1"}
    assert published == {f"dept_w:{source_id}".encode() for source_id in export.valid}


def test_a_source_shorter_than_a_chunk_starts_no_worker(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    producers: list[RecordingProducer],
    chunks_sent: dict[int, int],
) -> None:
    started: list[int] = []
    real_start = workers_module.ParallelPreparation._start

    def start(self: workers_module.ParallelPreparation) -> None:
        started.append(1)
        real_start(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workers_module.ParallelPreparation, "_start", start)
        export = write_export(tmp_path / "export", CHUNK_ROWS - 1)
        report = _run(export.definition, sessions, keys_for(sessions), 2)
    assert report.reconciled
    assert report.read == CHUNK_ROWS - 1
    assert not started
    assert not chunks_sent


def _checkpoint(sessions: sessionmaker[Session], connector_id: str) -> ConnectorCheckpoint:
    with sessions() as session:
        checkpoint = session.get(ConnectorCheckpoint, connector_id)
        assert checkpoint is not None
        return checkpoint


@pytest.mark.timeout(120)
def test_a_worker_that_dies_stops_the_run_with_a_clear_error(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    producers: list[RecordingProducer],
    monkeypatch: pytest.MonkeyPatch,
    chunks_sent: dict[int, int],
) -> None:
    real_send = workers_module._Worker.send
    killed: list[int] = []

    def send(self: workers_module._Worker, message: object) -> None:
        real_send(self, message)
        if isinstance(message, tuple) and len(message) == 3 and not killed:
            # The worker dies (as if the kernel's OOM killer chose it) holding a chunk.
            os.kill(self.process.pid, signal.SIGKILL)
            killed.append(self.process.pid)

    monkeypatch.setattr(workers_module._Worker, "send", send)
    export = write_export(tmp_path / "export", 8 * CHUNK_ROWS)
    started = time.monotonic()
    with pytest.raises(
        WorkerError,
        match=r"connector worker 1 \(pid \d+\) exited with status -9 while (taking work|preparing "
        r"rows \d+-\d+); the run stopped \(run it again to resume",
    ):
        _run(export.definition, sessions, keys_for(sessions), 2)
    assert time.monotonic() - started < 60
    assert killed
    checkpoint = _checkpoint(sessions, "workers-test")
    assert checkpoint.status == "running"
    assert checkpoint.read == checkpoint.position < export.rows


def test_a_worker_that_fails_on_a_chunk_stops_the_run_naming_the_rows_and_cause(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    producers: list[RecordingProducer],
    monkeypatch: pytest.MonkeyPatch,
    chunks_sent: dict[int, int],
) -> None:
    real_init = RecordPreparer.__init__

    def forgetful(self: RecordPreparer, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.needs_data_key = False  # so the run hands its workers no data key

    monkeypatch.setattr(RecordPreparer, "__init__", forgetful)
    export = write_export(tmp_path / "export", 3 * CHUNK_ROWS)
    with pytest.raises(
        WorkerError,
        match=r"connector worker 1 \(pid \d+\) failed while preparing rows 1-1000: "
        r"WorkerError: no data key of person \d{4}-\d\d was handed over",
    ):
        _run(export.definition, sessions, keys_for(sessions), 2)


@pytest.mark.timeout(60)
def test_a_worker_exits_when_the_run_goes_away(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    export = write_export(tmp_path / "export", 10)
    pipeline = publisher.RecordPipeline(
        load_definition(export.definition),
        store=SchemaStore(sessions),
        keys=keys_for(sessions),
        kafka=RecordingProducer(),
    )
    worker = workers_module._Worker(1, pipeline.preparer.spec)
    try:
        assert worker.results.poll(30)
        assert worker.check_ready()
        # What the run's death does to the pipes: both close, no goodbye.
        worker.results.close()
        worker.tasks.close()
        assert worker.process.wait(timeout=20) is not None
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def test_worker_count_is_a_setting_defaulting_to_the_usable_cores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert load_settings().connector_workers is None
    monkeypatch.setenv("EXCHANGE_CONNECTOR_WORKERS", "3")
    assert load_settings().connector_workers == 3
    with pytest.raises(ConfigError, match="connector_workers"):
        load_settings(connector_workers=0)
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_run_refuses_fewer_than_one_worker(
    tmp_path: Path, sessions: sessionmaker[Session], producers: list[RecordingProducer]
) -> None:
    export = write_export(tmp_path / "export", 10)
    with pytest.raises(ValueError, match="at least 1"):
        _run(export.definition, sessions, keys_for(sessions), 0)
