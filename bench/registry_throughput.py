"""Registry build throughput: records/s into the registry, linkage included, beside bare consumers.

Run from the project root::

    .venv/bin/python -m bench.registry_throughput [--records N] [--backends sqlite,postgresql]
        [--builders B] [--publisher connectors|batches|records] [--window W] [--no-build]

1. Starts its own single-node Kafka broker (:class:`exchange.local.broker.LocalKafka`,
   heap 512m, 3 partitions a topic) and a catalogue database (schema registry and
   keystore) in a temporary directory.
2. Publishes ``N`` person records once: a synthetic population from
   :mod:`bench.population` (four departments holding overlapping, independently
   corrupted views of the same people, duplicates included), so linkage does real
   work; rows without a valid resident id are left out of the exports, so every
   exported row is published. ``--publisher connectors`` (the default) runs each
   department's connector (:func:`connectors.run_connector`); ``batches`` publishes
   the same exports with the benchmark's own transactional publisher
   (:mod:`bench.signed_batches`: the connector's preparer, batches of 5,000 in one
   Kafka transaction each, a signed manifest a partition), ``records`` the same
   publisher signing each record on its own (the topics of before batch manifests).
   Then it counts what the topics hold (:func:`bench.registry_checks.census`).
3. For each backend, in a fresh database holding a copy of the catalogue (a SQLite
   file; a new database on a throwaway PostgreSQL server started the way the tests
   start one, ``tests.support.postgres``), each side in a child process of its own,
   one after the other (:mod:`bench.consumers`, :mod:`bench.builders`):

   * **kafka-python bare** and **confluent-kafka bare**: read the std.* topics to
     the end (every message, manifests included), committing after each poll;
   * **kafka-python verifying each signature** (topics signed one by one only);
   * **confluent-kafka verifying manifests** (:class:`bench.batch_check.BatchCheck`):
     what a builder must do to accept a record, and nothing else;
   * **builder**: :class:`exchange.registry.builder.RegistryBuilder` processes in one
     fresh consumer group, from their construction until together they took ``N``
     records: one builder; on PostgreSQL also ``--builders`` of them, into another
     fresh database. Each samples its progress after every poll, so the rate over
     the first and the last ``--window`` records is known (:mod:`bench.windows`);
     the CPU of each builder (its verification processes included), of the broker's
     JVM and of PostgreSQL's processes is read from /proc (:mod:`bench.procstat`).

   On PostgreSQL only the first ``--postgresql-records`` (default 200,000) are
   built. Peak RSS is a child's ``VmHWM`` plus the peaks of its own children.
4. Checks before reporting (exit status 1 otherwise): the manifest-verifying consumer
   accepted every record and refused none; the registry holds the records the
   builders took, once each, with one version each; nothing was dead-lettered;
   every record has an entity; the entities are plausible against the true people
   (count within 10%, pairwise precision and recall at least 0.9). A build that fails
   its checks (or does not take every record within ``--build-timeout``) is still
   reported, marked, and the other builds run; the exit status is 1.

Progress goes to stderr, the report (markdown for docs/benchmarks.md) to stdout.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from bench import consumers, population
from bench.builders import build
from bench.children import BenchmarkError, log, run_child
from bench.procstat import Watched
from bench.registry_checks import Census, census, check, end_offsets, score
from bench.serde import machine_info
from bench.signed_batches import publish_batches
from bench.throughput_report import BackendResult, BuildResult, Consumers, Outcome, markdown
from bench.windows import windows
from connectors import load_definition, run_connector
from connectors.pipeline import Keys
from exchange.core.config import RegistrySettings
from exchange.core.db import Base, make_engine, migrate, session_factory
from exchange.local import examples
from exchange.local.broker import LocalKafka
from exchange.registry.builder import DLQ_TOPIC
from exchange.security.keystore import LocalKeyStore
from schemas import SchemaStore
from schemas.validators import resident_id

DEFAULT_RECORDS = 1_000_000
DEFAULT_POSTGRESQL_RECORDS = 200_000
DEFAULT_WINDOW = 100_000
BUILD_TIMEOUT_S = 4 * 3600.0
DEPARTMENTS = 4
RECORDS_PER_PERSON = 2.6  # what bench.population gives with four departments
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
# The run
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    records: int
    backends: list[str]
    pg_records: int
    seed: int
    verify_processes: int
    builders: int
    publisher: str  # "connectors", "batches" or "records"
    window: int
    build: bool
    build_timeout: float


def _database(backend: str, base: Path, server: Any, catalogue: Engine) -> str:
    """A fresh registry database holding a copy of the catalogue."""
    if backend == "sqlite":
        url = f"sqlite:///{base / f'registry-{uuid.uuid4().hex[:6]}.db'}"
    else:
        url = str(server.create_database(f"bench_{uuid.uuid4().hex[:10]}"))
    engine = make_engine(url)
    migrate(engine)
    copy_catalogue(catalogue, engine)
    engine.dispose()
    return url


def _pid(path: Path) -> int:
    return int(path.read_text(encoding="ascii").split()[0])


def _consumers(
    backend: str,
    bootstrap: str,
    url: str,
    master_key: bytes,
    total: int,
    messages: int,
    counted: Census,
) -> Consumers:
    log(f"{backend}: bare kafka-python consumer (child process) ...")
    kafka_bare = run_child("kafka-bare", consumers.kafka_bare, bootstrap, messages)
    log(f"  {kafka_bare.records:,} in {kafka_bare.elapsed:,.1f} s ({kafka_bare.rate:,.0f} rec/s)")
    log(f"{backend}: bare confluent-kafka consumer (child process) ...")
    rd_bare = run_child("confluent-bare", consumers.confluent_bare, bootstrap, messages)
    log(f"  {rd_bare.records:,} in {rd_bare.elapsed:,.1f} s ({rd_bare.rate:,.0f} rec/s)")
    kafka_verify = None
    if counted.signed and not counted.batched:
        log(f"{backend}: kafka-python consumer verifying each signature (child process) ...")
        kafka_verify = run_child(
            "kafka-verify", consumers.kafka_verify, bootstrap, url, master_key, total
        )
        log(
            f"  {kafka_verify.records:,} in {kafka_verify.elapsed:,.1f} s "
            f"({kafka_verify.rate:,.0f} rec/s)"
        )
    log(f"{backend}: confluent-kafka consumer verifying manifests (child process) ...")
    manifests = run_child(
        "confluent-manifests", consumers.confluent_manifests, bootstrap, url, master_key, total
    )
    log(
        f"  {manifests.records:,} in {manifests.elapsed:,.1f} s ({manifests.rate:,.0f} rec/s), "
        f"{manifests.stats}"
    )
    if manifests.stats.get("refused") or manifests.stats.get("accepted", 0) < total:
        raise BenchmarkError(f"{backend}: the manifest-verifying consumer {manifests.stats}")
    return Consumers(kafka_bare, rd_bare, kafka_verify, manifests)


def run(options: Options, base: Path) -> Outcome:
    records = options.records
    info = machine_info()
    info["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["verify_processes"] = str(options.verify_processes)
    log(f"generating {records:,} person records (bench.population, seed {options.seed}) ...")
    definitions, truth = write_exports(base / "exports", records, options.seed)
    catalogue = make_engine(f"sqlite:///{base / 'catalogue.db'}")
    migrate(catalogue)
    sessions = session_factory(catalogue)
    master_key, linkage_key = secrets.token_bytes(32), secrets.token_bytes(32)
    keys = Keys(LocalKeyStore(sessions, master_key), linkage_key)
    server = None
    log("starting a single-node Kafka broker (heap 512m) ...")
    broker = LocalKafka(base / "kafka", size=1, heap="512m")
    results: list[BackendResult] = []
    failures: list[str] = []  # builds whose checks failed: reported, then exit status 1
    try:
        broker.start()
        bootstrap = broker.bootstrap_servers
        started = time.perf_counter()
        if options.publisher == "connectors":
            log(f"publishing through {len(definitions)} connector runs ...")
            published = publish(bootstrap, sessions, keys, definitions)
            publisher = "connector runs (`run_connector`)"
        else:
            one_by_one = options.publisher == "records"
            kind = "records signed one by one" if one_by_one else "signed batches"
            log(f"publishing {len(definitions)} exports as {kind} ...")
            exports = [(d, d.with_suffix(".csv")) for d in definitions]
            store = SchemaStore(sessions)
            done = publish_batches(bootstrap, store, keys, exports, one_by_one=one_by_one)
            published = done.records
            publisher = (
                f"the benchmark's transactional publisher (`bench.signed_batches`, "
                f"{done.batches:,} transactions, {kind})"
            )
        publish_s = time.perf_counter() - started
        if published != records:
            raise BenchmarkError(f"published {published} of {records} records")
        counted = census(bootstrap, records)
        log(f"published in {publish_s:,.0f} s; the topics hold {counted}")
        if counted.records != records or counted.other:
            raise BenchmarkError(f"the topics hold {counted}, not {records} records")
        narrow = {t: n for t, n in counted.partitions.items() if n < options.builders}
        if narrow and "postgresql" in options.backends:
            raise BenchmarkError(f"{options.builders} builders cannot share topics {narrow}")
        gc.collect()
        watched = [Watched("broker", _pid(broker.nodes[0].pid_file))]
        if "postgresql" in options.backends:
            from tests.support.postgres import PostgresServer

            server = PostgresServer(base / "postgres")
            server.start()
            watched.append(Watched("postgresql", _pid(server.data_dir / "postmaster.pid")))
        for backend in options.backends:
            total = options.pg_records if backend == "postgresql" else records
            # All the topics' messages (manifests too), or the first ``total``.
            messages = counted.messages if total >= records else total
            url = _database(backend, base, server, catalogue)
            found = _consumers(backend, bootstrap, url, master_key, total, messages, counted)
            builds: list[BuildResult] = []
            sizes = [1] if backend == "sqlite" else sorted({1, options.builders})
            for members in sizes if options.build else []:
                if builds or failures:  # each build into a database of its own
                    url = _database(backend, base, server, catalogue)
                label = f"{backend}, {members} builder(s)"
                load_before = os.getloadavg()[0]
                dead_before = end_offsets(bootstrap, DLQ_TOPIC)
                log(f"{label} (child processes) ...")
                try:
                    built = build(
                        bootstrap,
                        url,
                        master_key,
                        linkage_key,
                        total,
                        options.verify_processes,
                        members,
                        [w for w in watched if w.name != "postgresql" or backend == "postgresql"],
                        options.build_timeout,
                    )
                except BenchmarkError as exc:  # a member died: no figures from this build
                    failures.append(f"{label}: {exc}")
                    log(f"  FAILED: {exc}")
                    continue
                log(
                    f"  builders: {built.records:,} in {built.elapsed:,.1f} s "
                    f"({built.rate:,.0f} rec/s), peak RSS {built.memory} MB, CPU s {built.cpu}"
                )
                dead = end_offsets(bootstrap, DLQ_TOPIC) - dead_before
                linkage = score(url, truth)
                try:
                    check(label, built, linkage, total, dead)
                except BenchmarkError as exc:  # reported with the figures, and exit status 1
                    failures.append(str(exc))
                    log(f"  CHECK FAILED: {exc}")
                size = min(options.window, built.records // 2)
                builds.append(
                    BuildResult(
                        backend,
                        members,
                        built,
                        linkage,
                        windows(built.samples, size),
                        (load_before, os.getloadavg()[0]),
                    )
                )
            results.append(BackendResult(backend, total, found, builds))
    finally:
        log("stopping the broker ...")
        broker.stop()
        if server is not None:
            server.stop()
        catalogue.dispose()
    return Outcome(
        info,
        publisher,
        published,
        publish_s,
        counted,
        results,
        datetime.now(UTC).isoformat(),
        failures,
    )


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.registry_throughput",
        description="Registry build rate (linkage included) on SQLite and PostgreSQL, beside "
        "bare kafka-python and confluent-kafka consumers reading the same records, and a "
        "consumer verifying batch manifests.",
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
        f"{DEFAULT_POSTGRESQL_RECORDS:,})",
    )
    parser.add_argument(
        "--builders",
        type=_positive,
        default=1,
        help="on PostgreSQL, also build with this many builder processes in one consumer "
        "group, after the one-builder build, each into a fresh database (default 1: only one)",
    )
    parser.add_argument(
        "--publisher",
        choices=("connectors", "batches", "records"),
        default="connectors",
        help="connectors: real connector runs (default); batches: the benchmark's own "
        "transactional publisher of signed batches with manifests (bench.signed_batches); "
        "records: the same publisher signing each record on its own (no manifests), as "
        "topics published before manifests hold",
    )
    parser.add_argument(
        "--window",
        type=_positive,
        default=DEFAULT_WINDOW,
        help=f"records in the first and last windows of a build (default {DEFAULT_WINDOW:,}; "
        "half the build if it is smaller than two windows)",
    )
    parser.add_argument(
        "--no-build", action="store_true", help="time the consumers only, build nothing"
    )
    parser.add_argument(
        "--build-timeout",
        type=float,
        default=BUILD_TIMEOUT_S,
        help="seconds a build may take; a build that has not taken every record by then "
        f"fails its checks (default {BUILD_TIMEOUT_S:,.0f})",
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
    options = Options(
        records=args.records,
        backends=backends,
        pg_records=min(args.postgresql_records, args.records),
        seed=args.seed,
        verify_processes=args.verify_processes,
        builders=args.builders,
        publisher=args.publisher,
        window=args.window,
        build=not args.no_build,
        build_timeout=args.build_timeout,
    )
    base = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    command = "python -m bench.registry_throughput " + " ".join(argv or sys.argv[1:])
    try:
        outcome = run(options, base)
    except BenchmarkError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep_dir:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(markdown(outcome, command.strip(), options.window))
    for failure in outcome.failures:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
