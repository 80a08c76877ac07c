"""Audit log benchmark: appends with signed tree heads, and verifying a million entries.

Run from the project root::

    .venv/bin/python -m bench.audit_log [--appends N] [--rounds R] [--verify-entries M]

Two measurements, each beside a baseline from the same run, on SQLite files in a
temporary directory (WAL, ``synchronous=NORMAL``, as the exchange configures them):

1. **Appends.** The exchange: :func:`exchange.audit.append` of one gateway decision
   per transaction (the tip row taken, the entry hashed into the chain and as a
   Merkle leaf, its data subject indexed), while a background thread signs a tree
   head every ``--head-interval`` seconds (default 1, ten times the gateway's
   default) as the gateway's worker does. The baseline: bare INSERTs of exactly the
   same rows (hashes precomputed) and their subject rows, one transaction per entry,
   into a second database with the same schema: no tip, no hashing, no signing.
   R rounds of N appends each, alternating which side goes first; medians reported.
   Then **group commit**, as the gateway appends the entries of its lookups and
   searches: ``--writers`` threads (default 50, wrk's connections in
   ``bench.gateway_lookup``) each hand decisions to one
   :class:`exchange.audit.group.GroupCommit` and wait for their commit; its writer
   thread appends every decision waiting (:func:`exchange.audit.log.append_many`).
   Its baseline: bare INSERTs of the same rows, committed in transactions of the
   mean batch size group commit reached, from one thread.
2. **Verify.** A log of M entries (default 1,000,000) is filled through the bulk
   path (:func:`exchange.audit.log.entry_values`, the very rows ``append`` stores,
   inserted in batches) with a head signed by :func:`exchange.audit.heads.sign` every
   10,000 entries; then :func:`exchange.audit.check` recomputes everything, once in
   one process and once with its default worker processes (one per usable core).
   The baseline: reading every column of every row in order through SQLAlchemy,
   nothing computed.

Correctness first: both logs must verify before any figure is printed (exit 1
otherwise). Prints the date, machine, load average at start and end, and a
markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.audit import heads
from exchange.audit.group import GroupCommit
from exchange.audit.log import GENESIS, entry_values
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, AuditSubject, AuditTip
from exchange.security.keystore import LocalKeyStore

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
FILL_BATCH = 10_000
MASTER = bytes(range(32))
# Appends per second of CPU time of this process (the signer thread's included), per round:
# on a shared machine, the figure that does not depend on how much CPU others took.
CPU: dict[str, list[float]] = {"exchange": [], "baseline": [], "group": [], "group_baseline": []}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def decision(n: int) -> audit.Decision:
    return audit.Decision(
        request_id=f"{n:032x}",
        action="person.lookup",
        decision="allow" if n % 7 else "deny",
        reason="records returned" if n % 7 else "no grant allows it",
        status=200 if n % 7 else 403,
        actor=f"caseworker{n % 50}@civil_affairs",
        department="civil_affairs",
        role="caseworker",
        purpose="minimum_living_allowance",
        case_ref=f"MLA-2026-{n % 10_000:05d}",
        dataset="person",
        subjects=[f"{n * 2654435761 % 2**64:064x}"],
        fields=["full_name", "birth_date", "household_id", "resident_id"],
    )


def database(folder: Path, name: str) -> tuple[sqlalchemy.Engine, sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{folder / name}")
    migrate(engine)
    return engine, session_factory(engine)


class Signer:
    """Signs a tree head every ``interval`` seconds, like the gateway's audit worker."""

    def __init__(self, sessions: sessionmaker[Session], keystore: LocalKeyStore, interval: float):
        self.sessions, self.keystore, self.interval = sessions, keystore, interval
        self.stop = threading.Event()
        self.signed = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        """Sign every ``interval`` seconds in a thread until :meth:`finish`."""
        self.stop.clear()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sign()

    def sign(self) -> None:
        before = self.latest()
        head = heads.sign(self.sessions, self.keystore)
        if head is not None and head.tree_size != before:
            self.signed += 1

    def latest(self) -> int:
        with self.sessions() as s:
            head = heads.latest(s)
            return head.tree_size if head else 0


