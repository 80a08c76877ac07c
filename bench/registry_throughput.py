"""Registry build throughput: records/s into the registry, linkage included, beside a bare consumer.

Run from the project root::

    .venv/bin/python -m bench.registry_throughput [--records N] [--backends sqlite,postgresql]

1. Starts its own single-node Kafka broker (:class:`exchange.local.broker.LocalKafka`,
   heap 512m) and a catalogue database (schema registry and keystore) in a
   temporary directory.
2. Publishes ``N`` person records once, through real connector runs
   (:func:`connectors.run_connector`, one per department, each signing with its
   own Ed25519 key): a synthetic population from :mod:`bench.population`
   (four departments holding overlapping, independently corrupted views of the
   same people, duplicates included), so linkage does real work. Records whose
   department lacks the resident id are left out of the exports, since the
   ``Person`` standard requires it and the connector would reject them; every
   exported row must be published.
3. For each backend, in a fresh database holding a copy of the catalogue (a
   SQLite file; a new database on a throwaway PostgreSQL server started the
   way the tests start one, ``tests.support.postgres``), in child processes one
   after the other:

   * **bare**: a kafka-python ``KafkaConsumer`` with the settings of
     :func:`exchange.kafka.clients.consumer` (same pattern, fresh group) polling up
     to 5,000 records at a time and committing after each poll, to the end;
   * **verify**: the same consumer, also checking each record's signature
     (:func:`exchange.security.provenance.verify_record`, the department's public keys
     read once) in that one process: the work no build can skip;
   * **builder**: a :class:`exchange.registry.builder.RegistryBuilder` with a fresh
     group, from its construction until it has applied all ``N`` records
     (signature verified, decoded, upserted, linked, offsets committed).

   On PostgreSQL only the first ``--postgresql-records`` (default 200,000)
   are built: a million would take well over 25 minutes there.
   Records/s is ``N`` over that wall time; peak RSS is the child's ``VmHWM``
   plus the peaks of its own child processes, if any.
4. Checks before reporting (exit status 1 otherwise): the registry holds ``N``
   live records and ``N`` versions, nothing was dead-lettered, every linked
   record has an entity, and the entities are plausible against the true
   people (count within 10%, pairwise precision and recall at least 0.9).

Progress goes to stderr, the report (a markdown block for docs/benchmarks.md)
to stdout.
"""

from __future__ import annotations

import argparse
import csv
import gc
import multiprocessing
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, func, insert, select

from bench import population
from bench.serde import machine_info
from connectors import load_definition, run_connector
from connectors.pipeline import Keys
from exchange.core.config import RegistrySettings
from exchange.core.db import Base, make_engine, migrate, session_factory
from exchange.core.models import Entity, LinkEdge, RecordVersion, SourceRecord
from exchange.local import examples
from exchange.local.broker import LocalKafka
from exchange.registry.builder import DLQ_TOPIC, MAX_POLL_RECORDS, TOPIC_PATTERN, RegistryBuilder
from exchange.security import provenance
from exchange.security.keystore import LocalKeyStore
from schemas import SchemaStore
from schemas.validators import resident_id

DEFAULT_RECORDS = 1_000_000
DEFAULT_POSTGRESQL_RECORDS = 200_000
DEPARTMENTS = 4
RECORDS_PER_PERSON = 2.6  # what bench.population gives with four departments
BUILD_TIMEOUT_S = 4 * 3600.0
# What a department's catalogue holds that the builder reads: schemas and public keys.
CATALOGUE_TABLES = (
    "schemas",
    "subject_versions",
    "registry_config",
    "key_encryption_keys",
    "data_keys",
    "signing_keys",
)

# The exports are in the standard's shape already (bench.population's records): the
# household registry's example definition, each field read from the column of its name.
FIELD_COLUMNS = {
    "resident_id": "resident_id",
    "family_name": "family_name",
    "given_name": "given_name",
    "full_name": "full_name",
    "birth_date": "birth_date",
    "sex": "sex",
    "residence_division_code": "division",
    "phone": "phone",
}
COLUMNS = ("local_id", *FIELD_COLUMNS.values())


