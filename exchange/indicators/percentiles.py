"""Percentiles computed the same way on every database: nearest rank, in Python.

SQLite has no percentile function and PostgreSQL's ``percentile_disc`` is its own, so
the indicators read the values (durations, latencies) and rank them here. The
nearest-rank ``p``-th percentile of ``n`` values is the smallest value with at least
``p`` percent of the values at or below it: the ``ceil(p / 100 * n)``-th in order
(numpy's ``inverted_cdf`` method). It is always one of the values; None if there are
none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T", int, float)


def nearest_rank(ordered: Sequence[T], p: int) -> T | None:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``ordered`` (sorted)."""
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    if not ordered:
        return None
    rank = -(-p * len(ordered) // 100)  # ceil(p * n / 100), in integers: no float rounding
    return ordered[rank - 1]


def p50_p95(values: Iterable[T]) -> tuple[T | None, T | None]:
    """The median and the 95th percentile of ``values`` (any order), nearest rank."""
    ordered = sorted(values)
    return nearest_rank(ordered, 50), nearest_rank(ordered, 95)
