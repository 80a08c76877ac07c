"""One registry builder against two on PostgreSQL: CPU-seconds a record, and the assignment lock.

Run from the project root::

    .venv/bin/python -m bench.builder_scaleout [--records 50000] [--seed 19]

1. Starts its own single-node Kafka broker and a throwaway PostgreSQL server (as the
   tests start one, ``tests.support.postgres``), and creates ``std.person.v1`` with
   SIX partitions.
2. Publishes ``--records`` person records through real connector runs, one per
   department (:mod:`bench.population`: four departments, overlapping and
   independently corrupted views of the same people, duplicates included).
3. Builds the registry twice, each time into a fresh database holding a copy of the
   catalogue, in builder *processes* (:func:`member`, a
   :class:`~exchange.registry.builder.RegistryBuilder` each, one consumer group): once
   with one, once with two. For each build it reads the CPU time (utime + stime in
   ``/proc/<pid>/stat``) of every builder process (from its builder's construction
   to its end), of the broker and of PostgreSQL (the postmaster with its exited
   backends, ``cutime`` + ``cstime``, and its live ones), before and after, and the
   time each builder's transactions waited for and held the assignment lock
   (:func:`exchange.registry.assignment.lock_waits`).
4. Checks that both builds give the same registry checksum, then prints the figures
   of one builder beside two builders' and the ratio (two over one).

The machine is shared: the ratio, taken in one run, is the figure to read.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from bench import population
from connectors import load_definition, run_connector
from connectors.pipeline import Keys
from exchange.core.db import Base, make_engine, migrate, session_factory
from exchange.core.models import RecordVersion
from exchange.kafka.clients import ensure_topics
from exchange.local import examples
from exchange.registry import assignment
from exchange.registry.checksum import registry_checksum
from exchange.security.keystore import LocalKeyStore
from schemas import SchemaStore
from schemas.validators import resident_id

TOPIC = "std.person.v1"
PARTITIONS = 6
DEPARTMENTS = 4
RECORDS_PER_PERSON = 2.6  # what bench.population gives with four departments
CATALOGUE_TABLES = (
    "schemas",
    "subject_versions",
    "registry_config",
    "key_encryption_keys",
    "data_keys",
    "signing_keys",
)
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
MASTER_KEY_ENV = "BENCH_SCALEOUT_MASTER_KEY"  # hex, for the builder processes
LINKAGE_KEY_ENV = "BENCH_SCALEOUT_LINKAGE_KEY"
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The departments' records, published
# --------------------------------------------------------------------------


def write_exports(folder: Path, records: int, seed: int) -> list[Path]:
    """Write ``records`` rows over the departments' CSV exports; return their connector
    definitions. Rows without a valid resident id (which the connector rejects) are left
    out, so every row is published."""
    people = int(records / RECORDS_PER_PERSON / 0.89) + 100
    usable = [
        r
        for r in population.persons(people, seed=seed, departments=DEPARTMENTS)
        if r.source["resident_id"] is not None and resident_id(r.source["resident_id"]) is None
    ][:records]
    if len(usable) < records:
        raise RuntimeError(f"the population gave {len(usable)} usable records, not {records}")
    rows: dict[str, list[list[str]]] = defaultdict(list)
    for rec in usable:
        s = rec.source
        rows[rec.department].append(
            [rec.ref.rsplit("/", 1)[1]]
            + [
                s[name].isoformat() if name == "birth_date" else s[name] or ""
                for name in FIELD_COLUMNS
            ]
        )
    folder.mkdir(parents=True, exist_ok=True)
    definitions = []
    for department, lines in sorted(rows.items()):
        with (folder / f"{department}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("local_id", *FIELD_COLUMNS.values()))
            writer.writerows(lines)
        path = folder / f"{department}.toml"
        path.write_text(
            examples.definition_text(
                connector={"id": f"scaleout-{department}", "department": department},
                source={"path": f"{department}.csv", "key": "local_id"},
                fields={f: {"from": column} for f, column in FIELD_COLUMNS.items()},
            ),
            encoding="utf-8",
        )
        definitions.append(path)
    return definitions


def publish(bootstrap: str, sessions: sessionmaker[Session], keys: Keys, tomls: list[Path]) -> int:
    """Run each department's connector onto ``std.person.v1`` (six partitions); every row
    must be published. Returns how many were."""
    ensure_topics(bootstrap, [TOPIC], partitions=PARTITIONS)
    published = 0
    for path in tomls:
        report = run_connector(
            load_definition(path), bootstrap=bootstrap, store=SchemaStore(sessions), keys=keys
        )
        if report.rejected:
            raise RuntimeError(f"{path.stem}: {report.rejected} rows rejected {report.reasons}")
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


def fresh_registry(catalogue: Engine, url: str) -> None:
    """Migrate the empty database at ``url`` and copy the catalogue into it."""
    engine = make_engine(url)
    try:
        migrate(engine)
        copy_catalogue(catalogue, engine)
    finally:
        engine.dispose()


def versions(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RecordVersion)) or 0)


def checksum(url: str) -> str:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return registry_checksum(session).digest
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# A builder process (one member of the consumer group)
# --------------------------------------------------------------------------


def cpu_seconds(pid: int | str = "self", *, children: bool = False) -> float:
    """utime + stime of a process (all its threads) from /proc; with ``children``, also
    what its exited, reaped children used (cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICKS


def member(
    url: str, bootstrap: str, group: str, expect: int, result: Path | None, max_poll: int = 0
) -> None:
    """Build as one member of ``group`` until the registry holds ``expect`` versions (what
    every member together applies); write what it measured to ``result`` (JSON).

    A poll's records are linked in one call (``EntityResolver.link``), as the set-based
    builder of issue 19 does: today's builder links them in chunks of up to
    ``VERIFY_CHUNK`` as their signatures are verified, and from the first chunk's
    assignment on the transaction holds the assignment lock, so the later chunks would be
    applied and scored under it. ``max_poll`` (0: the builder's own) caps a poll's records
    (smaller polls: more transactions to interleave, as in the tests).
    """
    from exchange.registry import builder as builder_module
    from exchange.registry.builder import RegistryBuilder

    if max_poll:
        builder_module.MAX_POLL_RECORDS = max_poll
    builder_module.VERIFY_CHUNK = 4 * builder_module.MAX_POLL_RECORDS  # one chunk a poll
    engine = make_engine(url)
    sessions = session_factory(engine)
    keystore = LocalKeyStore(sessions, bytes.fromhex(os.environ[MASTER_KEY_ENV]))
    cpu_before, started = cpu_seconds(), time.perf_counter()
    builder = RegistryBuilder(
        bootstrap,
        sessions,
        linkage_key=bytes.fromhex(os.environ[LINKAGE_KEY_ENV]),
        keystore=keystore,
        group_id=group,
    )
    _await_members(bootstrap, group, int(os.environ.get(GROUP_SIZE_ENV, "1")))
    deadline = time.monotonic() + 3600
    while versions(sessions) < expect:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the registry holds {versions(sessions)} of {expect} versions")
        builder.poll_once(500)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    builder.close()
    engine.dispose()
    waits = assignment.lock_waits()
    log(
        f"  member {os.getpid()}: applied {builder.stats.applied:,} in {elapsed:,.1f} s, "
        f"{cpu:,.1f} CPU-s; assignment lock taken {waits.taken} times, waited "
        f"{waits.waited_s:,.2f} s (longest {waits.longest_wait_s * 1000:,.0f} ms), "
        f"held {waits.held_s:,.2f} s (catch-up {waits.catch_up_s:,.2f} s)"
    )
    if result is not None:
        result.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "applied": builder.stats.applied,
                    "dead_lettered": builder.stats.dead_lettered,
                    "elapsed_s": elapsed,
                    "cpu_s": cpu,
                    "lock": waits.as_dict(),
                }
            ),
            encoding="utf-8",
        )


