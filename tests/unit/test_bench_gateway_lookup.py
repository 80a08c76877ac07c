"""bench.gateway_lookup's reading of wrk's report, and the data it publishes."""

from __future__ import annotations

import pytest

from bench.gateway_lookup import BenchmarkError, parse_wrk, people
from schemas.validators import resident_id

WRK_REPORT = """\
Running 1m test @ http://127.0.0.1:41234
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.02s     4.31s   28.26s    71.43%
    Req/Sec     0.50      1.12     5.00     88.00%
  Latency Distribution
     50%   15.40s
     75%   18.01s
     90%   21.50s
     99%   28.26s
  175 requests in 1.00m, 155.15KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:      2.91
Transfer/sec:      2.58KB
"""


def test_wrk_report_is_read_with_units_and_failures() -> None:
    result = parse_wrk(WRK_REPORT)
    assert result.requests == 175
    assert result.rps == pytest.approx(2.91)
    assert result.p50_ms == pytest.approx(15_400.0)
    assert result.p99_ms == pytest.approx(28_260.0)
    assert (result.non_2xx, result.socket_errors) == (4, 3)


def test_a_clean_wrk_report_has_no_failures_and_reads_microseconds() -> None:
    report = (
        WRK_REPORT.replace("15.40s", "812.00us")
        .replace("28.26s", "17.25ms")
        .replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
        .replace("  Non-2xx or 3xx responses: 4\n", "")
    )
    result = parse_wrk(report)
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(17.25)
    assert (result.non_2xx, result.socket_errors) == (0, 0)


def test_an_unreadable_report_fails_the_run() -> None:
    with pytest.raises(BenchmarkError):
        parse_wrk("wrk: connection refused\n")


def test_the_published_people_are_distinct_and_valid() -> None:
    population = people(2_000)
    ids = [p.resident_id for p in population]
    assert len(set(ids)) == 2_000
    assert all(resident_id(i) is None for i in ids)