class BenchmarkError(RuntimeError):
    """A check failed: the timings would mean nothing."""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The departments' exports
# --------------------------------------------------------------------------


def definition(department: str) -> str:
    """``department``'s connector definition for its CSV export (see FIELD_COLUMNS)."""
    return examples.definition_text(
        connector={"id": f"bench-{department}", "department": department},
        source={"path": f"{department}.csv", "key": "local_id"},
        fields={field: {"from": column} for field, column in FIELD_COLUMNS.items()},
    )


def write_exports(folder: Path, records: int, seed: int) -> tuple[list[Path], dict[str, str]]:
    """Write ``records`` rows over the departments' CSV exports; return their connector
    definitions and the true person of each record (by registry ref)."""
    people = int(records / RECORDS_PER_PERSON / 0.89) + 100  # 10-11% lack a valid resident id
    generated = population.persons(people, seed=seed, departments=DEPARTMENTS)
    # The connector rejects a row without a valid resident id (a mistyped one may name an
    # impossible division or birth date): such rows are left out, so every row is published.
    usable = [
        r
        for r in generated
        if r.source["resident_id"] is not None and resident_id(r.source["resident_id"]) is None
    ]
    if len(usable) < records:
        raise BenchmarkError(f"the population gave {len(usable)} usable records, not {records}")
    del generated
    truth: dict[str, str] = {}
    rows: dict[str, list[list[str]]] = defaultdict(list)
    for rec in usable[:records]:
        s = rec.source
        rows[rec.department].append(
            [
                rec.ref.rsplit("/", 1)[1],
                s["resident_id"],
                s["family_name"],
                s["given_name"],
                s["full_name"],
                s["birth_date"].isoformat(),
                s["sex"],
                s["residence_division_code"] or "",
                s["phone"] or "",
            ]
        )
        truth[rec.ref] = rec.truth
    del usable
    folder.mkdir(parents=True, exist_ok=True)
    definitions = []
    for department, lines in sorted(rows.items()):
        with (folder / f"{department}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(lines)
        path = folder / f"{department}.toml"
        path.write_text(definition(department), encoding="utf-8")
        definitions.append(path)
    return definitions, truth


def publish(bootstrap: str, sessions: Any, keys: Keys, definitions: list[Path]) -> int:
    """Run each department's connector; every row must be published."""
    published = 0
    for path in definitions:
        started = time.perf_counter()
        report = run_connector(
            load_definition(path), bootstrap=bootstrap, store=SchemaStore(sessions), keys=keys
        )
        elapsed = time.perf_counter() - started
        log(
            f"  {path.stem}: {report.published:,} published, {report.rejected:,} rejected "
            f"in {elapsed:,.0f} s"
        )
        if report.rejected:
            raise BenchmarkError(f"{path.stem}: {report.rejected} rows rejected {report.reasons}")
        published += report.published
    return published


def copy_catalogue(source: Engine, target: Engine) -> None:
    """Copy the schemas and keys the builder reads into a fresh registry database."""
    tables = [t for t in Base.metadata.sorted_tables if t.name in CATALOGUE_TABLES]
    with source.connect() as src, target.begin() as dst:
        for table in tables:
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(insert(table), rows)


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------


def _status_kib(name: str, pid: int | str = "self") -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _ChildPeaks(threading.Thread):
    """Peak RSS of this process's own children (e.g. a verification pool), read every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(name="child-peaks", daemon=True)
        self.peaks: dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.2):
            try:
                with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            for child in children:
                kib = _status_kib("VmHWM", child)
                if kib:
                    self.peaks[child] = max(kib, self.peaks.get(child, 0))

    def stop(self) -> dict[int, int]:
        self._done.set()
        self.join()
        return dict(self.peaks)


@dataclass
class ChildResult:
    elapsed: float = 0.0
    records: int = 0
    peak_rss_kib: int = 0
    child_peaks_kib: dict[int, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def peak_rss_mb(self) -> float:
        return (self.peak_rss_kib + sum(self.child_peaks_kib.values())) / 1024

    @property
    def memory(self) -> str:
        if not self.child_peaks_kib:
            return f"{self.peak_rss_mb:,.0f}"
        children = " + ".join(f"{k / 1024:,.0f}" for k in self.child_peaks_kib.values())
        return f"{self.peak_rss_mb:,.0f} ({self.peak_rss_kib / 1024:,.0f} + {children})"


class _Progress:
    """Logs a child's progress every ``every`` seconds."""

    def __init__(self, name: str, total: int, every: float = 30.0) -> None:
        self.name, self.total, self.every = name, total, every
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            rate = done / (now - self.started)
            log(
                f"  {self.name}: {done:,}/{self.total:,} in {now - self.started:,.0f} s "
                f"({rate:,.0f} rec/s), RSS {_status_kib('VmRSS') / 1024:,.0f} MB"
            )


def _consume(
    conn: Connection,
    name: str,
    bootstrap: str,
    total: int,
    on_message: Callable[[Any], None] | None = None,
) -> None:
    """Read the std.* topics to the end as the builder's consumer would, calling
    ``on_message`` (if given) on each record and doing nothing else."""
    result = ChildResult()
    try:
        progress = _Progress(name, total)
        started = time.perf_counter()
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"bench-{name}-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            client_id=f"bench-{name}",
            metadata_max_age_ms=3000,
        )
        consumer.subscribe(pattern=TOPIC_PATTERN)
        seen = size = 0
        while seen < total and time.perf_counter() - started < BUILD_TIMEOUT_S:
            batches = consumer.poll(timeout_ms=500, max_records=MAX_POLL_RECORDS)
            for messages in batches.values():
                seen += len(messages)
                size += sum(len(m.value or b"") for m in messages)
                if on_message is not None:
                    for message in messages:
                        on_message(message)
            if batches:
                consumer.commit()
            progress(seen)
        result.elapsed = time.perf_counter() - started
        result.records = seen
        result.stats = {"bytes": size}
        consumer.close()
    except BaseException:
        result.error = traceback.format_exc()
    result.peak_rss_kib = _status_kib("VmHWM")
    conn.send(result)
    conn.close()