def run_exchange(sessions: sessionmaker[Session], signer: Signer, start: int, n: int) -> float:
    signer.start()
    t, cpu = time.perf_counter(), time.process_time()
    for i in range(start, start + n):
        with transaction(sessions) as s:
            audit.append(s, decision(i), at=T0 + timedelta(milliseconds=i))
    elapsed = time.perf_counter() - t
    CPU["exchange"].append(n / (time.process_time() - cpu))
    signer.finish()
    return n / elapsed


def run_baseline(sessions: sessionmaker[Session], rows: list[dict[str, Any]]) -> float:
    entries, subjects = insert(AuditEntry), insert(AuditSubject)
    t, cpu = time.perf_counter(), time.process_time()
    for row in rows:
        with transaction(sessions) as s:
            conn = s.connection()
            conn.execute(entries, row)
            conn.execute(subjects, [{"subject": row["subjects"][0], "seq": row["seq"]}])
    CPU["baseline"].append(len(rows) / (time.process_time() - cpu))
    return len(rows) / (time.perf_counter() - t)


def finish(
    signer: Signer,
    sessions: sessionmaker[Session],
    engines: list[sqlalchemy.Engine],
    size: int,
    what: str,
) -> audit.VerifyReport:
    """Sign a last head, verify the log (exit 1 unless it holds ``size`` intact entries),
    and close the databases."""
    signer.sign()
    with sessions() as s:
        report = audit.check(s)
    for engine in engines:
        engine.dispose()
    if not report.ok or report.size != size:
        say(f"error: the {what} log does not verify: {report.problem}")
        sys.exit(1)
    return report


def run_group(
    sessions: sessionmaker[Session], signer: Signer, start: int, n: int, writers: int
) -> tuple[float, float]:
    """Appends/s from ``writers`` threads through group commit, and the mean batch size."""
    group = GroupCommit(sessions, threading.Lock())
    signer.start()
    failures: list[BaseException] = []

    def writer(first: int) -> None:
        try:
            for i in range(first, start + n, writers):
                group.append(decision(i))
        except BaseException as exc:  # reported below: a benchmark that lost entries fails
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(start + w,)) for w in range(writers)]
    t, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t
    CPU["group"].append(n / (time.process_time() - cpu))
    group.close()
    signer.finish()
    if failures or group.appended != n:
        say(f"error: group commit appended {group.appended} of {n}: {failures[:1]}")
        sys.exit(1)
    return n / elapsed, group.appended / group.batches


def run_batched_baseline(
    sessions: sessionmaker[Session], rows: list[dict[str, Any]], size: int
) -> float:
    entries, subjects = insert(AuditEntry), insert(AuditSubject)
    t, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(rows), size):
        batch = rows[first : first + size]
        with transaction(sessions) as s:
            conn = s.connection()
            conn.execute(entries, batch)
            conn.execute(subjects, [{"subject": r["subjects"][0], "seq": r["seq"]} for r in batch])
    CPU["group_baseline"].append(len(rows) / (time.process_time() - cpu))
    return len(rows) / (time.perf_counter() - t)


def bench_group(folder: Path, n: int, rounds: int, interval: float, writers: int) -> dict[str, Any]:
    engine, sessions = database(folder, "group.db")
    base_engine, base_sessions = database(folder, "group_baseline.db")
    keystore = LocalKeyStore(sessions, MASTER)
    keystore.signing_key(heads.SIGNER)
    signer = Signer(sessions, keystore, interval)
    ours, theirs, sizes = [], [], []
    next_seq = 1
    for r in range(rounds):
        rate, size = run_group(sessions, signer, next_seq, n, writers)
        rows = [entry_values(next_seq + i, GENESIS, decision(next_seq + i), T0) for i in range(n)]
        ours.append(rate)
        sizes.append(size)
        theirs.append(run_batched_baseline(base_sessions, rows, max(1, round(size))))
        next_seq += n
        say(
            f"  round {r + 1}: group commit {ours[-1]:,.0f}/s (mean batch {size:.1f}), "
            f"bare batched inserts {theirs[-1]:,.0f}/s"
        )
    report = finish(signer, sessions, [engine, base_engine], n * rounds, "group-committed")
    return {
        "exchange": statistics.median(ours),
        "baseline": statistics.median(theirs),
        "batch": statistics.median(sizes),
        "rounds": (ours, theirs),
        "heads": report.heads_checked,
    }


