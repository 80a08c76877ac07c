"""Polls of a generated population applied to a registry, and what its linkage stored.

For the test that runs the registry's linkage (:class:`~exchange.registry.entities.
EntityResolver`) and its record-by-record predecessor
(:mod:`tests.support.linkage_reference`) on the same input and compares the edges and
entities they leave: :func:`workload` makes the polls (new records, corrected ones,
withdrawals, payments joining through an identifier), :func:`apply_polls` applies them
as the builder does (one transaction a poll: the record store, then ``link``),
:func:`edges` and :func:`partition` read the result by record reference.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from bench.population import persons
from exchange.core.db import transaction
from exchange.core.models import LinkEdge, SourceRecord
from exchange.registry import records as registry
from exchange.registry.records import Changed, Incoming, record_ref

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
Put = tuple[str, str, str, dict[str, Any] | None]  # dataset, department, source id, payload


class Resolver(Protocol):
    def link(self, session: Session, changed: Sequence[Changed]) -> int: ...


def workload(people: int, *, seed: int, poll: int = 500) -> list[list[Put]]:
    """Polls of about ``poll`` changes: a population of ``people`` (corrupted duplicates,
    twins and siblings, mistyped identifiers), then corrections (a changed phone, a
    name or date swapped for another record's: a record that moves between entities),
    withdrawals (some re-published later) and benefit payments joining by identifier."""
    rng = random.Random(seed)
    generated = persons(people, seed=seed)
    puts: list[Put] = []
    for rec in generated:
        _, department, source_id = rec.ref.split("/", 2)
        puts.append(("person", department, source_id, dict(rec.payload)))
    later: list[Put] = []
    for dataset, department, source_id, payload in rng.sample(puts, len(puts) // 5):
        assert payload is not None
        roll = rng.random()
        if roll < 0.3:
            later.append((dataset, department, source_id, None))
            if rng.random() < 0.5:  # and published again
                later.append((dataset, department, source_id, payload))
        elif roll < 0.6:
            later.append((dataset, department, source_id, {**payload, "phone": "13900000000"}))
        else:  # another record's name and birth date: it leaves its entity for another
            other = rng.choice(puts)[3]
            assert other is not None
            fields = ("family_name", "given_name", "full_name", "birth_date")
            later.append((dataset, department, source_id, {**payload, **{
                k: other[k] for k in fields if k in other
            }}))  # fmt: skip
    for n, (_, _, _, payload) in enumerate(rng.sample(puts, len(puts) // 10)):
        assert payload is not None
        bidx = payload.get("resident_id_bidx")
        if bidx:
            later.append(("benefit_payment", "civil_affairs", f"pay-{n}", {
                "resident_id_bidx": bidx, "amount_fen": 61000, "programme": "MLSA",
            }))  # fmt: skip
    rng.shuffle(later)
    stream = puts + later
    return [stream[i : i + poll] for i in range(0, len(stream), poll)]


def apply_polls(sessions: sessionmaker[Session], resolver: Resolver, polls: list[list[Put]]) -> int:
    """Apply each poll in one transaction, as the builder does; returns the records linked."""
    offsets = itertools.count(1)
    linked = 0
    for poll in polls:
        items = [
            Incoming(
                dataset=dataset,
                department=department,
                source_id=source_id,
                content_hash=f"h{offset}",
                schema_id=1,  # not a foreign key: no schema need be registered
                payload=payload,
                lookup_key=None,
                topic=f"std.{dataset}.v1",
                partition=0,
                offset=offset,
                ingested_at=WHEN,
            )
            for (dataset, department, source_id, payload), offset in zip(
                poll, offsets, strict=False
            )
        ]
        with transaction(sessions) as session:
            applied = registry.apply(session, items)
            linked += resolver.link(session, applied.changed)
    return linked


Stored = tuple[str, float, bool, str | None, str]


def edges(sessions: sessionmaker[Session]) -> dict[tuple[str, str], Stored]:
    """Every stored edge by its records' refs (in order): status, weight, deterministic,
    the reviewer, and the explanation (as canonical JSON)."""
    a, b = aliased(SourceRecord), aliased(SourceRecord)
    with sessions() as session:
        rows = session.execute(
            select(
                a.dataset, a.department, a.source_id,
                b.dataset, b.department, b.source_id,
                LinkEdge.status, LinkEdge.weight, LinkEdge.deterministic,
                LinkEdge.decided_by, LinkEdge.explanation,
            )
            .select_from(LinkEdge)
            .join(a, a.id == LinkEdge.a_id)
            .join(b, b.id == LinkEdge.b_id)
        ).all()  # fmt: skip
    found = {}
    for row in rows:
        x, y = record_ref(*row[:3]), record_ref(*row[3:6])
        explanation = json.dumps(row[10], sort_keys=True, ensure_ascii=False)
        found[(x, y) if x < y else (y, x)] = (
            row[6],
            round(row[7], 6),
            bool(row[8]),
            row[9],
            explanation,
        )
    return found


def partition(sessions: sessionmaker[Session]) -> set[frozenset[str]]:
    """The entities, each as the set of its live members' refs (a record in none: alone)."""
    groups: dict[str, set[str]] = defaultdict(set)
    with sessions() as session:
        rows = session.execute(
            select(
                SourceRecord.dataset,
                SourceRecord.department,
                SourceRecord.source_id,
                SourceRecord.entity_id,
            ).where(SourceRecord.deleted.is_(False))
        ).all()
    alone = []
    for dataset, department, source_id, entity in rows:
        ref = record_ref(dataset, department, source_id)
        if entity is None:
            alone.append(frozenset({ref}))
        else:
            groups[entity].add(ref)
    return {frozenset(g) for g in groups.values()} | set(alone)