def _bare_child(conn: Connection, bootstrap: str, total: int) -> None:
    """The bare consumer: read the std.* topics to the end, doing nothing else."""
    _consume(conn, "bare", bootstrap, total)


def _verify_child(
    conn: Connection, bootstrap: str, url: str, master_key: bytes, total: int
) -> None:
    """The bare consumer that also checks each record's signature, as the builder must
    (:func:`exchange.security.provenance.verify_record`, the department's public keys read once),
    in this one process: the work no build can skip, so the rate no build on one core
    can pass."""
    engine = make_engine(url)
    keystore = LocalKeyStore(session_factory(engine), master_key)
    keys: dict[str, dict[str, bytes]] = {}

    def verify(message: Any) -> None:
        headers = provenance.headers_dict(message.headers)
        department = headers[provenance.DEPARTMENT].decode()
        if department not in keys:
            keys[department] = keystore.public_keys(department)
        provenance.verify_record(headers, message.value or b"", keys[department])

    try:
        _consume(conn, "verify", bootstrap, total, verify)
    finally:
        engine.dispose()


def _builder_child(
    conn: Connection,
    bootstrap: str,
    url: str,
    master_key: bytes,
    linkage_key: bytes,
    total: int,
    verify_processes: int,
) -> None:
    """Build the registry from the std.* topics until ``total`` records are applied."""
    result = ChildResult()
    peaks = _ChildPeaks()
    peaks.start()
    try:
        engine = make_engine(url)
        sessions = session_factory(engine)
        keystore = LocalKeyStore(sessions, master_key)
        progress = _Progress("builder", total)
        started = time.perf_counter()
        builder = RegistryBuilder(
            bootstrap,
            sessions,
            linkage_key=linkage_key,
            keystore=keystore,
            group_id=f"bench-builder-{uuid.uuid4().hex[:8]}",
            verify_processes=verify_processes,
        )
        while builder.stats.seen < total and time.perf_counter() - started < BUILD_TIMEOUT_S:
            builder.poll_once(500)
            progress(builder.stats.seen)
        result.elapsed = time.perf_counter() - started
        result.records = builder.stats.seen
        stats = builder.stats
        result.stats = {
            "applied": stats.applied,
            "withdrawn": stats.withdrawn,
            "unchanged": stats.unchanged,
            "dead_lettered": stats.dead_lettered,
            "linked": stats.linked,
        }
        builder.close()
        engine.dispose()
    except BaseException:
        result.error = traceback.format_exc()
    result.child_peaks_kib = peaks.stop()
    result.peak_rss_kib = _status_kib("VmHWM")
    conn.send(result)
    conn.close()