def bench_appends(folder: Path, n: int, rounds: int, interval: float) -> dict[str, Any]:
    engine, sessions = database(folder, "appends.db")
    base_engine, base_sessions = database(folder, "baseline.db")
    keystore = LocalKeyStore(sessions, MASTER)
    keystore.signing_key(heads.SIGNER)  # created before timing, as in a running gateway
    signer = Signer(sessions, keystore, interval)
    ours, theirs = [], []
    next_seq = 1
    for r in range(rounds):
        rows = [entry_values(next_seq + i, GENESIS, decision(next_seq + i), T0) for i in range(n)]
        first = next_seq
        order: list[Callable[[], None]] = [
            lambda first=first: ours.append(run_exchange(sessions, signer, first, n)),  # type: ignore[misc]
            lambda rows=rows: theirs.append(run_baseline(base_sessions, rows)),  # type: ignore[misc]
        ]
        for step in order if r % 2 == 0 else reversed(order):
            step()
        next_seq += n
        say(f"  round {r + 1}: exchange {ours[-1]:,.0f}/s, bare inserts {theirs[-1]:,.0f}/s")
    report = finish(signer, sessions, [engine, base_engine], n * rounds, "appended")
    return {
        "exchange": statistics.median(ours),
        "baseline": statistics.median(theirs),
        "rounds": (ours, theirs),
        "heads": report.heads_checked,
    }


def fill(sessions: sessionmaker[Session], keystore: LocalKeyStore, m: int) -> float:
    """Bulk-fill ``m`` entries exactly as ``append`` would store them; a head every batch."""
    entries, subjects = insert(AuditEntry), insert(AuditSubject)
    prev = GENESIS
    t = time.perf_counter()
    for start in range(1, m + 1, FILL_BATCH):
        rows = []
        for seq in range(start, min(start + FILL_BATCH, m + 1)):
            row = entry_values(seq, prev, decision(seq), T0 + timedelta(milliseconds=seq))
            prev = row["entry_hash"]
            rows.append(row)
        with transaction(sessions) as s:
            conn = s.connection()
            conn.execute(entries, rows)
            conn.execute(subjects, [{"subject": r["subjects"][0], "seq": r["seq"]} for r in rows])
            conn.execute(update(AuditTip).values(size=rows[-1]["seq"], entry_hash=prev))
        heads.sign(sessions, keystore)
        if start // FILL_BATCH % 10 == 0:
            say(f"  filled {rows[-1]['seq']:,} of {m:,}")
    return time.perf_counter() - t


