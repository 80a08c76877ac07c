"""Connector reliability for real: a killed run resumes, a broker lost mid-run loses nothing.

1. A connector run of a CSV export is started as its own process (``exchange connector
   run``) against the session's Kafka broker and SIGKILLed right after a checkpoint,
   twice, at different points; the third run finishes. The batch a run was killed in
   is aborted (the next run's producer fences it): its records are in the log but
   no ``read_committed`` reader sees them, and the next run sends them again. So
   each valid row is committed once (twice only if a kill fell between a batch's
   commit and its checkpoint, with the same content hash), every committed record is
   covered by its batch's signed manifest, the registry ends with exactly one
   record per valid row and the dead-letter topic names exactly the invalid rows;
   the run's counts reconcile.
2. A connector run against a 3-broker cluster loses one broker mid-run (controlled
   shutdown, or SIGKILL). The run completes; every row is on the standard topic
   (valid) or the dead-letter topic (invalid), and the registry ends with exactly one
   record per valid row.

Each test publishes under its own department, and reads and builds only from the
topic offsets at which it started, so records of other tests on the shared topics
do not interfere.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors import load_definition, run_connector
from connectors.pipeline import dlq_topic
from connectors.publisher import BATCH, RunReport
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import ConnectorCheckpoint, ConnectorRun, SourceRecord
from exchange.kafka.clients import ensure_topics
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka, pid_alive
from exchange.registry.builder import DLQ_TOPIC as REGISTRY_DLQ
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support.examples import household_definition
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64, keys_for
from tests.support.manifests import covered_batches, read
from tests.support.registry import build_department

# kafka-python 3.0 leaves some sockets to the garbage collector: always the socket of a
# refused connection (kafka/net/inet.py, KafkaNetSocket.connect never closes it), which
# its clients make while a broker is down, and rarely a connected one at close. Each
# test ignores that warning and collects the garbage before it ends (see _collect), so
# the warning cannot surface later in another test.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
]

TOPIC = "std.person.v1"
PROJECT = Path(__file__).resolve().parents[2]
DIVISIONS = ["110105", "110108", "310104", "310115", "440106", "440305", "330106"]
INVALID_EVERY = 100  # one row in a hundred is invalid

# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _collect() -> Iterator[None]:
    yield
    gc.collect()  # while this module's warning filter applies


@dataclass(frozen=True)
class Source:
    definition: Path
    connector_id: str
    department: str
    rows: int
    valid: frozenset[str]
    invalid: frozenset[str]

    @property
    def prefix(self) -> bytes:
        return f"{self.department}:".encode()


def _dlq(source: Source) -> str:
    """The department's own dead-letter topic."""
    return dlq_topic(source.department, "person")


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = [a + b for a in "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞" for b in "英华平刚桂玲红梅"]