def run_child(name: str, target: Callable[..., None], *args: object) -> ChildResult:
    """Run ``target(conn, *args)`` in a spawned process and return what it sends back."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, *args), name=name, daemon=False)
    process.start()
    sender.close()
    result: ChildResult | None = None
    try:
        while result is None:
            if receiver.poll(5):
                try:
                    result = receiver.recv()
                except EOFError:
                    break
            elif not process.is_alive():
                break
        process.join(timeout=60)
    finally:
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
        receiver.close()
    if result is None:
        raise BenchmarkError(f"{name} child died (exit code {process.exitcode}) without a result")
    if result.error:
        raise BenchmarkError(f"{name} child failed:\n{result.error}")
    return result


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def end_offsets(bootstrap: str, topic: str) -> int:
    """The sum of ``topic``'s end offsets (0 if it does not exist)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-offsets")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(offsets.values()))
    finally:
        consumer.close()


@dataclass
class Linkage:
    """The registry's entities scored against the true people."""

    records: int
    versions: int
    deleted: int
    without_entity: int
    entities: int
    true_people: int
    links: int
    review: int
    precision: float
    recall: float


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score(url: str, truth: dict[str, str]) -> Linkage:
    """Count the registry's records and entities, and score the entities pairwise."""
    engine = make_engine(url)
    try:
        with engine.connect() as db:
            records = db.scalar(select(func.count()).select_from(SourceRecord)) or 0
            versions = db.scalar(select(func.count()).select_from(RecordVersion)) or 0
            deleted = (
                db.scalar(
                    select(func.count())
                    .select_from(SourceRecord)
                    .where(SourceRecord.deleted.is_(True))
                )
                or 0
            )
            entities = db.scalar(select(func.count()).select_from(Entity)) or 0
            statuses = dict(
                db.execute(select(LinkEdge.status, func.count()).group_by(LinkEdge.status)).all()
            )
            members: dict[str, Counter[str]] = defaultdict(Counter)
            people: Counter[str] = Counter()  # records of each true person in the registry
            without = 0
            for dataset, department, source_id, entity_id in db.execute(
                select(
                    SourceRecord.dataset,
                    SourceRecord.department,
                    SourceRecord.source_id,
                    SourceRecord.entity_id,
                )
            ):
                ref = f"{dataset}/{department}/{source_id}"
                person = truth.get(ref)
                if person is None:
                    raise BenchmarkError(f"unexpected record {dataset}/{department}/{source_id}")
                if entity_id is None:
                    without += 1
                    entity_id = f"none:{source_id}"
                members[entity_id][person] += 1
                people[person] += 1
    finally:
        engine.dispose()
    predicted = sum(_pairs(sum(c.values())) for c in members.values())
    true_positive = sum(_pairs(n) for c in members.values() for n in c.values())
    true_pairs = sum(_pairs(n) for n in people.values())
    return Linkage(
        records=records,
        versions=versions,
        deleted=deleted,
        without_entity=without,
        entities=entities,
        true_people=len(people),
        links=int(statuses.get("link", 0)),
        review=int(statuses.get("review", 0)),
        precision=true_positive / predicted if predicted else 1.0,
        recall=true_positive / true_pairs if true_pairs else 1.0,
    )


