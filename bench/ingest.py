"""End-to-end ingest benchmark: connector runs against raw kafka-python and raw librdkafka.

Run from the project root::

    .venv/bin/python -m bench.ingest [--rows N] [--workers W ...] [--keep-dir]
    .venv/bin/python -m bench.ingest --prepare-only [--rows N]   # no Kafka: the breakdown

In a fresh temporary directory it starts its own single-node Kafka broker
(:class:`exchange.local.broker.LocalKafka`, heap 512m), a SQLite registry database
(migrated) and a :class:`~exchange.security.keystore.LocalKeyStore` under a random
master key (the linkage key is random too), then writes an N-row household
registry export for the ``Person`` standard (the columns of the demo's
``write_dataset``; every 100th row is deliberately invalid, in turn a wrong ID
check character, 30 February and an unknown sex code, so dead-lettering is
exercised) and the demo's connector definition pointing at it.

Before anything is timed, 20,000 records of about the exchange's size go to a
warm-up topic, so that the broker's JIT is as warm for the first side timed as
for the others. Then, each once, each in its own child process
(``multiprocessing`` with the ``spawn`` start method, so that no side's memory
mixes into another's), one connector run for each ``--workers`` value (default
``1 2``: the single-process run and the run with one worker process), then the
two raw sides:

* **exchange**: ``run_connector(load_definition(toml), ..., workers=W)``: read
  the CSV, check keys, map, validate, encrypt the sensitive field, blind-index
  it, encode (Confluent framed Avro), sign each record (Ed25519), produce with
  ``acks=all`` and idempotence (the exchange's producer, librdkafka through
  confluent-kafka), settle and checkpoint every 5,000 records. ``W`` is the
  ``connector_workers`` setting (``--workers``; default: the usable cores): the
  processes that prepare records (map to sign), the run's own included, so
  ``W - 1`` worker processes (``connectors.workers``) prepare chunks of 1,000
  rows while the run's process reads, checks keys, produces in source order,
  prepares chunks itself when the workers are full, settles and checkpoints;
  ``--workers 1`` is the single-process run. Every run reads the whole source
  (``restart=True``) and publishes it to the same topics;
* **raw**: a bare kafka-python ``KafkaProducer`` with the exchange's producer
  settings (``acks="all"``, ``enable_idempotence=True``, ``linger_ms=5``,
  5 in flight) sending the exchange's own records (exact key, value and header
  bytes, consumed back from its topics) to fresh topics: as many records to
  each topic as the exchange sent there, interleaved the same way (one dead
  letter per 100 records), one ``flush`` at the end;
* **raw librdkafka**: the same records, counts and interleaving through a bare
  confluent-kafka ``Producer`` with the exchange's producer settings
  (``exchange.kafka.producer.DEFAULTS``), no delivery callbacks, one ``flush`` at the
  end. Not the issue's baseline (that is kafka-python), but the fair one for the
  client the exchange uses: it shows what the exchange's own work costs.

The raw children hold the first ``min(N, 100,000)`` published records and the
first ``min(rejected, 100,000)`` dead letters in memory and cycle through them
(holding a million records would cost about a gigabyte and make their memory
figure meaningless); their peak memory is given beside their resident size
just before sending (interpreter, imports and the held records).

Each child reports its wall time (the exchange: ``load_definition`` plus
``run_connector``, from opening the source to closing the producer, worker
start-up included; raw: from creating the producer to closing it, after the
records were loaded) and its peak resident set size, read from its own
``/proc/self/status`` ``VmHWM`` at the end. The exchange's memory is its own
peak plus the sum of its worker processes' peaks (each worker's ``VmHWM`` as a
thread of the exchange child last read it, every 0.2 s, before the worker
exited), a sum of peaks, so never less than the peak of the sum; shared pages
(the interpreter, libraries) are counted once per process.
(``getrusage(RUSAGE_CHILDREN)`` would mix in the broker's storage formatting
JVM, which this process also waited for, and gives the largest child's peak,
not the sum; ``ru_maxrss`` of a forked-then-exec'd child may carry the
parent's pages over.)

Correct first: the benchmark checks that read = published + rejected, that
rejected is exactly the number of invalid rows written, that the topics hold
those counts (after each connector run, the sum over the runs so far), that the
records held for the raw baseline verify (a per-record signature; a record of a
signed batch must name its batch, its manifest being the builder's to verify)
and decode, with the sensitive field decrypting to a value whose blind index
matches, and that the raw topics hold the counts sent; otherwise it exits 1
without a report. Topics are counted by reading them to the end with librdkafka
in ``read_committed``, batch manifests (header ``manifest``) not counted, so the
counts hold for a connector that publishes in transactions too (commit markers
take offsets); the raw baseline replays records only, not manifests.

The machine header says which CRC-32C kafka-python uses for record batches: its
pure-Python fallback unless the ``crc32c`` package is installed, which changes
both sides' figures a lot.

A cheap breakdown follows, in this process (one process, no workers, no
Kafka), on the first ``min(N, 100,000)`` rows: reading the CSV, ``map_row``
alone, ``RecordPipeline.prepare`` (map, validate, content hash, encrypt, blind
index, encode), ``RecordPipeline.publish`` against a producer that does nothing
(signed message, Ed25519 signature, headers), and the Ed25519 signature alone,
each in CPU microseconds a record (``time.process_time``, median of 3 passes).
The report puts them together as the connector's CPU a record by part: read,
prepare, sign (publish to the null producer) and send (the bare librdkafka
side's own CPU a record: what handing the same bytes to the same client costs).
``--prepare-only`` runs the breakdown alone, without a broker, e.g. under
py-spy or cProfile.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import pickle
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError
from confluent_kafka import Consumer as RdKafkaConsumer
from confluent_kafka import Producer as RdKafkaProducer
from confluent_kafka import TopicPartition as RdTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.serde import machine_info
from connectors import load_definition, run_connector
from connectors.csvsource import SourceRow
from connectors.definition import ConnectorDefinition
from connectors.mapping import map_row
from connectors.pipeline import Keys, Prepared, RecordPipeline
from connectors.pipeline import dlq_topic as department_dlq
from connectors.sources import open_source
from connectors.workers import usable_cores
from exchange.core.db import make_engine, migrate, session_factory
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import DEFAULTS as PRODUCER_DEFAULTS
from exchange.kafka.producer import Delivery, Headers, Producer
from exchange.kafka.wire import AvroSerde
from exchange.local import examples
from exchange.local.broker import LocalKafka, kafka_version
from exchange.local.demo import resident_number
from exchange.security import manifest, provenance
from exchange.security.blindindex import blind_index
from exchange.security.crypto import sign
from exchange.security.keystore import FieldCipher, LocalKeyStore
from schemas import SchemaStore
from schemas.standards import Sensitivity

SEED = 20260601
DEFAULT_ROWS = 1_000_000
HELD = 100_000  # records the raw baseline holds in memory and cycles through
BREAKDOWN_ROWS = 100_000
INVALID_EVERY = 100  # one row in a hundred is deliberately invalid
TARGET_RATIO = 1.5  # issue 19: the connector at least 1.5 x raw kafka-python
TARGET_RSS_MB = 300.0
RAW_TOPIC = "bench.raw.person"
RAW_DLQ_TOPIC = "bench.raw.dlq"
RDKAFKA_TOPIC = "bench.rdkafka.person"
RDKAFKA_DLQ_TOPIC = "bench.rdkafka.dlq"
WARMUP = 20_000  # records sent before the exchange run, so the broker is warm for both sides
WARMUP_TOPIC = "bench.warmup"
PARTITIONS = 3  # what ensure_topics gives the exchange's topics

# The producer settings of exchange.kafka.producer.DEFAULTS, in kafka-python's spelling.
RAW_PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "max_in_flight_requests_per_connection": 5,
    "retries": 2**31 - 1,
    "delivery_timeout_ms": 120_000,
    "client_id": "bench-raw-producer",
}

# As in exchange/local/demo.py.
_SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"]
_GIVEN = ["秀英", "伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰"]
_DIVISIONS = ["110105", "110108", "310104", "310115", "440106", "440305", "330106"]
_DOB_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]

# (key, value, headers or None), as consumed back from the exchange's topics.
HeldRecord = tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]


class BenchmarkError(RuntimeError):
    """A check failed: the timings would mean nothing."""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The department export
# --------------------------------------------------------------------------


def _rows(count: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    first_day = date(1950, 1, 1).toordinal()
    for i in range(count):
        born = date.fromordinal(first_day + rng.randrange(0, 365 * 55))
        sex = rng.choice("12")
        division = rng.choice(_DIVISIONS)
        number = resident_number(division, born, i + 10, sex)
        phone = f"13{rng.randrange(0, 10**9):09d}"
        dob = born.strftime(rng.choice(_DOB_FORMATS))
        surname, given = rng.choice(_SURNAMES), rng.choice(_GIVEN)
        if i % INVALID_EVERY == INVALID_EVERY // 2:
            kind = (i // INVALID_EVERY) % 3
            if kind == 0:  # wrong check character
                number = number[:-1] + ("0" if number[-1] != "0" else "1")
            elif kind == 1:  # impossible date
                dob = f"{born.year}-02-30"
            else:  # unknown sex code
                sex = "X"
        yield f"HR-{1000 + i},{number},{surname},{given},{dob},{sex},{division},{phone}\n"


def invalid_rows(count: int) -> int:
    return sum(1 for i in range(count) if i % INVALID_EVERY == INVALID_EVERY // 2)


def write_source(folder: Path, count: int, seed: int = SEED) -> Path:
    """Stream the CSV to disk and write the demo's connector definition (``examples/``) beside
    it; return the definition's path."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "residents.csv").open("w", encoding="utf-8", newline="") as handle:
        handle.write("local_id,id_number,surname,given,dob,sex,division,phone\n")
        chunk: list[str] = []
        for line in _rows(count, seed):
            chunk.append(line)
            if len(chunk) >= 10_000:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))
    definition = folder / "household_registry.toml"
    definition.write_text(examples.HOUSEHOLD_REGISTRY.read_text(encoding="utf-8"), encoding="utf-8")
    return definition


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------


