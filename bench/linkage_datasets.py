"""bench.linkage_quality --dataset febrl3|latin|chinese: fitted on the data, against a baseline.

For one dataset: its records and true entities; a model fitted by
:func:`exchange.registry.linkage.fit_unsupervised` on those records alone
(no labels); the records linked one by one by
:class:`exchange.registry.linkage.IncrementalLinker`; pairwise precision,
recall and F1 of the entities against the truth; and, on the same records
and candidate pairs in the same run, recordlinkage's ECM classifier
(:mod:`bench.linkage_baseline`), the tuned ECM baseline of
:mod:`bench.baseline` (its own indexing and features, scored after the
transitive closure), and Splink when it is installed
(:mod:`bench.splink_baseline`). Blocking is measured too: pair completeness
(true pairs sharing a key) and candidate pairs a record.

* ``febrl3``: FEBRL3 published as three departments' exports and mapped
  through connectors (:mod:`bench.febrl`), no identifiers;
* ``latin``: :mod:`bench.population_latin` (households with addresses,
  FEBRL/GeCo-style errors, departments with and without identifiers);
* ``chinese``: :mod:`bench.population`'s persons (the default mode).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version

import rapidfuzz
import recordlinkage

from bench.baseline import ecm_baseline
from bench.linkage_baseline import ecm_entities
from exchange.registry.linkage import LinkRecord, Model, fit_unsupervised
from exchange.registry.linkage.training import candidate_pairs

DATASETS = ("febrl3", "latin", "chinese")
AIM_PRECISION = 0.99
AIM_RECALL = 0.95


def log(message: str) -> None:
    import sys

    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load(dataset: str, size: int, seed: int) -> tuple[list[LinkRecord], dict[str, str], str]:
    """(records, ref -> true entity, a line describing the data)."""
    if dataset == "febrl3":
        from bench.febrl import febrl3_records

        records, truth, counts = febrl3_records()
        note = (
            f"FEBRL3 (recordlinkage {recordlinkage.__version__}): {counts['rows']:,} rows "
            f"written as three departments' exports, {counts['mapped']:,} mapped through "
            f"connectors ({counts['dead_lettered']:,} dead-lettered: a required name or "
            "birth date missing or impossible), no identifiers"
        )
        return records, truth, note
    if dataset == "latin":
        from bench.population_latin import latin_records

        records, truth = latin_records(size, seed=seed)
        return records, truth, f"bench.population Latin mode, {size:,} people, seed {seed}"
    if dataset == "chinese":
        from bench import population
        from bench.linkage_quality import link_records

        generated = population.persons(size, seed=seed)
        truth = {g.ref: g.truth for g in generated}
        note = f"bench.population (Chinese, default corruption), {size:,} people, seed {seed}"
        return link_records(generated), truth, note
    raise ValueError(f"unknown dataset {dataset!r}; one of {', '.join(DATASETS)}")


@dataclass
class Result:
    label: str
    precision: float
    recall: float
    f1: float
    entities: int | None
    review: int | None
    review_true: int | None
    seconds: float


@dataclass
class DatasetReport:
    dataset: str
    note: str
    records: int
    truths: int
    true_pairs: int
    blocked_true_pairs: int
    candidate_pairs: int
    model: Model
    fit_seconds: float
    results: list[Result]

    def markdown(self) -> str:
        ours = self.results[0]
        baseline = max(self.results[2:], key=lambda r: r.f1)  # the strongest baseline
        lines = [
            f"**{self.dataset}** — {self.note}: {self.records:,} records of "
            f"{self.truths:,} true entities, {self.true_pairs:,} true pairs. Blocking: "
            f"{self.blocked_true_pairs:,} true pairs share a key "
            f"({self.blocked_true_pairs / max(self.true_pairs, 1):.2%}), "
            f"{self.candidate_pairs:,} candidate pairs "
            f"({self.candidate_pairs / self.records:.1f} a record). Model fitted in "
            f"{self.fit_seconds:.0f} s: link {self.model.link:g}, review "
            f"{self.model.review:g}, `{self.model.source}`.",
            "",
            "| linker | precision | recall | F1 | entities | review queue (true) | aim |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            met = r.precision >= AIM_PRECISION and r.recall >= AIM_RECALL
            queue = "" if r.review is None else f"{r.review:,} ({r.review_true:,})"
            entities = "" if r.entities is None else f"{r.entities:,}"
            lines.append(
                f"| {r.label} | {r.precision:.4f} | {r.recall:.4f} | {r.f1:.4f} | "
                f"{entities} | {queue} | {'met' if met else '**not met**'} |"
            )
        lines += [
            "",
            f"F1 ratio, fitted linker / strongest baseline ({baseline.label}): "
            f"{ours.f1 / baseline.f1:.3f}.",
            "",
        ]
        return "\n".join(lines)


def evaluate(dataset: str, size: int, seed: int, *, guard_off_row: bool = True) -> DatasetReport:
    from bench.linkage_quality import blocking_recall, run_linker, score

    log(f"{dataset}: loading")
    records, truth, note = load(dataset, size, seed)
    kept, total = blocking_recall(records, truth)
    pairs = sorted(candidate_pairs(records))
    log(f"{dataset}: {len(records):,} records, {len(pairs):,} candidate pairs; fitting")
    started = time.perf_counter()
    model = fit_unsupervised(records, "person", seed=seed)
    fit_seconds = time.perf_counter() - started
    log(f"{dataset}: {model.source}")
    results = []
    variants = [("fit_unsupervised + IncrementalLinker", model)]
    if guard_off_row:
        other = replace(model, sibling_guard=not model.sibling_guard)
        label = "same, sibling guard " + ("on" if other.sibling_guard else "off")
        variants.append((label, other))
    for label, m in variants:
        run, _ = run_linker(label, records, truth, m)
        s = run.score
        results.append(
            Result(label, s.precision, s.recall, s.f1, s.entities, run.review,
                   run.review_true, run.seconds)
        )  # fmt: skip
        log(f"{dataset}: {label}: {s}")
    started = time.perf_counter()
    entity_of, _matches = ecm_entities(records, pairs)
    s = score(entity_of, truth)
    results.append(
        Result("recordlinkage ECM (same pairs)", s.precision, s.recall, s.f1, s.entities,
               None, None, time.perf_counter() - started)
    )  # fmt: skip
    log(f"{dataset}: ECM: {s}")
    try:  # bench/baseline.py: its own indexing and features
        tuned = ecm_baseline(records, truth)
    except ValueError as exc:  # e.g. no address line at all (its q-gram feature)
        log(f"{dataset}: tuned ECM failed: {exc}")
    else:
        results.insert(
            -1,
            Result("recordlinkage ECM, tuned (bench/baseline.py, closure)",
                   tuned["closure_precision"], tuned["closure_recall"], tuned["closure_f1"],
                   None, None, None, tuned["seconds"]),
        )  # fmt: skip
        log(f"{dataset}: ECM tuned: {tuned}")
    try:
        from bench.splink_baseline import splink_baseline
    except ImportError:  # splink is a dev extra
        log(f"{dataset}: splink not installed, no Splink row")
    else:
        sp = splink_baseline(records, truth, seed=seed)
        results.insert(
            -1,
            Result("Splink 5, DuckDB (bench/splink_baseline.py, clusters at 0.9)",
                   sp["cluster_precision"], sp["cluster_recall"], sp["cluster_f1"],
                   None, None, None, sp["seconds"]),
        )  # fmt: skip
        log(f"{dataset}: Splink: {sp}")
    truths = len(set(truth.values()))
    return DatasetReport(
        dataset, note, len(records), truths, total, kept, len(pairs), model, fit_seconds, results
    )


def report(reports: Sequence[DatasetReport], info: dict[str, str]) -> str:
    head = (
        f"`bench.linkage_quality --dataset ...` on {datetime.now(UTC):%Y-%m-%d}: "
        f"{info['cpu']} ({info['cores']}, shared), {info['python']}, rapidfuzz "
        f"{rapidfuzz.__version__}, jellyfish {version('jellyfish')}, recordlinkage "
        f"{recordlinkage.__version__}."
    )
    return "\n\n".join([head, *(r.markdown() for r in reports)])