def named_url(url: str, name: str) -> str:
    """``url`` with the PostgreSQL application name ``name`` (to tell members apart in
    ``pg_stat_activity``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.update_query_dict({"application_name": name}).render_as_string(
        hide_password=False
    )


GROUP_SIZE_ENV = "SCALEOUT_GROUP_SIZE"


def _await_members(bootstrap: str, group: str, size: int, timeout_s: float = 120.0) -> None:
    """Wait until ``group`` has ``size`` members, then a few seconds for its rebalance, so
    that members started together share the partitions from their first polls (librdkafka
    joins within a second or two: the first member would take every partition and, on a
    small population, every record before the second joined)."""
    if size <= 1:
        return
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="scaleout-barrier")
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            described = admin.describe_groups([group])
            info = described.get(group) if isinstance(described, dict) else None
            if info and len(info.get("members") or ()) >= size:
                break
            time.sleep(0.2)
    finally:
        admin.close()
    time.sleep(3.0)


def spawn_member(
    url: str,
    bootstrap: str,
    group: str,
    expect: int,
    keys: tuple[bytes, bytes],
    *,
    name: str,
    result: Path | None = None,
    max_poll: int = 0,
    group_size: int = 1,
) -> subprocess.Popen[bytes]:
    """Start a builder process (:func:`member`); ``keys`` are (master key, linkage key).
    ``group_size``: the member waits until the group has that many members (see
    :func:`_await_members`) before it reads."""
    env = dict(os.environ)
    env |= {MASTER_KEY_ENV: keys[0].hex(), LINKAGE_KEY_ENV: keys[1].hex()}
    env[GROUP_SIZE_ENV] = str(group_size)
    args = [sys.executable, "-m", "bench.builder_scaleout", "member", named_url(url, name)]
    args += [bootstrap, group, str(expect), str(max_poll), str(result or "")]
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(args, env=env, cwd=root, stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


@dataclass
class Build:
    builders: int
    records: int
    elapsed_s: float
    checksum: str
    members: list[dict[str, Any]] = field(default_factory=list)
    broker_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0

    @property
    def builders_cpu_s(self) -> float:
        return sum(float(m["cpu_s"]) for m in self.members)

    @property
    def total_cpu_s(self) -> float:
        return self.builders_cpu_s + self.broker_cpu_s + self.postgres_cpu_s

    def per_record_ms(self, cpu_s: float) -> float:
        return cpu_s / self.records * 1000

    @property
    def lock_waited_s(self) -> float:
        return sum(float(m["lock"]["waited_s"]) for m in self.members)

    @property
    def lock_held_s(self) -> float:
        return sum(float(m["lock"]["held_s"]) for m in self.members)

    @property
    def catch_up_s(self) -> float:
        return sum(float(m["lock"]["catch_up_s"]) for m in self.members)

    @property
    def builders_s(self) -> float:
        return sum(float(m["elapsed_s"]) for m in self.members)

    @property
    def lock_taken(self) -> int:
        return sum(int(m["lock"]["taken"]) for m in self.members)


def postgres_cpu(postmaster: int) -> float:
    """CPU of a PostgreSQL server: the postmaster, its exited backends and its live ones."""
    total = cpu_seconds(postmaster, children=True)
    for line in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        # one that exited since is counted in the postmaster's cutime once reaped
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(int(line))
    return total


def build(
    builders: int,
    url: str,
    bootstrap: str,
    records: int,
    keys: tuple[bytes, bytes],
    broker_pid: int,
    postmaster: int,
    folder: Path,
) -> Build:
    group = f"scaleout-{builders}-{uuid.uuid4().hex[:6]}"
    broker_before, pg_before = cpu_seconds(broker_pid), postgres_cpu(postmaster)
    started = time.perf_counter()
    results = [folder / f"{group}-{i}.json" for i in range(builders)]
    procs = [
        spawn_member(
            url,
            bootstrap,
            group,
            records,
            keys,
            name=f"member-{i}",
            result=path,
            group_size=builders,
        )
        for i, path in enumerate(results)
    ]
    for proc in procs:
        if proc.wait(timeout=4 * 3600) != 0:
            raise RuntimeError(f"a builder process exited with {proc.returncode}")
    elapsed = time.perf_counter() - started
    broker_cpu, pg_cpu = (
        cpu_seconds(broker_pid) - broker_before,
        postgres_cpu(postmaster) - pg_before,
    )
    done = Build(builders, records, elapsed, checksum(url), [], broker_cpu, pg_cpu)
    done.members = [json.loads(path.read_text(encoding="utf-8")) for path in results]
    return done


def report(one: Build, two: Build) -> str:
    def row(name: str, a: float, b: float, unit: str = "ms") -> str:
        ratio = f"{b / a:.2f}" if a else "-"
        return f"| {name} | {a:,.3f} {unit} | {b:,.3f} {unit} | {ratio} |"

    ms = Build.per_record_ms
    lines = [
        f"PostgreSQL, {one.records:,} person records on {PARTITIONS} partitions; "
        f"checksums {'equal' if one.checksum == two.checksum else 'DIFFER'} "
        f"({one.checksum[:16]}...)",
        "",
        "| CPU a record | one builder | two builders | two / one |",
        "|---|---:|---:|---:|",
        row("builder processes", ms(one, one.builders_cpu_s), ms(two, two.builders_cpu_s)),
        row("broker", ms(one, one.broker_cpu_s), ms(two, two.broker_cpu_s)),
        row("PostgreSQL", ms(one, one.postgres_cpu_s), ms(two, two.postgres_cpu_s)),
        row("all", ms(one, one.total_cpu_s), ms(two, two.total_cpu_s)),
        row("wall time", one.elapsed_s, two.elapsed_s, "s"),
        row("lock waited (sum)", one.lock_waited_s, two.lock_waited_s, "s"),
        row("lock held (sum)", one.lock_held_s, two.lock_held_s, "s"),
        row("of which catch-up", one.catch_up_s, two.catch_up_s, "s"),
        row("builders' wall time (sum)", one.builders_s, two.builders_s, "s"),
        "",
        f"assignment lock taken {one.lock_taken} / {two.lock_taken} times; "
        f"two builders: {', '.join(_member_line(m) for m in two.members)}",
    ]
    return "\n".join(lines)


def _member_line(m: dict[str, Any]) -> str:
    lock = m["lock"]
    return (
        f"{m['applied']:,} applied, {m['cpu_s']:,.1f} CPU-s, waited {lock['waited_s']:,.2f} s "
        f"(longest {lock['longest_wait_s'] * 1000:,.0f} ms)"
    )


def run(records: int, seed: int, base: Path) -> tuple[Build, Build]:
    from exchange.local.broker import LocalKafka
    from tests.support.postgres import PostgresServer

    log(f"generating {records:,} person records (seed {seed}) ...")
    tomls = write_exports(base / "exports", records, seed)
    catalogue = make_engine(f"sqlite:///{base / 'catalogue.db'}")
    migrate(catalogue)
    keys = (secrets.token_bytes(32), secrets.token_bytes(32))
    broker = LocalKafka(base / "kafka", size=1, heap="512m", partitions=PARTITIONS)
    server = PostgresServer(base / "postgres")
    try:
        broker.start()
        server.start()
        bootstrap = broker.bootstrap_servers
        log("publishing ...")
        sessions = session_factory(catalogue)
        published = publish(
            bootstrap, sessions, Keys(LocalKeyStore(sessions, keys[0]), keys[1]), tomls
        )
        if published != records:
            raise RuntimeError(f"published {published} of {records}")
        broker_pid = int(broker.nodes[0].pid_file.read_text())
        postmaster = server._postmaster_pid()
        assert postmaster is not None
        builds = []
        for builders in (1, 2):
            url = server.create_database(f"scaleout_{builders}_{uuid.uuid4().hex[:6]}")
            fresh_registry(catalogue, url)
            log(f"building with {builders} builder process(es) ...")
            done = build(builders, url, bootstrap, records, keys, broker_pid, postmaster, base)
            log(f"  {done.elapsed_s:,.1f} s, {done.total_cpu_s:,.1f} CPU-s in all")
            builds.append(done)
        return builds[0], builds[1]
    finally:
        broker.stop()
        server.stop()
        catalogue.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "member":
        url, bootstrap, group, expect, max_poll, result = args[1:]
        member(url, bootstrap, group, int(expect), Path(result) if result else None, int(max_poll))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=19)
    options = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as base:
        one, two = run(options.records, options.seed, Path(base))
    print(report(one, two))
    return 0 if one.checksum == two.checksum else 1


if __name__ == "__main__":
    sys.exit(main())