def _status_kib(field_name: str, pid: int | str = "self") -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far (its threads included), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_of(pid: int) -> list[int]:
    """The children ``pid``'s main thread started (the exchange's worker processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


class _WorkerPeaks(threading.Thread):
    """Reads the peak RSS (VmHWM) of this process's children every 0.2 s, keeping the last
    figure of each: the exchange's worker processes, which exit before the run returns."""

    def __init__(self) -> None:
        super().__init__(name="worker-peaks", daemon=True)
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, float] = {}  # CPU seconds of each worker, as last read
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.2):
            for child in _children_of(me):
                kib = _status_kib("VmHWM", child)
                if kib:
                    self.peaks[child] = max(kib, self.peaks.get(child, 0))
                    self.cpu[child] = max(_cpu_seconds(child), self.cpu.get(child, 0.0))

    def stop(self) -> dict[int, int]:
        self._done.set()
        self.join()
        return dict(self.peaks)


@dataclass
class ChildResult:
    """What a child process reports back."""

    elapsed: float = 0.0
    peak_rss_kib: int = 0
    held_rss_kib: int = 0  # raw: resident size before sending (imports and held records)
    workers: int = 1  # exchange: processes that prepared records (the run's own included)
    worker_peaks_kib: dict[int, int] = field(default_factory=dict)  # exchange: by worker pid
    cpu_s: float = 0.0  # CPU time of the child while timed (its threads included)
    workers_cpu_s: float = 0.0  # exchange: CPU time of its worker processes (as last read)
    broker_cpu_s: float = 0.0  # the broker's CPU time over the same wall time
    read: int = 0
    published: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    reconciled: bool = False
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def peak_rss_mb(self) -> float:
        """The child's own peak plus the sum of its worker processes' peaks."""
        return (self.peak_rss_kib + sum(self.worker_peaks_kib.values())) / 1024

    @property
    def memory(self) -> str:
        """The peak, and what it is made of when there were worker processes."""
        if not self.worker_peaks_kib:
            return f"{self.peak_rss_mb:,.0f}"
        workers = " + ".join(f"{kib / 1024:,.0f}" for kib in self.worker_peaks_kib.values())
        return f"{self.peak_rss_mb:,.0f} ({self.peak_rss_kib / 1024:,.0f} + workers {workers})"

    @property
    def held_rss_mb(self) -> float:
        return self.held_rss_kib / 1024


