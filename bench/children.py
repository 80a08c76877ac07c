"""Each timed side of a benchmark in its own spawned process, and what it sends back."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.procstat import status_kib


class BenchmarkError(RuntimeError):
    """A check failed: the timings would mean nothing."""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class ChildResult:
    elapsed: float = 0.0
    records: int = 0
    peak_rss_kib: int = 0
    child_peaks_kib: dict[int, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0  # the process's CPU and its reaped children's (os.times)
    started: float = 0.0  # time.monotonic() when timing started (one clock for all processes)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, records)
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def us_per_record(self) -> float:
        return 1e6 * self.elapsed / self.records if self.records else 0.0

    @property
    def peak_rss_mb(self) -> float:
        return (self.peak_rss_kib + sum(self.child_peaks_kib.values())) / 1024

    @property
    def memory(self) -> str:
        if not self.child_peaks_kib:
            return f"{self.peak_rss_mb:,.0f}"
        children = " + ".join(f"{k / 1024:,.0f}" for k in self.child_peaks_kib.values())
        return f"{self.peak_rss_mb:,.0f} ({self.peak_rss_kib / 1024:,.0f} + {children})"


def own_cpu_s() -> float:
    """This process's CPU seconds and its reaped children's."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Progress:
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
                f"({rate:,.0f} rec/s), RSS {status_kib('VmRSS') / 1024:,.0f} MB"
            )


def start_child(name: str, target: Callable[..., None], *args: object) -> Any:
    """Start ``target(conn, *args)`` in a spawned process; ``collect`` its result."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, *args), name=name, daemon=False)
    process.start()
    sender.close()
    return name, process, receiver


def collect(started: Any) -> ChildResult:
    name, process, receiver = started
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


def run_child(name: str, target: Callable[..., None], *args: object) -> ChildResult:
    """Run ``target(conn, *args)`` in a spawned process and return what it sends back."""
    return collect(start_child(name, target, *args))
