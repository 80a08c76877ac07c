"""What ``bench.registry_throughput`` measured, and its markdown report for docs/benchmarks.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.builders import Build
from bench.children import ChildResult
from bench.registry_checks import Census, Linkage
from bench.windows import Windows, milestones


@dataclass
class Consumers:
    """The baselines of one backend's builds, read from the same broker in the same run."""

    kafka_bare: ChildResult
    confluent_bare: ChildResult
    kafka_verify: ChildResult | None  # only where every record carries its own signature
    manifests: ChildResult  # confluent-kafka accepting records as the builder must


@dataclass
class BuildResult:
    backend: str
    builders: int
    build: Build
    linkage: Linkage
    windows: Windows | None
    load: tuple[float, float]


@dataclass
class BackendResult:
    backend: str
    records: int
    consumers: Consumers
    builds: list[BuildResult]


@dataclass
class Outcome:
    info: dict[str, str]
    publisher: str
    published: int
    publish_s: float
    census: Census
    results: list[BackendResult]
    finished: str
    failures: list[str] = field(default_factory=list)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "-"


def _side(result: ChildResult | None) -> str:
    if result is None:
        return "-"
    return f"{result.rate:,.0f} ({result.us_per_record:,.1f})"


def _consumer_lines(outcome: Outcome) -> list[str]:
    lines = [
        "| Backend | Messages | kafka-python bare, rec/s (µs a record) | confluent-kafka bare "
        "| confluent / kafka-python | kafka-python verifying each signature | confluent-kafka "
        "verifying manifests | manifests / confluent bare | CPU µs a record (kafka bare, "
        "confluent bare, manifests) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in outcome.results:
        c = r.consumers
        cpu = ", ".join(
            f"{1e6 * s.cpu_s / s.records:,.1f}" if s.records else "-"
            for s in (c.kafka_bare, c.confluent_bare, c.manifests)
        )
        lines.append(
            f"| {r.backend} | {c.confluent_bare.records:,} | {_side(c.kafka_bare)} | "
            f"{_side(c.confluent_bare)} | {_ratio(c.confluent_bare.rate, c.kafka_bare.rate)} | "
            f"{_side(c.kafka_verify)} | **{_side(c.manifests)}** | "
            f"**{_ratio(c.manifests.rate, c.confluent_bare.rate)}** | {cpu} |"
        )
    return lines


def _build_lines(outcome: Outcome) -> list[str]:
    lines = [
        "| Backend | Builders | Records | Builder (rec/s) | / confluent bare | / kafka-python "
        "bare | Wall s | First window (rec/s) | Last window (rec/s) | Last / first "
        "| Peak RSS MB (each builder, with its children) | Entities / true people | Precision "
        "| Recall | Load 1-min (start, end) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
    ]
    for r in outcome.results:
        c = r.consumers
        for b in r.builds:
            w, lk = b.windows, b.linkage
            first = f"{w.first.rate:,.0f} ({w.first.records:,})" if w else "-"
            last = f"{w.last.rate:,.0f} ({w.last.records:,})" if w else "-"
            lines.append(
                f"| {r.backend} | {b.builders} | {b.build.records:,} | "
                f"**{b.build.rate:,.0f}** | {_ratio(b.build.rate, c.confluent_bare.rate)} | "
                f"{_ratio(b.build.rate, c.kafka_bare.rate)} | {b.build.elapsed:,.1f} | "
                f"{first} | {last} | {f'**{w.ratio:.3f}**' if w else '-'} | "
                f"{b.build.memory} | {lk.entities:,} / {lk.true_people:,} | "
                f"{lk.precision:.4f} | {lk.recall:.4f} | {b.load[0]:.2f}, {b.load[1]:.2f} |"
            )
    return lines


def _cpu_lines(outcome: Outcome) -> list[str]:
    lines = [
        "| Backend | Builders | Records | Each builder: CPU s (µs a record) | Broker JVM "
        "| PostgreSQL (all its processes) | All, µs a record |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in outcome.results:
        for b in r.builds:
            n = b.build.records or 1
            each = "; ".join(
                f"{m.cpu_s:,.1f} ({1e6 * m.cpu_s / n:,.1f}), {m.records:,} rec"
                for m in b.build.members
            )
            broker = b.build.cpu.get("broker")
            pg = b.build.cpu.get("postgresql")
            total = sum(m.cpu_s for m in b.build.members) + sum(b.build.cpu.values())

            def cell(s: float | None, n: int = n) -> str:
                return "-" if s is None else f"{s:,.1f} ({1e6 * s / n:,.1f})"

            lines.append(
                f"| {r.backend} | {b.builders} | {b.build.records:,} | {each} | {cell(broker)} | "
                f"{cell(pg)} | {1e6 * total / n:,.1f} |"
            )
    return lines


def markdown(outcome: Outcome, command: str, window: int) -> str:
    info, counted = outcome.info, outcome.census
    lines = [
        f"Date: {info['date']} to {outcome.finished}. Command: `{command}`.",
        f"Machine: {info['cpu']} ({info['cores']}), {info['platform']}, {info['python']}; "
        f"load average at start {info['load']}. Builder: `verify_processes` = "
        f"{info['verify_processes']}.",
        f"Published by {outcome.publisher}: {outcome.published:,} person records in "
        f"{outcome.publish_s:,.0f} s (not timed below); the std.* topics hold "
        f"{counted.messages:,} messages: {counted.signed:,} records signed one by one, "
        f"{counted.batched:,} records of signed batches, {counted.manifests:,} manifests; "
        "partitions: " + ", ".join(f"`{t}` {n}" for t, n in counted.partitions.items()) + ".",
        "",
        "Consumers (each its own child process, reading the same topics to the end):",
        "",
        *_consumer_lines(outcome),
        "",
        f"Builds (windows: the first and the last {window:,} records, or the half of a "
        "smaller build; the records each window really spans in brackets):",
        "",
        *_build_lines(outcome),
        "",
        "CPU of the builds (`/proc/<pid>/stat`, children included; µs a record of the build):",
        "",
        *_cpu_lines(outcome),
        "",
    ]
    for r in outcome.results:
        m = r.consumers.manifests.stats
        lines.append(
            f"- {r.backend}: the manifest-verifying consumer accepted {m.get('accepted', 0):,} "
            f"records, refused {m.get('refused', 0):,}, verified {m.get('manifests', 0):,} "
            f"manifests and {m.get('signatures', 0):,} signatures in all; its CPU in "
            f"`BatchCheck`: {m.get('check_cpu_us', 0) / max(1, m.get('accepted', 0)):,.1f} "
            "µs a record."
        )
        for b in r.builds:
            lk = b.linkage
            marks = ", ".join(f"{n:,}" for _, n in milestones(b.build.samples))
            lines.append(
                f"- {r.backend}, {b.builders} builder(s): {lk.links:,} automatic links and "
                f"{lk.review:,} pairs for review stored; {b.build.stat('linked'):,} records "
                f"linked; records taken at each tenth of the wall time: {marks}."
            )
    for failure in outcome.failures:
        lines.append(f"- **Check failed**: {failure}")
    return "\n".join(lines)