def check(backend: str, built: ChildResult, linkage: Linkage, total: int, dead: int) -> None:
    """Raise unless the build applied every record it read (at least ``total``), once each,
    dead-lettered nothing, and made plausible entities."""
    problems = []
    if built.records < total or built.stats.get("applied") != built.records:
        problems.append(f"builder saw {built.records} and applied {built.stats.get('applied')}")
    total = built.records
    if built.stats.get("dead_lettered") or dead:
        problems.append(f"{built.stats.get('dead_lettered')} dead-lettered ({dead} on {DLQ_TOPIC})")
    if linkage.records != total or linkage.versions != total or linkage.deleted:
        problems.append(
            f"registry holds {linkage.records} records, {linkage.versions} versions, "
            f"{linkage.deleted} deleted"
        )
    if linkage.without_entity:
        problems.append(f"{linkage.without_entity} records without an entity")
    if not 0.9 <= linkage.entities / linkage.true_people <= 1.1:
        problems.append(f"{linkage.entities} entities for {linkage.true_people} true people")
    if linkage.precision < 0.9 or linkage.recall < 0.9:
        problems.append(f"precision {linkage.precision:.4f}, recall {linkage.recall:.4f}")
    if problems:
        raise BenchmarkError(f"{backend}: " + "; ".join(problems))


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    records: int
    bare: ChildResult
    verify: ChildResult  # the bare consumer checking each signature, in one process
    builder: ChildResult
    linkage: Linkage
    load: tuple[float, float]

    @property
    def ratio(self) -> float:
        return self.builder.rate / self.bare.rate if self.bare.rate else 0.0


@dataclass
class Outcome:
    info: dict[str, str]
    published: int
    publish_s: float
    results: list[BackendResult]
    finished: str


def _database(backend: str, base: Path, server: Any) -> str:
    if backend == "sqlite":
        return f"sqlite:///{base / f'registry-{uuid.uuid4().hex[:6]}.db'}"
    return str(server.create_database(f"bench_{uuid.uuid4().hex[:10]}"))


