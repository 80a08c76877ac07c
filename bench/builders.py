"""The registry builder timed in child processes: one, or several in one consumer group.

Every member is a :class:`exchange.registry.builder.RegistryBuilder` in its own
spawned process, all in one fresh consumer group, so Kafka shares the partitions
among them. They count the records they took (applied, withdrawn or
dead-lettered: a replay after a rebalance is not counted twice) in one shared
counter and stop once it reaches the records asked for. Each member samples its
own progress after every poll (on the one monotonic clock of the machine, so
the members' samples merge), measures its CPU (``os.times``, its verification
processes included once reaped) and its peak RSS with its children's.

While the members run, this process charges the broker's and PostgreSQL's
process trees their CPU (:mod:`bench.procstat`).
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.children import ChildResult, Progress, collect, own_cpu_s, start_child
from bench.procstat import ChildPeaks, Watched, cpu_snapshot, cpu_spent, status_kib
from bench.windows import Sample, merge
from exchange.core.db import make_engine, session_factory
from exchange.registry.builder import RegistryBuilder
from exchange.security.keystore import LocalKeyStore

TIMEOUT_S = 4 * 3600.0


def builder_child(
    conn: Connection,
    bootstrap: str,
    url: str,
    master_key: bytes,
    linkage_key: bytes,
    total: int,
    verify_processes: int,
    group_id: str,
    timeout_s: float,
    shared: Any,  # multiprocessing.Value("q"): the records every member took
) -> None:
    """One member: build from the std.* topics until the members took ``total`` records."""
    result = ChildResult()
    peaks = ChildPeaks()
    peaks.start()
    try:
        engine = make_engine(url)
        sessions = session_factory(engine)
        keystore = LocalKeyStore(sessions, master_key)
        progress = Progress(f"builder {multiprocessing.current_process().name}", total)
        cpu = own_cpu_s()
        result.started = started = time.monotonic()
        builder = RegistryBuilder(
            bootstrap,
            sessions,
            linkage_key=linkage_key,
            keystore=keystore,
            group_id=group_id,
            verify_processes=verify_processes,
        )
        stats = builder.stats
        taken = 0
        samples: list[Sample] = [(started, 0)]
        while shared.value < total and time.monotonic() - started < timeout_s:
            builder.poll_once(500)
            now_taken = stats.seen - stats.unchanged
            if now_taken != taken:
                with shared.get_lock():
                    shared.value += now_taken - taken
                taken = now_taken
                samples.append((time.monotonic(), taken))
            progress(shared.value)
        result.elapsed = time.monotonic() - started
        result.records = taken
        result.samples = samples
        result.stats = {
            "seen": stats.seen,
            "applied": stats.applied,
            "withdrawn": stats.withdrawn,
            "unchanged": stats.unchanged,
            "dead_lettered": stats.dead_lettered,
            "linked": stats.linked,
        }
        builder.close()  # shuts the verification pool down: its CPU is then in os.times
        result.cpu_s = own_cpu_s() - cpu
        engine.dispose()
    except BaseException:
        result.error = traceback.format_exc()
    result.child_peaks_kib = peaks.stop()
    result.peak_rss_kib = status_kib("VmHWM")
    conn.send(result)
    conn.close()


@dataclass
class Build:
    """What the members of one build did together."""

    members: list[ChildResult]
    cpu: dict[str, float] = field(default_factory=dict)  # the watched trees' CPU seconds

    @property
    def started(self) -> float:
        return min(m.started for m in self.members)

    @property
    def elapsed(self) -> float:
        return max(m.started + m.elapsed for m in self.members) - self.started

    @property
    def records(self) -> int:
        return sum(m.records for m in self.members)

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def samples(self) -> list[Sample]:
        """Records taken by all members against seconds since the first member started."""
        start = self.started
        return [(t - start, n) for t, n in merge([m.samples for m in self.members])]

    def stat(self, name: str) -> int:
        return sum(m.stats.get(name, 0) for m in self.members)

    @property
    def memory(self) -> str:
        return " / ".join(m.memory for m in self.members)

    @property
    def peak_rss_mb(self) -> float:
        return max(m.peak_rss_mb for m in self.members)


def build(
    bootstrap: str,
    url: str,
    master_key: bytes,
    linkage_key: bytes,
    total: int,
    verify_processes: int,
    members: int,
    watched: list[Watched],
    timeout_s: float = TIMEOUT_S,
) -> Build:
    """Run ``members`` builders in one fresh group until they took ``total`` records (or
    ``timeout_s`` passed: the build then took fewer, which the registry checks refuse)."""
    context = multiprocessing.get_context("spawn")
    shared = context.Value("q", 0)
    group_id = f"bench-builder-{uuid.uuid4().hex[:8]}"
    before = cpu_snapshot(watched)
    arguments = (
        bootstrap,
        url,
        master_key,
        linkage_key,
        total,
        verify_processes,
        group_id,
        timeout_s,
    )
    started = [
        start_child(f"builder-{i + 1}", builder_child, *arguments, shared) for i in range(members)
    ]
    results: list[ChildResult] = []
    try:
        results.extend(collect(s) for s in started)
    finally:  # one member failed: stop the others (ours, by their process objects)
        for _, process, _ in started:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    return Build(results, cpu_spent(before, cpu_snapshot(watched)))
