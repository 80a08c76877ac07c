"""What a process costs, read from /proc: CPU seconds (its own and its children's) and RSS.

CPU time is ``utime + stime`` of ``/proc/<pid>/stat``, plus ``cutime + cstime``
(the children it has waited for), plus the same of every live descendant. Read
before and after a phase, the difference is the CPU the process tree spent in
it: a child that starts and ends in between is counted through its parent's
``cutime`` once reaped, a live one through its own ``stat`` (PostgreSQL's
postmaster reaps its backends; a builder's verification pool is shut down,
so reaped, before the builder reports).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def status_kib(name: str, pid: int | str = "self") -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (all its threads' children)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(c) for c in handle.read().split())
        except OSError:
            continue
    return found


def own_cpu_s(pid: int) -> float:
    """``utime + stime + cutime + cstime`` of ``pid`` in seconds, 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: the fields after it start past its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid``, of the children it reaped and of its live descendants."""
    total = own_cpu_s(pid)
    for child in children(pid):
        total += tree_cpu_s(child)
    return total


@dataclass(frozen=True)
class Watched:
    """A process tree whose CPU a phase is charged (the broker's JVM, PostgreSQL)."""

    name: str
    pid: int


def cpu_snapshot(watched: list[Watched]) -> dict[str, float]:
    return {w.name: tree_cpu_s(w.pid) for w in watched}


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: max(0.0, after.get(name, 0.0) - spent) for name, spent in before.items()}


class ChildPeaks(threading.Thread):
    """Peak RSS of this process's own children (e.g. a verification pool), read every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(name="child-peaks", daemon=True)
        self.peaks: dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.2):
            for child in children(me):
                kib = status_kib("VmHWM", child)
                if kib:
                    self.peaks[child] = max(kib, self.peaks.get(child, 0))

    def stop(self) -> dict[int, int]:
        self._done.set()
        self.join()
        return dict(self.peaks)
