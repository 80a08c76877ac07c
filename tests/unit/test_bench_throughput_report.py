"""bench.throughput_report: each figure beside its baseline and the ratio, failures marked."""

from __future__ import annotations

from bench.builders import Build
from bench.children import ChildResult
from bench.registry_checks import Census, Linkage
from bench.throughput_report import BackendResult, BuildResult, Consumers, Outcome, markdown
from bench.windows import windows


def _side(records: int, elapsed: float, cpu_s: float = 1.0) -> ChildResult:
    return ChildResult(elapsed=elapsed, records=records, cpu_s=cpu_s)


def _outcome(failures: list[str]) -> Outcome:
    members = [
        ChildResult(elapsed=10.0, records=600, started=100.0, cpu_s=3.0,
                    samples=[(100.0, 0), (105.0, 300), (110.0, 600)]),
        ChildResult(elapsed=9.0, records=400, started=101.0, cpu_s=2.0,
                    samples=[(101.0, 0), (106.0, 200), (110.0, 400)]),
    ]  # fmt: skip
    built = Build(members, {"broker": 1.0, "postgresql": 4.0})
    linkage = Linkage(1000, 1000, 0, 0, 430, 428, 900, 12, 0.999, 0.998)
    consumers = Consumers(
        kafka_bare=_side(1003, 0.5),
        confluent_bare=_side(1003, 0.1),
        kafka_verify=None,
        manifests=_side(1000, 0.125),
    )
    build = BuildResult("postgresql", 2, built, linkage, windows(built.samples, 500), (1.0, 2.0))
    return Outcome(
        info={"date": "d", "cpu": "c", "cores": "2", "platform": "p", "python": "py",
              "load": "1 1 1", "verify_processes": "1"},
        publisher="tests",
        published=1000,
        publish_s=3.0,
        census=Census(messages=1003, batched=1000, manifests=3, partitions={"std.person.v1": 3}),
        results=[BackendResult("postgresql", 1000, consumers, [build])],
        finished="f",
        failures=failures,
    )  # fmt: skip


def test_figures_stand_beside_their_baselines_and_ratios() -> None:
    text = markdown(_outcome([]), "python -m bench.registry_throughput", 100_000)
    # confluent bare 10,030 rec/s; kafka-python bare 2,006; manifests 8,000 = 0.798 of bare.
    assert (
        "| postgresql | 1,003 | 2,006 (498.5) | 10,030 (99.7) | 5.000 | - "
        "| **8,000 (125.0)** | **0.798** |" in text
    )
    # Two builders: 1,000 records from t=100 to t=110 (the second member ended at 110).
    assert "| postgresql | 2 | 1,000 | **100** | 0.010 | 0.050 | 10.0 |" in text
    # CPU: each member's seconds and µs a record of the build; the broker, PostgreSQL, all.
    assert (
        "3.0 (3,000.0), 600 rec; 2.0 (2,000.0), 400 rec | 1.0 (1,000.0) "
        "| 4.0 (4,000.0) | 10,000.0 |" in text
    )
    assert "`std.person.v1` 3" in text
    assert "Check failed" not in text


def test_a_failed_check_is_in_the_report() -> None:
    text = markdown(_outcome(["postgresql, 2 builder(s): 3 dead-lettered"]), "cmd", 100_000)
    assert "- **Check failed**: postgresql, 2 builder(s): 3 dead-lettered" in text