def _write_source(folder: Path, rows: int) -> Source:
    """A CSV of ``rows`` residents, one in INVALID_EVERY invalid in one of three ways."""
    tag = uuid.uuid4().hex[:8]
    department, connector_id = f"reliability_{tag}", f"reliability-{tag}"
    lines = ["local_id,id_number,surname,given,dob,sex,division,phone"]
    valid: set[str] = set()
    invalid: set[str] = set()
    for i in range(rows):
        local_id = f"R{i:06d}"
        # Spread like a real population (a birthday shared by a few, names varied), so the
        # registry's linkage compares each record with a handful of others, not thousands.
        born = date(1940, 1, 1) + timedelta(days=i % 20_000)
        sex = "1" if i % 2 else "2"
        division = DIVISIONS[i % len(DIVISIONS)]
        body = f"{division}{born:%Y%m%d}{(i // 20_000) * 2 + (1 if sex == '1' else 0):03d}"
        number = body + resident_id_check_character(body)
        dob = born.strftime(("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")[i % 3])
        if i % INVALID_EVERY == INVALID_EVERY // 2:
            kind = (i // INVALID_EVERY) % 3
            if kind == 0:  # wrong check character
                number = body + ("0" if number[-1] != "0" else "1")
            elif kind == 1:  # impossible date
                dob = f"{born.year}-02-30"
            else:  # unknown sex code
                sex = "X"
            invalid.add(local_id)
        else:
            valid.add(local_id)
        surname, given = SURNAMES[i % len(SURNAMES)], GIVEN[(i // 7) % len(GIVEN)]
        lines.append(f"{local_id},{number},{surname},{given},{dob},{sex},{division},13{i:09d}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "residents.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    definition = household_definition(
        folder, name="residents.toml", connector_id=connector_id, department=department
    )
    assert len(valid) + len(invalid) == rows
    assert not valid & invalid
    return Source(definition, connector_id, department, rows, frozenset(valid), frozenset(invalid))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """A fresh, migrated SQLite registry in the test's directory: (URL, sessions)."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    yield url, session_factory(engine)
    engine.dispose()


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in _partitions(consumer, topic)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def _partitions(consumer: KafkaConsumer, topic: str) -> list[int]:
    deadline = time.monotonic() + 30
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return sorted(partitions)
        assert time.monotonic() < deadline, f"no metadata for {topic}"
        time.sleep(0.2)


def _read(
    bootstrap: str, topic: str, start: dict[int, int], prefix: bytes, *, committed: bool = True
) -> list[Any]:
    """Every message of ``topic`` from ``start`` to its current end whose key has ``prefix``:
    as a ``read_committed`` reader sees them, or (``committed`` False) every one in the log."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    try:
        parts = [TopicPartition(topic, p) for p in _partitions(consumer, topic)]
        consumer.assign(parts)
        end = consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, start.get(tp.partition, 0))
        found: list[Any] = []
        deadline = time.monotonic() + 120
        pending = [tp for tp in parts if consumer.position(tp) < end[tp]]
        while pending:
            assert time.monotonic() < deadline, f"reading {topic} did not reach its end"
            for messages in consumer.poll(timeout_ms=500, max_records=10_000).values():
                found += [m for m in messages if (m.key or b"").startswith(prefix)]
            pending = [tp for tp in pending if consumer.position(tp) < end[tp]]
        return found
    finally:
        consumer.close()


def _header(message: Any, name: str) -> str:
    [value] = [v for k, v in message.headers if k == name]
    return bytes(value).decode()


def _topic_ids(
    bootstrap: str, source: Source, start: dict[int, int], *, committed: bool = True
) -> list[str]:
    """Source ids of this department's records on the standard topic (with repeats)."""
    ids = []
    for message in _read(bootstrap, TOPIC, start, source.prefix, committed=committed):
        source_id = _header(message, "source-id")
        assert message.key == source.prefix + source_id.encode()
        assert _header(message, "department") == source.department
        ids.append(source_id)
    return ids


def _dead_letter_ids(bootstrap: str, source: Source, start: dict[int, int]) -> list[str]:
    """Source ids of this department's dead letters (with repeats)."""
    ids = []
    for message in _read(bootstrap, _dlq(source), start, source.prefix):
        entry = json.loads(message.value)
        assert entry["department"] == source.department
        assert entry["connector"] == source.connector_id
        assert entry["reasons"], entry
        assert message.key == source.prefix + entry["source_id"].encode()
        ids.append(entry["source_id"])
    return ids


def _build_registry(
    bootstrap: str,
    sessions: sessionmaker[Session],
    source: Source,
    start: dict[int, int],
    timeout: float = 150.0,
) -> None:
    """Run a registry builder (own group, starting at ``start`` on the topic) until it
    holds every valid row of ``source`` and then nothing more arrives."""
    build_department(
        bootstrap,
        sessions,
        source.department,
        len(source.valid),
        start,
        topic=TOPIC,
        timeout_s=timeout,
        drain=True,
    )


def _assert_covered(
    bootstrap: str, sessions: sessionmaker[Session], source: Source, start: dict[int, int]
) -> None:
    """Every committed record of the department is covered by its batch's signed manifest,
    and a row sent twice (a kill between a commit and its checkpoint) has one content hash."""
    batches = covered_batches(
        read(bootstrap, TOPIC, start),
        source.department,
        keys_for(sessions).keystore.public_keys(source.department),
        AvroSerde(SchemaStore(sessions).schema_text),
    )
    hashes: dict[str, set[str]] = {}
    for batch in batches:
        for record in batch.records:
            hashes.setdefault(_header(record, "source-id"), set()).add(
                _header(record, "content-hash")
            )
    assert set(hashes) == source.valid
    assert all(len(h) == 1 for h in hashes.values())


def _assert_registry(sessions: sessionmaker[Session], source: Source) -> None:
    with sessions() as session:
        rows = session.execute(
            select(SourceRecord.source_id, SourceRecord.version, SourceRecord.lookup_key).where(
                SourceRecord.department == source.department
            )
        ).all()
    ids = [r.source_id for r in rows]
    assert len(ids) == len(source.valid), "exactly one registry record per valid row"
    assert set(ids) == source.valid
    # A record sent again after a kill carries the same content hash: never a new version.
    assert {r.version for r in rows} == {1}
    assert all(r.lookup_key for r in rows)


def _assert_no_registry_dead_letters(bootstrap: str, source: Source, start: dict[int, int]) -> None:
    rejected = _read(bootstrap, REGISTRY_DLQ, start, source.prefix)
    assert not rejected, [json.loads(m.value)["reason"] for m in rejected[:3]]


def _checkpoint(sessions: sessionmaker[Session], connector_id: str) -> ConnectorCheckpoint | None:
    with sessions() as session:
        checkpoint = session.get(ConnectorCheckpoint, connector_id)
        if checkpoint is not None:
            session.expunge(checkpoint)
        return checkpoint


def _assert_final_counts(
    sessions: sessionmaker[Session], source: Source, report: RunReport | None = None
) -> None:
    with sessions() as session:
        runs = session.scalars(
            select(ConnectorRun).where(ConnectorRun.connector_id == source.connector_id)
        ).all()
        checkpoint = session.get(ConnectorCheckpoint, source.connector_id)
        assert checkpoint is not None
        # Resumed runs continue the interrupted run: one run, complete, reconciled.
        [run] = runs
        assert run.status == "complete"
        assert run.finished_at is not None
        assert run.read == source.rows == run.published + run.rejected
        assert run.published == len(source.valid)
        assert run.rejected == len(source.invalid)
        assert sum(run.reasons.values()) == len(source.invalid)
        assert {"resident_id.check_character", "date.invalid"} <= set(run.reasons)
        assert (checkpoint.status, checkpoint.position) == ("complete", source.rows)
        assert (checkpoint.read, checkpoint.published, checkpoint.rejected) == (
            run.read,
            run.published,
            run.rejected,
        )
        assert checkpoint.run_id == run.run_id
    if report is not None:
        assert report.run_id == run.run_id
        assert (report.read, report.published, report.rejected) == (
            source.rows,
            len(source.valid),
            len(source.invalid),
        )
        assert report.reconciled


# --------------------------------------------------------------------------- 1. kill and resume


def _connector_env(tmp_path: Path, database_url: str, bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env.update(
        EXCHANGE_DATA_DIR=str(tmp_path / "data"),
        EXCHANGE_DATABASE_URL=database_url,
        EXCHANGE_MASTER_KEY=MASTER_KEY_B64,
        EXCHANGE_LINKAGE_KEY=LINKAGE_KEY,
        EXCHANGE_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
        COLUMNS="250",  # keep the summary line on one line
    )
    return env


def _kill_after_checkpoint(
    proc: subprocess.Popen[bytes],
    sessions: sessionmaker[Session],
    source: Source,
    log: Path,
    beyond: int,
    mid_batch: str | None = None,
    timeout: float = 90.0,
    workers: int = 1,
) -> int:
    """SIGKILL the run once its checkpoint passed ``beyond``: at once, or, given the
    broker's address as ``mid_batch``, mid-batch (:func:`_freeze_mid_batch`); return the
    checkpoint it stopped at. A run with ``workers`` > 1 has ``workers - 1`` worker
    processes by then, which must end with it."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"the connector exited ({proc.returncode}) before it could be killed:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        assert time.monotonic() < deadline, f"no checkpoint past {beyond} in {timeout:.0f}s"
        checkpoint = _checkpoint(sessions, source.connector_id)
        if checkpoint and checkpoint.status == "running" and checkpoint.position > beyond:
            break
        time.sleep(0.02)
    if mid_batch is not None:
        _freeze_mid_batch(proc, sessions, source, mid_batch, deadline)
    children = _children(proc.pid)
    assert len(children) == workers - 1, children
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    # Its worker processes (if any) do not outlive it.
    deadline = time.monotonic() + 30
    while any(pid_alive(child) for child in children):
        assert time.monotonic() < deadline, f"workers {children} outlived their run"
        time.sleep(0.1)
    checkpoint = _checkpoint(sessions, source.connector_id)
    assert checkpoint is not None
    assert checkpoint.status == "running"
    # What was acknowledged before the kill is counted, and the counts reconcile.
    assert beyond < checkpoint.position < source.rows
    assert checkpoint.read == checkpoint.position == checkpoint.published + checkpoint.rejected
    return checkpoint.position


def _freeze_mid_batch(
    proc: subprocess.Popen[bytes],
    sessions: sessionmaker[Session],
    source: Source,
    bootstrap: str,
    deadline: float,
) -> None:
    """SIGSTOP the run at a moment, seen while it is stopped, when records it sent after its
    last checkpoint are on the topic: killed there, it loses them with the batch in flight,
    and the next run sends them again. Chosen by what the run has done, not by the clock."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(TOPIC, p) for p in _partitions(consumer, TOPIC)]
        checkpoint = _checkpoint(sessions, source.connector_id)
        assert checkpoint is not None
        position, on_topic = checkpoint.position, sum(consumer.end_offsets(parts).values())
        while True:
            assert time.monotonic() < deadline, "the run was never seen mid-batch"
            os.kill(proc.pid, signal.SIGSTOP)
            checkpoint = _checkpoint(sessions, source.connector_id)
            assert checkpoint is not None
            assert checkpoint.status == "running", "the run finished before it was seen mid-batch"
            now = sum(consumer.end_offsets(parts).values())
            if checkpoint.position == position and now > on_topic:
                return  # stopped with records past its checkpoint on the topic
            if checkpoint.position != position:  # a batch was checkpointed: count from there
                position, on_topic = checkpoint.position, now
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.01)
    finally:
        consumer.close()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a connector run's worker processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


# workers: the connector_workers setting; 2 prepares records in a worker process too.
@pytest.mark.parametrize("workers", [1, 2])
def test_connector_killed_twice_resumes_and_registry_holds_each_row_once(
    kafka: LocalKafka, database: tuple[str, sessionmaker[Session]], tmp_path: Path, workers: int
) -> None:
    started = time.monotonic()
    source = _write_source(tmp_path / "export", 40_000)
    database_url, sessions = database
    bootstrap = kafka.bootstrap_servers
    dlq = _dlq(source)
    ensure_topics(bootstrap, [TOPIC, dlq, REGISTRY_DLQ])
    start = {topic: _end_offsets(bootstrap, topic) for topic in (TOPIC, dlq, REGISTRY_DLQ)}

    cmd = [sys.executable, "-m", "exchange.cli", "connector", "run", str(source.definition)]
    env = _connector_env(tmp_path, database_url, bootstrap)
    env["EXCHANGE_CONNECTOR_WORKERS"] = str(workers)
    run_ids = set()
    stops = []
    stopped_at = 0
    phases = {"setup": time.monotonic() - started}
    # First kill right after a checkpoint, the second mid-batch (rows in flight are lost
    # with the process and sent again by the next run).
    for attempt, mid_batch in ((1, None), (2, bootstrap)):
        log = tmp_path / f"run-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
            try:
                stopped_at = _kill_after_checkpoint(
                    proc, sessions, source, log, stopped_at, mid_batch, workers=workers
                )
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
        checkpoint = _checkpoint(sessions, source.connector_id)
        assert checkpoint is not None
        run_ids.add(checkpoint.run_id)
        stops.append(stopped_at)

    # The third run finishes, resuming after the last acknowledged batch.
    finished = subprocess.run(
        cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=200
    )
    output = " ".join(finished.stdout.decode(errors="replace").split())
    assert finished.returncode == 0, output + finished.stderr.decode(errors="replace")[-3000:]
    assert f"resumed after row {stopped_at}" in output, output
    assert (
        f"read {source.rows} = published {len(source.valid)} "
        f"+ rejected {len(source.invalid)} (reconciled" in output
    ), output
    assert len(run_ids) == 1, "a resumed run keeps its run id"
    _assert_final_counts(sessions, source)
    phases["runs"] = time.monotonic() - started - sum(phases.values())

    # Run again: the file was published completely, nothing is sent again.
    again = subprocess.run(
        cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    assert again.returncode == 0
    assert "nothing new to publish" in " ".join(again.stdout.decode(errors="replace").split())

    # On the wire: each valid row committed once, the invalid rows dead-lettered.
    on_topic = _topic_ids(bootstrap, source, start[TOPIC])
    assert set(on_topic) == source.valid
    # Twice only if a kill fell between a batch's commit and its checkpoint: one batch at most.
    assert len(on_topic) - len(source.valid) <= BATCH
    # What was in flight at the second kill is in the log, aborted: read_committed hides it.
    assert len(_topic_ids(bootstrap, source, start[TOPIC], committed=False)) > len(on_topic)
    _assert_covered(bootstrap, sessions, source, start[TOPIC])
    dead = _dead_letter_ids(bootstrap, source, start[dlq])
    assert set(dead) == source.invalid
    assert len(dead) >= len(source.invalid)

    phases["read topics"] = time.monotonic() - started - sum(phases.values())

    # The registry: exactly one record per valid row, none of ours refused.
    _build_registry(bootstrap, sessions, source, start[TOPIC])
    phases["registry"] = time.monotonic() - started - sum(phases.values())
    _assert_registry(sessions, source)
    _assert_no_registry_dead_letters(bootstrap, source, start[REGISTRY_DLQ])
    print(
        f"kill-and-resume ({workers} worker(s)): {source.rows} rows, killed after rows {stops}, "
        f"{len(on_topic) - len(source.valid)} records and "
        f"{len(dead) - len(source.invalid)} dead letters sent twice; "
        + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items())
    )


# --------------------------------------------------------------------------- 2. kill a broker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    nodes = LocalKafka(tmp_path_factory.mktemp("reliability-cluster"), size=3, heap="384m")
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.mark.cluster
@pytest.mark.parametrize("fault", ["controlled-shutdown", "sigkill"])
def test_connector_run_survives_losing_a_broker(
    cluster: LocalKafka, database: tuple[str, sessionmaker[Session]], tmp_path: Path, fault: str
) -> None:
    started = time.monotonic()
    source = _write_source(tmp_path / "export", 30_000)
    _, sessions = database
    keys = keys_for(sessions)
    store = SchemaStore(sessions)
    bootstrap = cluster.bootstrap_servers
    dlq = _dlq(source)
    ensure_topics(bootstrap, [TOPIC, dlq, REGISTRY_DLQ])
    start = {topic: _end_offsets(bootstrap, topic) for topic in (TOPIC, dlq, REGISTRY_DLQ)}
    victim = cluster.nodes[2]
    pid = cluster.pids()[victim.node_id]

    outcome: dict[str, Any] = {}

    def publish() -> None:
        try:
            outcome["report"] = run_connector(
                load_definition(source.definition),
                bootstrap=bootstrap,
                store=store,
                keys=keys,
                sessions=sessions,
            )
        except BaseException as exc:  # reported by the test thread below
            outcome["error"] = exc

    worker = threading.Thread(target=publish, name="connector-run", daemon=True)
    worker.start()
    try:
        # Lose the broker once Kafka acknowledged a first batch, with most rows still to go.
        deadline = time.monotonic() + 60
        while True:
            assert worker.is_alive(), f"the run ended before the fault: {outcome}"
            assert time.monotonic() < deadline, "no checkpoint within 60s"
            checkpoint = _checkpoint(sessions, source.connector_id)
            if checkpoint and checkpoint.status == "running" and checkpoint.position > 0:
                break
            time.sleep(0.02)
        assert worker.is_alive()
        assert checkpoint.position < source.rows
        at_fault = checkpoint.position
        if fault == "sigkill":
            os.kill(pid, signal.SIGKILL)
        cluster.stop_node(victim)  # after SIGKILL: only reaps it and forgets its pid
        assert not pid_alive(pid)

        phases = {"until fault": time.monotonic() - started}
        worker.join(timeout=200)
        assert not worker.is_alive(), "the run did not finish within 200s of the fault"
        assert "error" not in outcome, f"the run failed: {outcome.get('error')!r}"
        report: RunReport = outcome["report"]
        _assert_final_counts(sessions, source, report)
        phases["run"] = time.monotonic() - started - sum(phases.values())

        # Still with one broker down: every row is on the topic or in the dead letters.
        on_topic = _topic_ids(bootstrap, source, start[TOPIC])
        assert set(on_topic) == source.valid
        _assert_covered(bootstrap, sessions, source, start[TOPIC])
        dead = _dead_letter_ids(bootstrap, source, start[dlq])
        assert set(dead) == source.invalid
        phases["read topics"] = time.monotonic() - started - sum(phases.values())

        # ... and the registry holds each valid row once, none twice.
        _build_registry(bootstrap, sessions, source, start[TOPIC])
        phases["registry"] = time.monotonic() - started - sum(phases.values())
        _assert_registry(sessions, source)
        _assert_no_registry_dead_letters(bootstrap, source, start[REGISTRY_DLQ])
        print(
            f"{fault}: {source.rows} rows, broker {victim.node_id} lost at row "
            f"{at_fault}, {len(on_topic) - len(source.valid)} duplicates on the "
            f"topic, {len(dead) - len(source.invalid)} in the DLQ; "
            + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items())
        )
    finally:
        worker.join(timeout=30)
        if victim.node_id not in cluster.pids():
            cluster.start_node(victim)