def _exchange_child(
    conn: Connection,
    definition_path: str,
    bootstrap: str,
    db_url: str,
    master_key: bytes,
    linkage_key: bytes,
    workers: int | None,
) -> None:
    """Child process: one connector run, as ``exchange connector run`` does it."""
    result = ChildResult()
    peaks = _WorkerPeaks()
    try:
        sessions = session_factory(make_engine(db_url))
        keys = Keys(LocalKeyStore(sessions, master_key), linkage_key)
        result.workers = usable_cores() if workers is None else workers
        gc.collect()
        peaks.start()
        cpu = time.process_time()
        start = time.perf_counter()
        report = run_connector(
            load_definition(Path(definition_path)),
            bootstrap=bootstrap,
            store=SchemaStore(sessions),
            keys=keys,
            sessions=sessions,
            workers=workers,
            restart=True,  # every run reads the whole source, whatever ran before it
        )
        result.elapsed = time.perf_counter() - start
        result.cpu_s = time.process_time() - cpu
        result.worker_peaks_kib = peaks.stop()
        result.workers_cpu_s = sum(peaks.cpu.values())
        result.read, result.published, result.rejected = (
            report.read,
            report.published,
            report.rejected,
        )
        result.reasons = dict(report.reasons)
        result.reconciled = report.reconciled
    except BaseException:
        result.error = traceback.format_exc()
    result.peak_rss_kib = _status_kib("VmHWM")
    conn.send(result)
    conn.close()


def _dlq_slots(total: int, dead: int) -> bytearray:
    """1 where a dead letter goes: ``dead`` of ``total`` slots, evenly spread."""
    slots = bytearray(total)
    for k in range(dead):
        slots[(k * total) // dead + (total // dead) // 2] = 1
    return slots


def _raw_child(
    conn: Connection,
    bootstrap: str,
    held_path: str,
    topics: tuple[str, str],
    counts: tuple[int, int],
    client: str,
) -> None:
    """Child process: a bare producer sending the exchange's records, one flush at the end.

    ``client`` is ``kafka-python`` (a KafkaProducer, the baseline) or ``librdkafka``
    (a confluent-kafka Producer, the client the exchange itself uses).
    """
    result = ChildResult()
    try:
        with open(held_path, "rb") as handle:
            std, dead = pickle.load(handle)
        topic, dlq_topic = topics
        published, rejected = counts
        total = published + rejected
        slots = _dlq_slots(total, rejected) if rejected else bytearray(total)
        gc.collect()
        result.held_rss_kib = _status_kib("VmRSS")
        n_std, n_dead = len(std), len(dead)
        i_std = i_dead = 0
        cpu = time.process_time()
        start = time.perf_counter()
        if client == "librdkafka":
            rd = RdKafkaProducer(
                {**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap, "client.id": "bench-raw"}
            )

            def send(topic: str, key: bytes, value: bytes, headers: list[Any]) -> None:
                while True:
                    try:
                        rd.produce(topic, value=value, key=key, headers=headers)
                        break
                    except BufferError:
                        rd.poll(0.05)
                rd.poll(0)

        else:
            kafka = KafkaProducer(bootstrap_servers=bootstrap, **RAW_PRODUCER_CONFIG)

            def send(topic: str, key: bytes, value: bytes, headers: list[Any]) -> None:
                kafka.send(topic, key=key, value=value, headers=headers)

        for slot in slots:
            if slot:
                key, value, headers = dead[i_dead % n_dead]
                send(dlq_topic, key, value, headers)
                i_dead += 1
            else:
                key, value, headers = std[i_std % n_std]
                send(topic, key, value, headers)
                i_std += 1
        if client == "librdkafka":
            if rd.flush(120):
                raise BenchmarkError("librdkafka: records not acknowledged after 120 s")
        else:
            kafka.flush(timeout=120)
            kafka.close(timeout=30)
        result.elapsed = time.perf_counter() - start
        result.cpu_s = time.process_time() - cpu
        result.read = total
        result.published, result.rejected = i_std, i_dead
        result.reconciled = True
    except BaseException:
        result.error = traceback.format_exc()
    result.peak_rss_kib = _status_kib("VmHWM")
    conn.send(result)
    conn.close()


def run_child(
    name: str, target: Callable[..., None], *args: object, broker_pid: int = 0
) -> ChildResult:
    """Run ``target(conn, *args)`` in a spawned process; poll it; return its result, with
    the CPU time the broker (``broker_pid``) used meanwhile."""
    broker_cpu = _cpu_seconds(broker_pid) if broker_pid else 0.0
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, *args), name=name, daemon=True)
    started = time.monotonic()
    process.start()
    sender.close()
    result: ChildResult | None = None
    try:
        while result is None:
            if receiver.poll(15):
                try:
                    result = receiver.recv()
                except EOFError:
                    break
            elif not process.is_alive():
                break
            else:
                pid = process.pid or 0
                log(
                    f"  {name}: {time.monotonic() - started:,.0f} s, "
                    f"RSS {_status_kib('VmRSS', pid) / 1024:,.0f} MB "
                    f"(peak {_status_kib('VmHWM', pid) / 1024:,.0f} MB)"
                )
        process.join(timeout=60)
    finally:
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
        receiver.close()
    if result is None:
        raise BenchmarkError(f"{name} child died (exit code {process.exitcode}) without a result")
    if broker_pid:
        result.broker_cpu_s = _cpu_seconds(broker_pid) - broker_cpu
    if result.error:
        raise BenchmarkError(f"{name} child failed:\n{result.error}")
    return result


