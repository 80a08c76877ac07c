"""A build's rate over its first and last records, from sampled progress.

Progress is a list of samples ``(seconds since the start, records done)``, taken
as the build goes (after each poll, or by a watcher every fraction of a second),
non-decreasing in both. Records arrive a poll at a time, so a window cannot be
cut at an exact record: the first window ends at the first sample that reached
``size`` records, the last one starts at the last sample that had at most
``total - size``; each reports the records and seconds it really spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Sample = tuple[float, int]


@dataclass(frozen=True)
class Window:
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Windows:
    size: int  # the records asked for in each window
    first: Window
    last: Window

    @property
    def ratio(self) -> float:
        """The last window's rate over the first's (the aim: at least 0.8)."""
        return self.last.rate / self.first.rate if self.first.rate else 0.0


def windows(samples: Sequence[Sample], size: int) -> Windows | None:
    """The first and last ``size`` records' rates; None without samples or records."""
    if not samples or size < 1:
        return None
    end_s, total = samples[-1]
    if total < 1:
        return None
    size = min(size, total)
    first = next((s for s in samples if s[1] >= size), samples[-1])
    start = (0.0, 0)
    for sample in samples:
        if sample[1] > total - size:
            break
        start = sample
    return Windows(
        size,
        Window(first[1], first[0]),
        Window(total - start[1], end_s - start[0]),
    )


def milestones(samples: Sequence[Sample], parts: int = 10) -> list[Sample]:
    """The records done at each ``1/parts`` of the run's wall time (the last sample before)."""
    if not samples:
        return []
    end_s = samples[-1][0]
    marks: list[Sample] = []
    index = 0
    for part in range(1, parts + 1):
        at = end_s * part / parts
        while index + 1 < len(samples) and samples[index + 1][0] <= at:
            index += 1
        marks.append((at, samples[index][1] if samples[index][0] <= at else 0))
    return marks


def merge(runs: Sequence[Sequence[Sample]]) -> list[Sample]:
    """Several members' progress (each counting its own records, on one clock) as one:
    at each sample of any member, the sum of every member's latest count."""
    events = sorted((t, i, n) for i, run in enumerate(runs) for t, n in run)
    latest = [0] * len(runs)
    merged: list[Sample] = []
    for t, i, n in events:
        latest[i] = n
        merged.append((t, sum(latest)))
    return merged
