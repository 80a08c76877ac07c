"""The linkage engine behind one small interface, over each storage it runs on.

:class:`MemoryStore` is the in-memory linker; :class:`SqlStore` is the registry's
tables (SQLite or PostgreSQL) through the registry's own record store and
:class:`~exchange.registry.entities.EntityResolver`. The engine's test suite
(tests/integration/test_linkage_engine.py) runs the same scenarios on both and
compares what they decide.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from exchange.core.db import transaction
from exchange.core.models import LinkEdge, SourceRecord
from exchange.registry import records as registry
from exchange.registry.entities import EntityResolver, link_record
from exchange.registry.linkage import IncrementalLinker, default_model
from exchange.registry.records import Incoming, record_ref

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def ref_of(dataset: str, department: str, source_id: str) -> str:
    return record_ref(dataset, department, source_id)


class Store(Protocol):
    def put(self, dataset: str, department: str, source_id: str, payload: dict[str, Any]) -> None:
        """Add or change a record."""

    def withdraw(self, dataset: str, department: str, source_id: str) -> None: ...
    def confirm(self, a: str, b: str) -> None: ...
    def reject(self, a: str, b: str) -> None: ...
    def split(self, entity: str, refs: list[str]) -> None: ...
    def entity_of(self, ref: str) -> str: ...
    def partition(self) -> set[frozenset[str]]:
        """The entities, each as the set of its live members' refs."""
        ...

    def review(self) -> set[tuple[str, str]]:
        """The pairs awaiting a reviewer."""
        ...


class MemoryStore:
    def __init__(self) -> None:
        self.linker = IncrementalLinker({k: default_model(k) for k in ("person", "organisation")})

    def put(self, dataset: str, department: str, source_id: str, payload: dict[str, Any]) -> None:
        ref = ref_of(dataset, department, source_id)
        record = link_record(dataset, ref, department, payload, WHEN)
        assert record is not None
        self.linker.add(record)

    def withdraw(self, dataset: str, department: str, source_id: str) -> None:
        self.linker.remove(ref_of(dataset, department, source_id))

    def confirm(self, a: str, b: str) -> None:
        self.linker.confirm(a, b)

    def reject(self, a: str, b: str) -> None:
        self.linker.reject(a, b)

    def split(self, entity: str, refs: list[str]) -> None:
        self.linker.split(entity, refs)

    def entity_of(self, ref: str) -> str:
        return self.linker.entity_of(ref)

    def partition(self) -> set[frozenset[str]]:
        return set(self.linker.entities().values())

    def review(self) -> set[tuple[str, str]]:
        return set(self.linker.review_queue())


class SqlStore:
    """Records applied through the registry's record store, linked by the resolver."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.resolver = EntityResolver()
        self._offsets = itertools.count(1)

    def _apply(self, dataset: str, department: str, source_id: str, payload: Any) -> None:
        item = Incoming(
            dataset=dataset,
            department=department,
            source_id=source_id,
            content_hash=f"h{next(self._offsets)}",
            schema_id=1,  # not a foreign key: no schema need be registered
            payload=payload,
            lookup_key=None,
            topic=f"std.{dataset}.v1",
            partition=0,
            offset=next(self._offsets),
            ingested_at=WHEN,
        )
        with transaction(self.sessions) as session:
            applied = registry.apply(session, [item])
            self.resolver.link(session, applied.changed)

    def put(self, dataset: str, department: str, source_id: str, payload: dict[str, Any]) -> None:
        self._apply(dataset, department, source_id, payload)

    def withdraw(self, dataset: str, department: str, source_id: str) -> None:
        self._apply(dataset, department, source_id, None)

    def _decide(self, a: str, b: str, decision: str) -> None:
        with transaction(self.sessions) as session:
            self.resolver.decide(session, a, b, decision, by="reviewer@test")

    def confirm(self, a: str, b: str) -> None:
        self._decide(a, b, "confirmed")

    def reject(self, a: str, b: str) -> None:
        self._decide(a, b, "rejected")

    def split(self, entity: str, refs: list[str]) -> None:
        with transaction(self.sessions) as session:
            self.resolver.split(session, entity, refs, by="reviewer@test")

    def _rows(self) -> list[tuple[str, str | None]]:
        with self.sessions() as session:
            rows = session.execute(
                select(
                    SourceRecord.dataset,
                    SourceRecord.department,
                    SourceRecord.source_id,
                    SourceRecord.entity_id,
                ).where(SourceRecord.deleted.is_(False))
            ).all()
        return [(ref_of(d, dep, s), e) for d, dep, s, e in rows]

    def entity_of(self, ref: str) -> str:
        found = dict(self._rows())[ref]
        assert found is not None, f"{ref} is in no entity"
        return found

    def partition(self) -> set[frozenset[str]]:
        groups: dict[str, set[str]] = defaultdict(set)
        for ref, entity in self._rows():
            assert entity is not None, f"{ref} is in no entity"
            groups[entity].add(ref)
        return {frozenset(g) for g in groups.values()}

    def review(self) -> set[tuple[str, str]]:
        """Review edges between live records of different entities (the queue's definition)."""
        a, b = aliased(SourceRecord), aliased(SourceRecord)
        with self.sessions() as session:
            rows = session.execute(
                select(a.dataset, a.department, a.source_id, b.dataset, b.department, b.source_id)
                .select_from(LinkEdge)
                .join(a, a.id == LinkEdge.a_id)
                .join(b, b.id == LinkEdge.b_id)
                .where(
                    LinkEdge.status == "review",
                    a.deleted.is_(False),
                    b.deleted.is_(False),
                    a.entity_id != b.entity_id,
                )
            ).all()
        pairs = set()
        for row in rows:
            x, y = ref_of(*row[:3]), ref_of(*row[3:])
            pairs.add((x, y) if x < y else (y, x))
        return pairs