# --------------------------------------------------------------------------
# Kafka checks
# --------------------------------------------------------------------------


def count_records(bootstrap: str, topic: str) -> int:
    """The records committed to ``topic`` (all partitions), manifests not counted.

    Read to the end of every partition with librdkafka in ``read_committed``: the count
    is right whether the records were sent one by one or in transactions (whose commit
    markers take offsets, so end offsets would not count records), and a connector's
    batch manifests (header ``manifest``) are not records.
    """
    consumer = RdKafkaConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-count-{secrets.token_hex(4)}",
            "client.id": "bench-count",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        found = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if found is None or not found.partitions:
            raise BenchmarkError(f"topic {topic} has no partitions")
        partitions = set(found.partitions)
        consumer.assign([RdTopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        count, at_end = 0, set[int]()
        deadline = time.monotonic() + 600
        while at_end != partitions:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{topic}: not at the end after 600 s ({count} records)")
            for message in consumer.consume(10_000, timeout=1.0):
                error, partition = message.error(), message.partition()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and partition is not None:
                        at_end.add(partition)
                        continue
                    raise BenchmarkError(f"{topic}: {error}")
                at_end.discard(partition)
                headers = message.headers() or []
                if not any(header[0] == manifest.MANIFEST for header in headers):
                    count += 1
        return count
    finally:
        consumer.close()


def warm_up(bootstrap: str) -> None:
    """Send WARMUP records of the exchange's size, so the broker's JIT is warm for both sides."""
    ensure_topics(bootstrap, [WARMUP_TOPIC], partitions=PARTITIONS)
    kafka = KafkaProducer(bootstrap_servers=bootstrap, **RAW_PRODUCER_CONFIG)
    try:
        value = bytes(range(256)) + bytes(64)
        headers = [(f"h{i}", bytes(24)) for i in range(9)]
        for i in range(WARMUP):
            kafka.send(WARMUP_TOPIC, key=f"warm:{i}".encode(), value=value, headers=headers)
        kafka.flush(timeout=120)
    finally:
        kafka.close(timeout=30)
    check_counts(bootstrap, {WARMUP_TOPIC: WARMUP})
    # A fresh broker creates its transaction state topic on the first transactional
    # producer (minutes on a loaded machine): once, before anything is timed.
    Producer(bootstrap, transactional_id="bench-warmup", connect_timeout=120).close()


def check_counts(bootstrap: str, expected: dict[str, int]) -> None:
    for topic, count in expected.items():
        found = count_records(bootstrap, topic)
        if found != count:
            raise BenchmarkError(f"topic {topic} holds {found} records, expected {count}")


def consume(bootstrap: str, topic: str, limit: int) -> list[HeldRecord]:
    """The first ``limit`` committed records of ``topic`` (all partitions), exact bytes;
    batch manifests (header ``manifest``) are skipped."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="bench-reader",
        enable_auto_commit=False,
        max_poll_records=5000,
        isolation_level="read_committed",
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        held: list[HeldRecord] = []
        deadline = time.monotonic() + 300
        while len(held) < limit:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"read only {len(held)} of {limit} records from {topic}")
            for batch in consumer.poll(timeout_ms=1000).values():
                for message in batch:
                    headers = [(k, bytes(v)) for k, v in message.headers] or None
                    if not any(k == manifest.MANIFEST for k, _ in headers or ()):
                        held.append((message.key, message.value, headers))
        return held[:limit]
    finally:
        consumer.close()


def verify_held(
    held: Sequence[HeldRecord],
    dead: Sequence[HeldRecord],
    definition: ConnectorDefinition,
    keys: Keys,
    store: SchemaStore,
    check: int = 2_000,
) -> None:
    """The records the raw baseline will send are the exchange's, and they are sound."""
    standard = definition.standard
    serde = AvroSerde(store.schema_text)
    public = keys.keystore.public_keys(definition.connector.department)
    cipher = FieldCipher(keys.keystore)
    sensitive = [f for f in standard.fields if f.sensitivity is Sensitivity.SENSITIVE]
    for index, (key, value, headers) in enumerate(held[:check]):
        if key is None or not headers:
            raise BenchmarkError(f"held record {index} has no key or no headers")
        named = provenance.headers_dict(headers)
        if provenance.SIGNATURE in named:
            provenance.verify_record(named, value, public)  # raises if it does not verify
        elif manifest.BATCH not in named:
            # A record of a signed batch is covered by its batch's manifest, which the
            # builder verifies (not this check); a record with neither is not the exchange's.
            raise BenchmarkError(f"held record {index} has neither a signature nor a batch")
        _, record = serde.decode(value)
        for spec in sensitive:
            token = record.get(spec.name)
            if token is None:
                continue
            plain = cipher.decrypt(standard.dataset, spec.name, key.decode(), token)
            if spec.identifier:
                text = str(json.loads(plain))
                expected = blind_index(keys.linkage_key, standard.blind_index_domain(spec), text)
                if record.get(spec.name + "_bidx") != expected:
                    raise BenchmarkError(f"held record {index}: blind index does not match")
    for index, (_, value, _) in enumerate(dead[:check]):
        if b'"reasons"' not in value:
            raise BenchmarkError(f"dead letter {index} names no reasons")


# --------------------------------------------------------------------------
# Breakdown (in this process, no Kafka)
# --------------------------------------------------------------------------


class _NullProducer(Producer):
    """Stands in for the exchange's Producer: accepts sends and does nothing."""

    def __init__(self) -> None:  # no broker to reach
        pass

    transactional_id = "bench-null"

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> Delivery:
        return _DONE

    def settle(self, deliveries: Iterable[Delivery], timeout: float = 120.0) -> None:
        return None

    def begin(self) -> None:
        return None

    def abort(self, timeout: float = 60.0) -> None:
        return None


_DONE = Delivery()
_DONE.done = True


@dataclass(frozen=True)
class Step:
    name: str
    micros: float  # CPU µs a record (median of rounds)
    count: int


STEP_READ = "read CSV row (csv reader, SourceRow)"
STEP_MAP = "map + validate (map_row)"
STEP_PREPARE = "prepare(): map, validate, hash, encrypt, blind index, encode"
STEP_PUBLISH = "publish() to a null producer: signed message, Ed25519, headers"


def _per_record(run: Callable[[], object], count: int, rounds: int = 3) -> float:
    """Median CPU microseconds a record over ``rounds`` runs (CPU, not wall time: the
    machine is shared, and a step waits for nothing)."""
    times: list[float] = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times) / count * 1e6


def breakdown(
    definition: ConnectorDefinition, store: SchemaStore, keys: Keys, rows: int
) -> list[Step]:
    """Where a record's time goes, without Kafka, on the first ``rows`` rows."""
    first: list[SourceRow] = []

    def read() -> None:
        first.clear()
        for row in open_source(definition).rows():
            first.append(row)
            if len(first) >= rows:
                break

    read_us = _per_record(read, rows)
    count = len(first)
    key_column = definition.source.key
    standard = definition.standard
    pipeline = RecordPipeline(definition, store=store, keys=keys, kafka=_NullProducer())
    keyed = [(row.values, row.values.get(key_column, "").strip()) for row in first]

    def mapping() -> None:
        for values, _ in keyed:
            map_row(definition, standard, values)

    prepared: list[Prepared] = []

    def prepare() -> None:
        prepared.clear()
        for values, key in keyed:
            result = pipeline.prepare(values, key)
            if isinstance(result, Prepared):
                prepared.append(result)

    map_us = _per_record(mapping, count)
    prepare_us = _per_record(prepare, count)

    def publish() -> None:
        for item in prepared:
            pipeline.publish(item)
        pipeline.abort()  # the batch held nothing real: let it go

    publish_us = _per_record(publish, len(prepared))
    department, dataset = pipeline.department, pipeline.dataset
    signing_key = keys.keystore.signing_key(department)[1]
    messages = [
        provenance.signed_message(
            department=department,
            dataset=dataset,
            source_id=p.source_id,
            content_hash=p.content_hash,
            value=p.value,
        )
        for p in prepared
    ]

    def signing() -> None:
        for message in messages:
            sign(signing_key, message)

    sign_us = _per_record(signing, len(messages))
    return [
        Step(STEP_READ, read_us, count),
        Step(STEP_MAP, map_us, count),
        Step(STEP_PREPARE, prepare_us, count),
        Step(STEP_PUBLISH, publish_us, len(prepared)),
        Step("Ed25519 sign alone (exchange.security.crypto.sign)", sign_us, len(messages)),
    ]


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def java_version() -> str:
    try:
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stderr or out.stdout).splitlines()
    return lines[0].strip() if lines else "unknown"


