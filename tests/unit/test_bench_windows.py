"""bench.windows (a build's first and last records' rates) and bench.procstat (CPU from /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.procstat import cpu_spent, own_cpu_s, tree_cpu_s
from bench.windows import merge, milestones, windows


def test_windows_cut_at_the_polls_that_reach_them() -> None:
    # 10 s to the first 1,000 records, then 1,000 a second for 4 s, then 500 a second.
    samples = [(0.0, 0), (10.0, 1000), (11.0, 2000), (12.0, 3000), (14.0, 4000), (16.0, 5000)]
    found = windows(samples, 2000)
    assert found is not None
    assert (found.first.records, found.first.seconds) == (2000, 11.0)
    # The last sample with at most 5,000 - 2,000 records is (12.0, 3000).
    assert (found.last.records, found.last.seconds) == (2000, 4.0)
    assert found.ratio == pytest.approx((2000 / 4.0) / (2000 / 11.0))


def test_a_window_larger_than_the_build_spans_all_of_it() -> None:
    found = windows([(0.0, 0), (2.0, 100)], 1000)
    assert found is not None
    assert (found.first.records, found.last.records, found.last.seconds) == (100, 100, 2.0)
    assert windows([], 10) is None
    assert windows([(1.0, 0)], 10) is None


def test_members_progress_merges_into_one_count() -> None:
    merged = merge([[(0.0, 0), (2.0, 10), (4.0, 30)], [(1.0, 0), (3.0, 5)]])
    assert merged == [(0.0, 0), (1.0, 0), (2.0, 10), (3.0, 15), (4.0, 35)]
    assert milestones(merged, 4) == [(1.0, 0), (2.0, 10), (3.0, 15), (4.0, 35)]


SPIN_CHILD = "import time\nt = time.process_time() + 0.3\nwhile time.process_time() < t: pass"


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_of_a_process_tree_includes_a_reaped_child() -> None:
    me = os.getpid()
    before = tree_cpu_s(me)
    # A child that burns 0.3 s of CPU and is reaped: counted through our cutime.
    subprocess.run(
        [sys.executable, "-c", SPIN_CHILD],
        check=True,
    )
    _spin(0.1)
    spent = cpu_spent({"me": before}, {"me": tree_cpu_s(me)})["me"]
    assert spent >= 0.35
    assert own_cpu_s(me) >= spent  # no live children: the tree is the process and its reaped
    assert own_cpu_s(2**22 + 12345) == 0.0  # no such process