def run(
    records: int,
    backends: list[str],
    pg_records: int,
    base: Path,
    seed: int,
    verify_processes: int,
) -> Outcome:
    info = machine_info()
    info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["verify_processes"] = str(verify_processes)
    log(f"generating {records:,} person records (bench.population, seed {seed}) ...")
    definitions, truth = write_exports(base / "exports", records, seed)
    catalogue = make_engine(f"sqlite:///{base / 'catalogue.db'}")
    migrate(catalogue)
    sessions = session_factory(catalogue)
    master_key, linkage_key = secrets.token_bytes(32), secrets.token_bytes(32)
    keys = Keys(LocalKeyStore(sessions, master_key), linkage_key)
    server = None
    log("starting a single-node Kafka broker (heap 512m) ...")
    broker = LocalKafka(base / "kafka", size=1, heap="512m")
    results: list[BackendResult] = []
    try:
        broker.start()
        bootstrap = broker.bootstrap_servers
        log(f"publishing through {len(definitions)} connector runs ...")
        started = time.perf_counter()
        published = publish(bootstrap, sessions, keys, definitions)
        publish_s = time.perf_counter() - started
        if published != records:
            raise BenchmarkError(f"published {published} of {records} records")
        gc.collect()
        if "postgresql" in backends:
            from tests.support.postgres import PostgresServer

            server = PostgresServer(base / "postgres")
            server.start()
        for backend in backends:
            total = pg_records if backend == "postgresql" else records
            url = _database(backend, base, server)
            engine = make_engine(url)
            migrate(engine)
            copy_catalogue(catalogue, engine)
            engine.dispose()
            load_before = os.getloadavg()[0]
            log(f"{backend}: bare consumer (child process) ...")
            bare = run_child("bare", _bare_child, bootstrap, total)
            log(f"  bare: {bare.records:,} in {bare.elapsed:,.1f} s ({bare.rate:,.0f} rec/s)")
            log(f"{backend}: bare consumer verifying signatures (child process) ...")
            verified = run_child("verify", _verify_child, bootstrap, url, master_key, total)
            log(
                f"  verify: {verified.records:,} in {verified.elapsed:,.1f} s "
                f"({verified.rate:,.0f} rec/s)"
            )
            dead_before = end_offsets(bootstrap, DLQ_TOPIC)
            log(f"{backend}: registry builder (child process) ...")
            built = run_child("builder", _builder_child, bootstrap, url, master_key,
                              linkage_key, total, verify_processes)  # fmt: skip
            log(
                f"  builder: {built.records:,} in {built.elapsed:,.1f} s "
                f"({built.rate:,.0f} rec/s), peak RSS {built.memory} MB"
            )
            dead = end_offsets(bootstrap, DLQ_TOPIC) - dead_before
            linkage = score(url, truth)
            check(backend, built, linkage, total, dead)
            results.append(
                BackendResult(
                    backend,
                    total,
                    bare,
                    verified,
                    built,
                    linkage,
                    (load_before, os.getloadavg()[0]),
                )
            )
    finally:
        log("stopping the broker ...")
        broker.stop()
        if server is not None:
            server.stop()
        catalogue.dispose()
    return Outcome(info, published, publish_s, results, datetime.now(UTC).isoformat())


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def markdown(outcome: Outcome, command: str) -> str:
    info = outcome.info
    lines = [
        f"Date: {info['date']} to {outcome.finished}. Command: `{command}`.",
        f"Machine: {info['cpu']} ({info['cores']}), {info['platform']}, {info['python']}; "
        f"load average at start {info['load']}. Builder: `verify_processes` = "
        f"{info['verify_processes']}.",
        f"Published: {outcome.published:,} person records from {DEPARTMENTS} departments "
        f"through connector runs in {outcome.publish_s:,.0f} s (not timed below).",
        "",
        "| Backend | Records | Bare consumer (rec/s) | Bare consumer verifying signatures "
        "(rec/s) | Builder (rec/s) | Ratio | Builder wall s | Builder peak RSS MB "
        "| Entities / true people | Precision | Recall | Load 1-min (start, end) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in outcome.results:
        lk = r.linkage
        lines.append(
            f"| {r.backend} | {r.builder.records:,} | {r.bare.rate:,.0f} | "
            f"{r.verify.rate:,.0f} | **{r.builder.rate:,.0f}** | {r.ratio:.3f} | "
            f"{r.builder.elapsed:,.1f} | "
            f"{r.builder.memory} | {lk.entities:,} / {lk.true_people:,} | "
            f"{lk.precision:.4f} | {lk.recall:.4f} | {r.load[0]:.2f}, {r.load[1]:.2f} |"
        )
    lines.append("")
    for r in outcome.results:
        lk = r.linkage
        lines.append(
            f"- {r.backend}: {lk.links:,} automatic links and {lk.review:,} pairs for review "
            f"stored; {r.builder.stats.get('linked', 0):,} records linked; bare consumer "
            f"{r.bare.records:,} records ({r.bare.stats.get('bytes', 0) / r.bare.records:,.0f} "
            f"value bytes each) in {r.bare.elapsed:,.1f} s, peak RSS {r.bare.memory} MB."
        )
    return "\n".join(lines)


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.registry_throughput",
        description="Registry build rate (linkage included) on SQLite and PostgreSQL, beside a "
        "bare kafka-python consumer reading the same records.",
    )
    parser.add_argument("--records", type=_positive, default=DEFAULT_RECORDS)
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--postgresql-records",
        type=_positive,
        default=DEFAULT_POSTGRESQL_RECORDS,
        help="build only this many records on PostgreSQL, the first ones read (default "
        f"{DEFAULT_POSTGRESQL_RECORDS:,}: a million takes well over 25 minutes there)",
    )
    parser.add_argument("--seed", type=int, default=population.SEED)
    parser.add_argument(
        "--verify-processes",
        type=int,
        default=RegistrySettings().verify_processes,
        help="the builder's signature-verifying worker processes (registry.verify_processes; "
        "default: the setting's default)",
    )
    parser.add_argument("--keep-dir", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        parser.error(f"unknown backends: {', '.join(sorted(unknown)) or '(none)'}")
    pg_records = min(args.postgresql_records, args.records)
    base = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    command = "python -m bench.registry_throughput " + " ".join(argv or sys.argv[1:])
    try:
        outcome = run(args.records, backends, pg_records, base, args.seed, args.verify_processes)
    except BenchmarkError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep_dir:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(markdown(outcome, command.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