def crc32c_implementation() -> str:
    """Which CRC-32C kafka-python uses for record batches (v2): C if ``crc32c`` imports."""
    from kafka.record import util

    if getattr(util, "crc32c_c", None) is not None:
        return f"C (crc32c {version('crc32c')})"
    return "pure Python (no crc32c package)"


def machine(started: datetime) -> dict[str, str]:
    info = machine_info()
    info["date"] = started.isoformat(timespec="seconds")
    info["kafka"] = (
        f"broker {kafka_version()} (1 node, heap 512m), kafka-python {version('kafka-python')}"
    )
    info["crc32c"] = crc32c_implementation()
    info["java"] = java_version()
    info["crypto"] = f"cryptography {version('cryptography')}"
    return info


@dataclass
class Outcome:
    rows: int
    info: dict[str, str]
    exchanges: list[ChildResult]  # one connector run for each --workers value, in order
    raw: ChildResult
    rdkafka: ChildResult
    held_std: int
    held_dead: int
    steps: list[Step]
    finished: datetime
    load: tuple[float, float]

    def ratio(self, exchange: ChildResult) -> float:
        """The issue's figure: the connector's rate over raw kafka-python's."""
        return exchange.rate / self.raw.rate

    def ratio_rdkafka(self, exchange: ChildResult) -> float:
        return exchange.rate / self.rdkafka.rate


