"""The record store's apply per record: today's against the one before issue 19, same run.

Run from the project root::

    .venv/bin/python -m bench.registry_apply [--records 50000] [--batch 5000]
        [--backends sqlite,postgresql] [--rounds 2]

For each backend, each implementation gets a fresh migrated database (a SQLite
file; a new database on a throwaway PostgreSQL server started the way the tests
start one) and applies, in batches of ``--batch`` records, each batch in one
transaction as the builder does:

* **insert**: ``--records`` synthetic person records, all new;
* **update**: a second version of each (another content hash and phone number);
* **replay**: the second versions again (every one a replay: nothing written).

Only :func:`apply` is timed (the transaction's commit included), not making the
items: wall-clock and this process's CPU time (on SQLite the database's work
is in the process; on PostgreSQL the server's CPU is not counted). The
implementations alternate, ``--rounds`` times, and the best round of each counts
(the machine is shared: trust the ratios, and on a loaded machine CPU time).
The baseline is the apply of commit 99795d5 (:mod:`bench.registry_apply_before`,
SQLAlchemy Core statements); the floor is bare multi-row INSERTs of the same
rows into both tables (:mod:`exchange.registry.bulk`'s), with nothing read and
nothing decided, through the same connection. Before reporting, the
two implementations' registries must have the same checksum
(:func:`exchange.registry.checksum.registry_checksum`), else exit status 1.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bench import registry_apply_before
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.registry import records
from exchange.registry.bulk import statements
from exchange.registry.checksum import registry_checksum
from exchange.registry.records import Applied, Incoming

Apply = Callable[[Session, Sequence[Incoming]], Applied]
IMPLEMENTATIONS: dict[str, Apply] = {
    "before (99795d5, Core)": registry_apply_before.apply,
    "now (driver level)": records.apply,
}
PASSES = ("insert", "update", "replay")
FAMILY = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周")
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇")


def person(n: int, version: int) -> dict[str, Any]:
    """A person payload as the builder stores it (JSON-safe, a blind index, ciphertext)."""
    family, given = FAMILY[n % len(FAMILY)], GIVEN[(n // 7) % len(GIVEN)]
    day = datetime(1950, 1, 1) + timedelta(days=(n * 37) % 20000)
    return {
        "resident_id": f"v1:{hashlib.sha256(b'c%d' % n).hexdigest()}",
        "resident_id_bidx": hashlib.sha256(b"%d" % n).hexdigest(),
        "family_name": family,
        "given_name": given,
        "full_name": family + given,
        "birth_date": day.date().isoformat(),
        "sex": ("MALE", "FEMALE")[n % 2],
        "nationality": "CHN",
        "residence_division_code": "110105",
        "phone": f"138{n + version * 7:08d}",
        "address_line": f"北京市朝阳区示例路{n % 300}号",
        "postcode": "100020",
        "current_division_code": None,
        "current_address_line": None,
    }


def items(count: int, version: int) -> list[Incoming]:
    """``count`` person records at ``version``, on three partitions, offsets in order."""
    when = datetime(2026, 12, 7, tzinfo=UTC) + timedelta(seconds=version)
    made = []
    for n in range(count):
        payload = person(n, version)
        made.append(
            Incoming(
                "person",
                ("health", "civil_affairs")[n % 2],
                f"P{n:08d}",
                hashlib.sha256(repr(payload).encode()).hexdigest(),
                1,
                payload,
                payload["resident_id_bidx"],
                "std.person.v1",
                n % 3,
                version * count + n,
                when,
            )
        )
    return made


Seconds = tuple[float, float]  # wall-clock, CPU


def timed(
    sessions: sessionmaker[Session], apply: Apply, work: list[Incoming], batch: int
) -> Seconds:
    """Seconds to apply ``work`` in batches, one transaction each."""
    wall = cpu = 0.0
    for start in range(0, len(work), batch):
        part = work[start : start + batch]
        began, began_cpu = time.perf_counter(), time.process_time()
        with transaction(sessions) as session:
            apply(session, part)
        wall += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
    return wall, cpu


def floor(sessions: sessionmaker[Session], work: list[Incoming], batch: int) -> Seconds:
    """Seconds for bare multi-row INSERTs of the rows and their versions."""
    wall = cpu = 0.0
    for start in range(0, len(work), batch):
        part = work[start : start + batch]
        began, began_cpu = time.perf_counter(), time.process_time()
        with transaction(sessions) as session:
            connection = session.connection()
            sql = statements(connection)
            when = sql.datetimes()
            rows = [
                (
                    i.dataset,
                    i.department,
                    i.source_id,
                    1,
                    i.content_hash,
                    False,
                    i.topic,
                    i.partition,
                    i.offset,
                    when(i.ingested_at),
                    when(i.ingested_at),
                    when(i.ingested_at),
                    i.schema_id,
                    "{}",
                    i.lookup_key,
                    None,  # source_changed_at
                )
                for i in part
            ]
            ids = sql.insert_records(connection, rows)
            sql.insert_versions(
                connection,
                [
                    (
                        ids[i.key],
                        1,
                        False,
                        i.content_hash,
                        i.schema_id,
                        "{}",
                        when(i.ingested_at),
                        i.topic,
                        i.partition,
                        i.offset,
                        when(i.ingested_at),
                        None,  # source_changed_at
                        when(i.ingested_at),  # applied_at
                    )
                    for i in part
                ],
            )
        wall += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
    return wall, cpu


def database(backend: str, base: Path, server: Any) -> str:
    if backend == "sqlite":
        return f"sqlite:///{base / f'apply-{uuid.uuid4().hex[:8]}.db'}"
    return str(server.create_database(f"apply_{uuid.uuid4().hex[:10]}"))


Best = dict[str, dict[str, Seconds]]  # implementation -> pass -> best (wall, CPU) µs a record
FLOOR = "floor (bare INSERTs)"


def keep_best(best: Best, name: str, step: str, seconds: Seconds, count: int) -> None:
    figure = (seconds[0] / count * 1e6, seconds[1] / count * 1e6)
    old = best.setdefault(name, {}).get(step)
    best[name][step] = figure if old is None else (min(old[0], figure[0]), min(old[1], figure[1]))


def run_backend(backend: str, base: Path, server: Any, count: int, batch: int, rounds: int) -> Best:
    """Best µs per record of each implementation and pass (and the floor's insert)."""
    work = {"insert": items(count, 1), "update": items(count, 2)}
    work["replay"] = work["update"]
    gc.freeze()  # the items live through the run: the collector need not scan them
    best: Best = {}
    digests: dict[str, str] = {}
    for round_ in range(rounds):
        for name, apply in IMPLEMENTATIONS.items():
            engine = make_engine(database(backend, base, server))
            migrate(engine)
            sessions = session_factory(engine)
            for step in PASSES:
                gc.collect()
                seconds = timed(sessions, apply, work[step], batch)
                keep_best(best, name, step, seconds, count)
                wall, cpu = (s / count * 1e6 for s in seconds)
                print(f"[{backend} round {round_ + 1}] {name} {step}: {wall:.1f} µs wall, "
                      f"{cpu:.1f} µs CPU a record", file=sys.stderr)  # fmt: skip
            with sessions() as session:
                digest = registry_checksum(session).digest
            if digests.setdefault(name, digest) != digest:
                raise SystemExit(f"{name} gave two different registries on {backend}")
            engine.dispose()
        engine = make_engine(database(backend, base, server))
        migrate(engine)
        gc.collect()
        keep_best(
            best, FLOOR, "insert", floor(session_factory(engine), work["insert"], batch), count
        )
        engine.dispose()
    if len(set(digests.values())) != 1:
        raise SystemExit(f"the implementations built different registries on {backend}")
    return best


def report(backend: str, count: int, batch: int, best: Best) -> str:
    before, now = (best[name] for name in IMPLEMENTATIONS)
    lines = [
        f"### records.apply, {backend}: {count:,} person records, batches of {batch:,}",
        "",
        "µs a record, wall-clock / this process's CPU (best round):",
        "",
        "| | " + " | ".join(PASSES) + " |",
        "|---|" + "---:|" * len(PASSES),
    ]
    for name, figures in best.items():
        cells = (
            f"{figures[p][0]:.1f} / {figures[p][1]:.1f}" if p in figures else "-" for p in PASSES
        )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratios = (f"{before[p][0] / now[p][0]:.2f} / {before[p][1] / now[p][1]:.2f}" for p in PASSES)
    lines.append("| speed-up (before / now) | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    server = None
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{datetime.now(UTC).isoformat(timespec='seconds')}; {platform.platform()}, "
        f"{os.cpu_count()} CPUs, CPython {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}; load average at start {load}\n"
    )
    try:
        backends = args.backends.split(",")
        if "postgresql" in backends:
            from tests.support.postgres import PostgresServer

            server = PostgresServer(base / "postgres")
            server.start()
        for backend in backends:
            best = run_backend(backend, base, server, args.records, args.batch, args.rounds)
            print(report(backend, args.records, args.batch, best), flush=True)
            print()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at end {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