def bench_verify(folder: Path, m: int) -> dict[str, Any]:
    engine, sessions = database(folder, "verify.db")
    keystore = LocalKeyStore(sessions, MASTER)
    filled = fill(sessions, keystore, m)
    say(f"  filled in {filled:.0f} s; reading every row (baseline)")
    columns = list(AuditEntry.__table__.columns)
    with sessions() as s:
        t, cpu = time.perf_counter(), time.process_time()
        count = 0
        for _ in s.execute(
            select(*columns).order_by(AuditEntry.seq).execution_options(yield_per=20_000)
        ):
            count += 1
        read_s, read_cpu = time.perf_counter() - t, time.process_time() - cpu
    say("  verifying in one process")
    with sessions() as s:
        t, cpu = time.perf_counter(), time.process_time()
        report = audit.check(s, workers=1)
        verify_s, verify_cpu = time.perf_counter() - t, time.process_time() - cpu
        size_mb = s.execute(text("PRAGMA page_count")).scalar_one() * 4096 / 1e6
    say("  verifying with the default workers (one per usable core)")
    with sessions() as s:
        t = time.perf_counter()
        parallel = audit.check(s)
        parallel_s = time.perf_counter() - t
    if parallel.problem != report.problem or parallel.size != report.size:
        say("error: the parallel check disagrees with the single-process one")
        sys.exit(1)
    engine.dispose()
    if not report.ok or report.size != m or count != m:
        say(f"error: the filled log does not verify: {report.problem}")
        sys.exit(1)
    return {
        "verify_s": verify_s,
        "parallel_s": parallel_s,
        "read_s": read_s,
        "verify_cpu": verify_cpu,
        "read_cpu": read_cpu,
        "fill_s": filled,
        "heads": report.heads_checked,
        "size_mb": size_mb,
    }


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical",
        "python": platform.python_version(),
        "sqlite": sqlalchemy.__version__ + " (SQLAlchemy), sqlite " + _sqlite_version(),
    }


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=10_000, help="appends per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--head-interval", type=float, default=1.0)
    parser.add_argument("--verify-entries", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--writers", type=int, default=50, help="threads for group commit")
    args = parser.parse_args()
    load_start = os.getloadavg()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        folder = Path(tmp)
        say(f"appends: {args.rounds} rounds of {args.appends:,}")
        appends = bench_appends(folder, args.appends, args.rounds, args.head_interval)
        say(f"group commit: {args.rounds} rounds of {args.appends:,} from {args.writers} threads")
        group = bench_group(folder, args.appends, args.rounds, args.head_interval, args.writers)
        verify = None
        if args.verify_entries:
            say(f"verify: filling {args.verify_entries:,} entries")
            verify = bench_verify(folder, args.verify_entries)
    load_end = os.getloadavg()
    ratio = appends["exchange"] / appends["baseline"]
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    print(
        f"load average: start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
        f"end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}"
    )
    print(
        f"command: python -m bench.audit_log --appends {args.appends} --rounds {args.rounds} "
        f"--head-interval {args.head_interval} --verify-entries {args.verify_entries} "
        f"--writers {args.writers}"
    )
    print()
    print("| measurement | exchange | baseline | ratio | aim |")
    print("|---|---|---|---|---|")
    print(
        f"| appends/s, one transaction each, heads signed every {args.head_interval:g} s "
        f"({appends['heads']} heads) | {appends['exchange']:,.0f} | {appends['baseline']:,.0f} "
        f"(bare INSERTs of the same rows) | {ratio:.2f} | >= 2,000/s |"
    )
    per_round = ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in zip(*appends["rounds"], strict=True))
    print(f"| (rounds, exchange/baseline) | {per_round} | | | |")
    cpu_ours, cpu_theirs = statistics.median(CPU["exchange"]), statistics.median(CPU["baseline"])
    print(
        f"| appends per CPU second of the process | {cpu_ours:,.0f} | {cpu_theirs:,.0f} | "
        f"{cpu_ours / cpu_theirs:.2f} | |"
    )
    g_ratio = group["exchange"] / group["baseline"]
    print(
        f"| appends/s, group commit from {args.writers} threads (the gateway's path), heads "
        f"every {args.head_interval:g} s ({group['heads']} heads), mean batch "
        f"{group['batch']:.1f} | {group['exchange']:,.0f} | {group['baseline']:,.0f} (bare "
        f"INSERTs of the same rows, {group['batch']:.0f} a transaction) | {g_ratio:.2f} "
        "| >= 2,000/s |"
    )
    per_round = ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in zip(*group["rounds"], strict=True))
    print(f"| (rounds, group commit/baseline) | {per_round} | | | |")
    g_ours, g_theirs = statistics.median(CPU["group"]), statistics.median(CPU["group_baseline"])
    print(
        f"| group-committed appends per CPU second | {g_ours:,.0f} | {g_theirs:,.0f} | "
        f"{g_ours / g_theirs:.2f} | |"
    )
    if verify is None:
        return
    print(
        f"| verify {args.verify_entries:,} entries in one process ({verify['heads']} heads, "
        f"{verify['size_mb']:,.0f} MB file) | {verify['verify_s']:.1f} s | "
        f"{verify['read_s']:.1f} s (reading every row) | "
        f"{verify['verify_s'] / verify['read_s']:.2f} | < 30 s |"
    )
    workers = len(os.sched_getaffinity(0))
    print(
        f"| verify, the same log, {workers} worker processes (the default) | "
        f"{verify['parallel_s']:.1f} s | {verify['read_s']:.1f} s | "
        f"{verify['parallel_s'] / verify['read_s']:.2f} | < 30 s |"
    )
    print(
        f"| (verify in one process, CPU time) | {verify['verify_cpu']:.1f} s | "
        f"{verify['read_cpu']:.1f} s | {verify['verify_cpu'] / verify['read_cpu']:.2f} | |"
    )
    print(f"| bulk fill (not timed against anything) | {verify['fill_s']:.0f} s | | | |")


if __name__ == "__main__":
    main()