def _label(r: ChildResult) -> str:
    return f"exchange, {r.workers} process{'es' if r.workers > 1 else ''}"


def _verdict(outcome: Outcome, r: ChildResult) -> str:
    ratio = outcome.ratio(r)
    ratio_ok = ratio >= TARGET_RATIO
    rss_ok = r.peak_rss_mb < TARGET_RSS_MB
    return (
        f"{_label(r)}: ratio {ratio:.2f} {'meets' if ratio_ok else 'misses'} the aim of >= "
        f"{TARGET_RATIO}; peak memory {r.peak_rss_mb:,.0f} MB "
        f"{'meets' if rss_ok else 'misses'} the aim of < {TARGET_RSS_MB:.0f} MB"
    )


def _cpu_use(r: ChildResult) -> str:
    """Where the CPU went while a side was timed, in µs a record."""
    per = 1e6 / r.read if r.read else 0.0
    parts = [f"its process {r.cpu_s * per:,.0f}"]
    if r.workers_cpu_s:
        parts.append(f"its workers {r.workers_cpu_s * per:,.0f}")
    parts.append(f"the broker {r.broker_cpu_s * per:,.0f}")
    total = r.cpu_s + r.workers_cpu_s + r.broker_cpu_s
    return (
        f"{', '.join(parts)} µs a record; {total * per:,.0f} in all, "
        f"{total / r.elapsed if r.elapsed else 0:.2f} cores busy on average"
    )


def _cpu_per_record(r: ChildResult) -> float:
    """CPU µs a record of a side's own processes (not the broker's)."""
    return (r.cpu_s + r.workers_cpu_s) * 1e6 / r.read if r.read else 0.0


def parts(outcome: Outcome) -> list[tuple[str, float]]:
    """The connector's CPU a record by part: read, prepare and sign (the breakdown, one
    process, no Kafka), and send (the bare librdkafka producer's own CPU a record, the
    cost of handing the same bytes to the same client)."""
    by_name = {step.name: step.micros for step in outcome.steps}
    return [
        ("read (CSV row)", by_name[STEP_READ]),
        ("prepare (map, validate, hash, encrypt, index, encode)", by_name[STEP_PREPARE]),
        ("  of which map + validate", by_name[STEP_MAP]),
        ("sign + headers (publish() to a null producer)", by_name[STEP_PUBLISH]),
        ("send (librdkafka, the bare producer's CPU)", _cpu_per_record(outcome.rdkafka)),
    ]


def print_report(outcome: Outcome) -> None:
    raw, settled = outcome.raw, outcome.rdkafka
    info = outcome.info
    print()
    print(
        f"Ingest benchmark: {outcome.rows:,} CSV rows through connector runs "
        "vs raw kafka-python and raw librdkafka, same broker"
    )
    for key, value in info.items():
        print(f"  {key:<9} {value}")
    print(f"  finished  {outcome.finished.isoformat(timespec='seconds')}")
    print(f"  load avg  {outcome.load[0]:.2f} at start, {outcome.load[1]:.2f} at end (1 min)")
    print()
    for ex in outcome.exchanges:
        print(
            f"{_label(ex)}: read {ex.read:,} = published {ex.published:,} + rejected "
            f"{ex.rejected:,} ({'reconciled' if ex.reconciled else 'NOT reconciled'}); "
            f"reasons {ex.reasons}"
        )
    print(
        f"raw: replays the first {outcome.held_std:,} published records and "
        f"{outcome.held_dead:,} dead letters, cycled to the same counts; its RSS before "
        f"sending (interpreter, imports, held records): {raw.held_rss_mb:,.0f} MB"
    )
    print()
    header = (
        f"{'':<30}{'rec/s':>10}{'s':>8}{'us/rec':>9}{'CPU us/rec':>12}{'peak RSS MB':>13}"
        f"{'vs raw':>8}{'vs rdkafka':>12}"
    )
    print(header)
    print("-" * len(header))
    sides = [(_label(ex), ex) for ex in outcome.exchanges]
    sides += [("raw KafkaProducer", raw), ("raw librdkafka Producer", settled)]
    for name, r in sides:
        print(
            f"{name:<30}{r.rate:>10,.0f}{r.elapsed:>8.1f}{1e6 / r.rate:>9.1f}"
            f"{_cpu_per_record(r):>12.1f}{r.peak_rss_mb:>13,.0f}"
            f"{outcome.ratio(r):>8.3f}{outcome.ratio_rdkafka(r):>12.3f}"
        )
    for ex in outcome.exchanges:
        print(f"{_label(ex)} peak RSS MB: {ex.memory} (the run's process + each worker's peak)")
    for name, r in sides:
        print(f"{name} CPU: {_cpu_use(r)}")
    print()
    for ex in outcome.exchanges:
        print(_verdict(outcome, ex) + ".")
    print()
    print(
        f"The connector's CPU a record by part (one process, no Kafka, median of 3 passes "
        f"over {outcome.steps[0].count:,} rows; send: the bare librdkafka side):"
    )
    for name, micros in parts(outcome):
        print(f"  {name:<58}{micros:>8.2f} CPU us/rec")
    print()
    print("Breakdown steps:")
    for step in outcome.steps:
        print(f"  {step.name:<66}{step.micros:>8.2f} CPU us/rec")
    print()
    print("Markdown for docs/benchmarks.md:")
    print()
    print(markdown(outcome))


def markdown(outcome: Outcome) -> str:
    raw, settled = outcome.raw, outcome.rdkafka
    info = outcome.info
    lines = [
        f"Run {info['date']} to {outcome.finished:%H:%M:%S}, `--rows {outcome.rows}`; "
        f"{info['cpu']} ({info['cores']} cores), {info['platform']}, {info['python']}, "
        f"{info['kafka']} with CRC-32C in {info['crc32c']}, {info['java']}, "
        f"{info['crypto']}, fastavro {info['fastavro']}; "
        f"load average {outcome.load[0]:.2f} at start, {outcome.load[1]:.2f} at end.",
        "",
        "| Side | Records/s | Wall s | CPU µs a record | Peak RSS MB | Published | Rejected "
        "| **Ratio vs kafka-python** | Ratio vs librdkafka |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ex in outcome.exchanges:
        lines.append(
            f"| {_label(ex)} (`run_connector`, `workers={ex.workers}`) | {ex.rate:,.0f} "
            f"| {ex.elapsed:.1f} | {_cpu_per_record(ex):.1f} | {ex.memory} | {ex.published:,} "
            f"| {ex.rejected:,} | **{outcome.ratio(ex):.3f}** | {outcome.ratio_rdkafka(ex):.3f} |"
        )
    for name, r in (("raw `KafkaProducer`", raw), ("raw librdkafka `Producer`", settled)):
        lines.append(
            f"| {name} | {r.rate:,.0f} | {r.elapsed:.1f} | {_cpu_per_record(r):.1f} "
            f"| {r.peak_rss_mb:,.0f} ({r.held_rss_mb:,.0f} before sending) "
            f"| {r.published:,} | {r.rejected:,} | {outcome.ratio(r):.3f} "
            f"| {outcome.ratio_rdkafka(r):.3f} |"
        )
    sides = [(_label(ex), ex) for ex in outcome.exchanges]
    sides += [("raw kafka-python", raw), ("raw librdkafka", settled)]
    lines += [
        "",
        "CPU while timed (each side's process with its Kafka client's threads, the "
        "connector's workers when there are any, the broker): "
        + "; ".join(f"{name}: {_cpu_use(r)}" for name, r in sides)
        + ".",
        "",
        "; ".join(
            f"{_verdict(outcome, ex)[0].upper()}{_verdict(outcome, ex)[1:]}"
            for ex in outcome.exchanges
        )
        + ".",
        "",
        f"| The connector's part (one process, {outcome.steps[0].count:,} rows) "
        "| CPU µs a record |",
        "|---|---:|",
    ]
    for name, micros in parts(outcome):
        lines.append(f"| {name.strip()} | {micros:.2f} |")
    return "\n".join(lines)


def print_steps(rows: int, steps: list[Step]) -> None:
    """The report of ``--prepare-only``: the breakdown alone."""
    print()
    print(f"Breakdown, {rows:,} rows, one process, no Kafka (median of 3 passes):")
    for step in steps:
        print(f"  {step.name:<66}{step.micros:>8.2f} CPU us/rec")


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


@dataclass
class Setup:
    """The source, the registry database and the keys every side of a run shares."""

    definition_path: Path
    definition: ConnectorDefinition
    db_url: str
    master_key: bytes
    linkage_key: bytes
    keys: Keys
    store: SchemaStore
    dispose: Callable[[], None]


def set_up(rows: int, base: Path) -> Setup:
    log(f"writing {rows:,} CSV rows to {base / 'source'} ...")
    definition_path = write_source(base / "source", rows)
    db_url = f"sqlite:///{base / 'registry.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    master_key, linkage_key = secrets.token_bytes(32), secrets.token_bytes(32)
    return Setup(
        definition_path=definition_path,
        definition=load_definition(definition_path),
        db_url=db_url,
        master_key=master_key,
        linkage_key=linkage_key,
        keys=Keys(LocalKeyStore(sessions, master_key), linkage_key),
        store=SchemaStore(sessions),
        dispose=engine.dispose,
    )


def prepare_only(rows: int, base: Path) -> list[Step]:
    """``--prepare-only``: the breakdown without Kafka (no broker), e.g. under a profiler."""
    setup = set_up(rows, base)
    try:
        log(f"breakdown on {rows:,} rows (no Kafka) ...")
        return breakdown(setup.definition, setup.store, setup.keys, rows)
    finally:
        setup.dispose()


def run(rows: int, base: Path, workers: Sequence[int | None] = (1, 2)) -> Outcome:
    """Each connector run (one for each of ``workers``), then the raw sides, then the
    breakdown."""
    started = datetime.now(UTC).astimezone()
    load_start = os.getloadavg()[0]
    info = machine(started)
    setup = set_up(rows, base)
    definition = setup.definition
    expected_rejected = invalid_rows(rows)
    topic, dlq_topic = (
        definition.standard.topic,
        department_dlq(definition.connector.department, definition.standard.dataset),
    )

    log("starting a single-node Kafka broker (heap 512m) ...")
    broker = LocalKafka(base / "kafka", size=1, heap="512m", partitions=PARTITIONS)
    try:
        broker.start()
        bootstrap = broker.bootstrap_servers
        broker_pid = next(iter(broker.pids().values()), 0)
        log(f"broker on {bootstrap}; warming it up with {WARMUP:,} records (not timed) ...")
        warm_up(bootstrap)
        exchanges: list[ChildResult] = []
        for processes in workers:
            log(f"exchange run, workers={processes or 'the usable cores'} (child process) ...")
            exchange = run_child(
                "exchange",
                _exchange_child,
                str(setup.definition_path),
                bootstrap,
                setup.db_url,
                setup.master_key,
                setup.linkage_key,
                processes,
                broker_pid=broker_pid,
            )
            log(
                f"exchange ({exchange.workers} process(es) preparing): {exchange.read:,} read "
                f"in {exchange.elapsed:.1f} s ({exchange.rate:,.0f} rec/s), peak RSS "
                f"{exchange.memory} MB"
            )
            if not exchange.reconciled or exchange.read != rows:
                raise BenchmarkError(
                    f"read {exchange.read} of {rows} rows, published {exchange.published} + "
                    f"rejected {exchange.rejected}"
                )
            if exchange.rejected != expected_rejected:
                raise BenchmarkError(
                    f"rejected {exchange.rejected}, but {expected_rejected} rows were written "
                    f"invalid ({exchange.reasons})"
                )
            exchanges.append(exchange)
            # Every run publishes the whole source again, to the same topics.
            check_counts(
                bootstrap,
                {
                    topic: sum(e.published for e in exchanges),
                    dlq_topic: sum(e.rejected for e in exchanges),
                },
            )
        first = exchanges[0]

        log("reading back the exchange's records for the raw baseline ...")
        held = consume(bootstrap, topic, min(first.published, HELD))
        dead = consume(bootstrap, dlq_topic, min(first.rejected, HELD))
        verify_held(held, dead, definition, setup.keys, setup.store)
        held_path = base / "held.pickle"
        with held_path.open("wb") as handle:
            pickle.dump((held, dead), handle, protocol=pickle.HIGHEST_PROTOCOL)
        held_std, held_dead = len(held), len(dead)
        del held, dead
        gc.collect()

        counts = (first.published, first.rejected)
        ensure_topics(
            bootstrap,
            [RAW_TOPIC, RAW_DLQ_TOPIC, RDKAFKA_TOPIC, RDKAFKA_DLQ_TOPIC],
            partitions=PARTITIONS,
        )
        log("raw KafkaProducer (child process) ...")
        raw = run_child(
            "raw",
            _raw_child,
            bootstrap,
            str(held_path),
            (RAW_TOPIC, RAW_DLQ_TOPIC),
            counts,
            "kafka-python",
            broker_pid=broker_pid,
        )
        log(f"raw: {raw.read:,} sent in {raw.elapsed:.1f} s ({raw.rate:,.0f} rec/s)")
        log("raw librdkafka Producer (child process) ...")
        settled = run_child(
            "rdkafka",
            _raw_child,
            bootstrap,
            str(held_path),
            (RDKAFKA_TOPIC, RDKAFKA_DLQ_TOPIC),
            counts,
            "librdkafka",
            broker_pid=broker_pid,
        )
        log(
            f"librdkafka: {settled.read:,} sent in {settled.elapsed:.1f} s "
            f"({settled.rate:,.0f} rec/s)"
        )
        check_counts(
            bootstrap,
            {
                RAW_TOPIC: first.published,
                RAW_DLQ_TOPIC: first.rejected,
                RDKAFKA_TOPIC: first.published,
                RDKAFKA_DLQ_TOPIC: first.rejected,
            },
        )
    finally:
        log("stopping the broker ...")
        broker.stop()

    log(f"breakdown on {min(rows, BREAKDOWN_ROWS):,} rows (no Kafka) ...")
    steps = breakdown(definition, setup.store, setup.keys, min(rows, BREAKDOWN_ROWS))
    setup.dispose()
    return Outcome(
        rows=rows,
        info=info,
        exchanges=exchanges,
        raw=raw,
        rdkafka=settled,
        held_std=held_std,
        held_dead=held_dead,
        steps=steps,
        finished=datetime.now(UTC).astimezone(),
        load=(load_start, os.getloadavg()[0]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="A connector run (CSV to Kafka) against a raw kafka-python producer "
        "sending the same records to the same broker.",
    )
    parser.add_argument(
        "--rows", type=_positive, default=DEFAULT_ROWS, help=f"default {DEFAULT_ROWS}"
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        nargs="+",
        default=[1, 2],
        help="one connector run for each value: the processes preparing its records, its "
        "own included (connector_workers); default: 1 2",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="no Kafka: only the breakdown (read, map, prepare, publish to a null producer) "
        f"on min(--rows, {BREAKDOWN_ROWS:,}) rows, e.g. under py-spy or cProfile",
    )
    parser.add_argument(
        "--keep-dir",
        action="store_true",
        help="keep the temporary directory (CSV, broker data, database) and print its path",
    )
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        if args.prepare_only:
            rows = min(args.rows, BREAKDOWN_ROWS)
            print_steps(rows, prepare_only(rows, base))
            return 0
        outcome = run(args.rows, base, args.workers)
    except BenchmarkError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep_dir:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print_report(outcome)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
