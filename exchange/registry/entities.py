"""Incremental linkage in the registry: keys, compared pairs, entities with stable ids.

As records change (``exchange.registry.records.apply``), :class:`EntityResolver` keeps
the registry's entities consistent in the same transaction:

1. a changed record's blocking keys (``link_keys``) and compared pairs
   (``link_edges``) are replaced; a withdrawn record loses both;
2. the record is compared (``exchange.registry.linkage``) with every live record that
   shares a key; a pair that links, or awaits review, is stored with its
   explanation; a reviewer's earlier decision on the pair (``link_decisions``)
   overrides the model;
3. the entities the record belonged to and the ones it now links to are
   recomputed as connected components of the links (automatic and confirmed),
   and :func:`exchange.registry.linkage.clusters.assign` gives each component an id so
   that an entity whose membership did not change keeps its id.

Records of datasets that only carry an identifier (benefit payments, health
insurance, ...) join the entity of the person (or organisation) with the same
identifier; datasets with no identifier are not linked.

The invariant: every link edge joins two records of one entity, and an
entity's records are connected by its link edges.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    JSON,
    Connection,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.errors import NotFoundError
from exchange.core.models import Entity, LinkDecision, LinkEdge, LinkKey, SourceRecord
from exchange.registry import assignment
from exchange.registry.linkage.blocking import block_keys
from exchange.registry.linkage.engine import (
    CONFIRMED,
    JOINING,
    REJECTED,
    Edge,
    pair_status,
    partition,
)
from exchange.registry.linkage.features import LinkRecord, organisation_record, person_record
from exchange.registry.linkage.linker import Verdict, explain, verdict
from exchange.registry.linkage.model import Model, default_model
from exchange.registry.linkage.recordcache import MISSING, RecordCache
from exchange.registry.records import Changed, record_ref

LINKED = JOINING  # edge statuses that join two records into one entity
CONFIRM, REJECT = CONFIRMED, REJECTED
log = logging.getLogger(__name__)
_CHUNK = 900
# Values in one IN list of a driver-level read (SQLite since 3.32 takes 32,766 parameters,
# PostgreSQL 65,535).
_IN_CHUNK = 5_000
# A blocking key shared by more records than this is too common to tell anyone apart
# (a placeholder name or date in a department's export): it finds no candidates. Without
# the cap such a key makes every new record compare with all the others.
MAX_BLOCK = 1_000
# The builder's statements run on the tables (SQLAlchemy Core), not through the ORM's
# bulk paths: the same SQL for a fraction of the Python work per row.
_RECORDS = typed(Table, SourceRecord.__table__)
_KEYS = typed(Table, LinkKey.__table__)
_EDGES = typed(Table, LinkEdge.__table__)
_ENTITIES = typed(Table, Entity.__table__)
# Edges are inserted with their explanation already serialised (the JSON column's own
# serialiser, json.dumps, gives the same text): one explanation serves many edges, and
# serialising it once each was a tenth of the linkage's time. SQLite stores JSON as text;
# PostgreSQL is told the text is JSON.
_EXPLANATION = bindparam("explanation", type_=Text)
_INSERT_EDGES = {
    "sqlite": insert(_EDGES).values(explanation=_EXPLANATION),
    "postgresql": insert(_EDGES).values(explanation=cast(_EXPLANATION, JSON)),
}

# Datasets linked only through an identifier, and the kind of entity they join.
_IDENTIFIER_ONLY = {"resident_id_bidx": "person", "uscc": "organisation"}


def link_record(
    dataset: str, ref: str, department: str, payload: dict[str, Any], updated_at: datetime | None
) -> LinkRecord | None:
    """What linkage sees of a registry record; None for a record that is not linked."""
    if dataset == "person":
        return person_record(ref, department, payload, updated_at)
    if dataset == "organisation":
        return organisation_record(ref, department, payload, updated_at)
    for field, kind in _IDENTIFIER_ONLY.items():
        value = payload.get(field)
        if isinstance(value, str) and value:
            return LinkRecord(
                ref=ref,
                kind=kind,
                department=department,
                identifier=value.upper() if kind == "organisation" else value,
                updated_at=updated_at,
            )
    return None


@dataclass(frozen=True, slots=True)
class _Live:
    id: int
    ref: str
    entity_id: str | None
    record: LinkRecord


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _ref_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _set_entities(db: Connection, changes: Sequence[tuple[int, str | None]]) -> None:
    """Set the entity of records: ``(record id, entity id or None)`` pairs."""
    statement = (
        update(_RECORDS)
        .where(_RECORDS.c.id == bindparam("_id"))
        .values(entity_id=bindparam("_entity"))
    )
    db.execute(statement, [{"_id": rid, "_entity": eid} for rid, eid in changes])


def _insert_edges(db: Connection) -> Any:
    """The statement inserting edges with their explanations' JSON, on ``db``'s backend."""
    return _INSERT_EDGES.get(db.dialect.name, _INSERT_EDGES["postgresql"])


def _marker(db: Connection) -> str:
    return "?" if db.dialect.paramstyle == "qmark" else "%s"


def _rows_in(db: Connection, sql: str, values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """The rows of ``sql`` (a driver-level statement whose ``{values}`` is the list of an
    ``IN``) for every value, in chunks of ``_IN_CHUNK``. The hot reads of a poll go this
    way: their values are plain ids and strings, and SQLAlchemy's expansion of a long
    ``IN`` list cost three to four times the statement itself."""
    marker = _marker(db)
    for start in range(0, len(values), _IN_CHUNK):
        chunk = tuple(values[start : start + _IN_CHUNK])
        yield from db.exec_driver_sql(sql.format(values=",".join([marker] * len(chunk))), chunk)


def _insert_keys(db: Connection, rows: list[tuple[str, int]]) -> None:
    """Insert ``(key, record id)`` rows: the driver's executemany, as plain values need no
    type processing (SQLAlchemy's per-row work was most of this statement's cost)."""
    marker = _marker(db)
    db.exec_driver_sql(
        f"INSERT INTO {_KEYS.name} (key, record_id) VALUES ({marker}, {marker})", rows
    )


def new_entity_id(kind: str) -> str:
    return ("P" if kind == "person" else "O") + uuid.uuid4().hex[:20]


# What new_entity_id makes: P (person) or O (organisation) and 20 lower-case hex digits.
ENTITY_ID = re.compile(r"[PO][0-9a-f]{20}")


def is_entity_id(value: str) -> bool:
    """Whether ``value`` has the form of an entity id (see :func:`new_entity_id`)."""
    return ENTITY_ID.fullmatch(value) is not None


class EntityResolver:
    """Keeps entities consistent as records change; one per builder (it caches records)."""

    def __init__(self, models: dict[str, Model] | None = None) -> None:
        self.models = models or {k: default_model(k) for k in ("person", "organisation")}
        self._cache = RecordCache()
        # Explanations by (kind, vector, decision), as JSON: a few thousand at most (the
        # vectors of a kind number 21,600 for persons), so unbounded.
        self._explained: dict[tuple[Any, ...], str] = {}

    # -- the builder's entry point -------------------------------------------------

    def link(self, session: Session, changed: Sequence[Changed]) -> int:
        """Relink the records that changed in this transaction; returns how many were linked."""
        if not changed:
            return 0
        db = session.connection()
        # A record inserted by this transaction has no keys or edges yet: nothing to delete.
        existing = [c.id for c in changed if not c.created]
        old_entities = {c.entity_id for c in changed if c.entity_id is not None}
        k, e = _KEYS.c, _EDGES.c
        several = assignment.begin(session)  # several builders: see assignment.catch_up
        for chunk in _chunks(existing):
            db.execute(delete(_KEYS).where(k.record_id.in_(chunk)))
            if not several:  # else deleted under the assignment lock (assignment.catch_up)
                db.execute(delete(_EDGES).where(or_(e.a_id.in_(chunk), e.b_id.in_(chunk))))
        live: dict[int, _Live] = {}
        keys: dict[int, set[str]] = {}
        for c in changed:
            rec = None
            if c.payload is not None:
                rec = link_record(c.dataset, c.ref, c.department, c.payload, c.updated_at)
            # Remembered under the new content hash: a candidate of a later batch is then
            # not read back and rebuilt (if this transaction rolls back, the hash differs
            # from the stored one and the record is read again).
            self._cache.put(c.id, c.content_hash, rec)
            if rec is None:
                continue
            live[c.id] = _Live(c.id, c.ref, c.entity_id, rec)
            keys[c.id] = block_keys(rec)
        # Candidates first, then the batch's keys: the holders read back are then only the
        # records of earlier batches (the batch's own are known here).
        candidates = self._candidates(db, keys)
        rows = [(k, i) for i, ks in keys.items() for k in ks]
        if rows:
            _insert_keys(db, rows)
        decisions = self._decisions(session, [lv.ref for lv in live.values()])
        # A reviewer's decision holds whether or not the pair still shares a blocking key.
        self._add_decided(db, live, decisions, candidates)
        known = self._load(db, {i for ids_ in candidates.values() for i in ids_} - set(live))
        known.update(live)
        edges = self._compare(live, candidates, known, decisions)
        # -- several builders (exchange.registry.assignment): on PostgreSQL, take the
        # assignment lock and score what concurrent builders committed since the reads above.
        caught = assignment.catch_up(
            self, session, changed, live, keys, candidates, known, decisions, edges, old_entities
        )
        edges, known, old_entities = caught.edges, caught.known, caught.old_entities
        # -- end of the several-builders hook
        if edges:
            db.execute(_insert_edges(db), edges)
        seeds = set(live) | {e["a_id"] for e in edges} | {e["b_id"] for e in edges}
        withdrawn = [c.id for c in changed if c.id not in live and c.entity_id is not None]
        if withdrawn:  # a withdrawn (or no longer linkable) record leaves its entity
            _set_entities(db, [(i, None) for i in withdrawn])
        # Every seed is in memory with the entity it had in this transaction: a changed
        # record as registry.apply read it, a candidate as _load read it.
        entity_of = {rid: known[rid].entity_id for rid in seeds}
        self._recluster(session, seeds, old_entities, known, entity_of)
        return len(live)

    # -- reviewers -----------------------------------------------------------------

    def decide(
        self,
        session: Session,
        a_ref: str,
        b_ref: str,
        decision: str,
        *,
        by: str,
        reason: str | None = None,
    ) -> list[str]:
        """Record a reviewer's decision on a pair and recompute its entities; returns their ids."""
        if decision not in (CONFIRM, REJECT):
            raise ValueError(f"decision must be {CONFIRM!r} or {REJECT!r}")
        assignment.acquire(session)  # several builders: decided in one place (PostgreSQL)
        a, b = self._live_by_ref(session, a_ref), self._live_by_ref(session, b_ref)
        if a.record.kind != b.record.kind:
            raise NotFoundError(f"{a_ref} and {b_ref} are not the same kind of entity")
        first, second = _ref_pair(a.ref, b.ref)
        found = session.get(LinkDecision, (first, second))
        if found is None:
            session.add(
                LinkDecision(
                    a_ref=first, b_ref=second, decision=decision, decided_by=by, reason=reason
                )
            )
        else:
            found.decision, found.decided_by, found.reason = decision, by, reason
            found.decided_at = utcnow()
        model = self.models[a.record.kind]
        given = verdict(a.record, b.record, model)
        lo, hi = _pair(a.id, b.id)
        session.execute(delete(LinkEdge).where(LinkEdge.a_id == lo, LinkEdge.b_id == hi))
        session.execute(
            _insert_edges(session.connection()),
            [self._edge(lo, hi, a.record, b.record, model, given, decision, by)],
        )
        known = {a.id: a, b.id: b}
        old = {e for e in (a.entity_id, b.entity_id) if e is not None}
        self._recluster(session, {a.id, b.id}, old, known, {a.id: a.entity_id, b.id: b.entity_id})
        session.flush()
        ids = session.scalars(
            select(SourceRecord.entity_id).where(SourceRecord.id.in_([a.id, b.id]))
        ).all()
        return sorted({i for i in ids if i is not None})

    def split(self, session: Session, entity_id: str, refs: Sequence[str], *, by: str) -> list[str]:
        """Take ``refs`` out of an entity: every pair across the cut is rejected."""
        members = self._members(session.connection(), {entity_id})
        if not members:
            raise NotFoundError(f"no entity {entity_id!r}")
        by_ref = {lv.ref: lv for lv in self._load(session.connection(), set(members)).values()}
        unknown = [r for r in refs if r not in by_ref]
        if unknown:
            raise NotFoundError(f"not members of {entity_id}: {', '.join(unknown)}")
        cut = set(refs)
        if cut == set(by_ref):
            raise ValueError("a split must leave at least one record in the entity")
        # Every pair across the cut is rejected, as the in-memory linker does: otherwise a
        # later record linking both sides would join them again.
        for ref in sorted(cut):
            for other in sorted(set(by_ref) - cut):
                self.decide(session, ref, other, REJECT, by=by, reason="split")
        ids = self._entities_of(session.connection(), {lv.id for lv in by_ref.values()})
        return sorted({eid for eid in ids.values() if eid is not None})

    # -- internals -----------------------------------------------------------------

    def _compare(
        self,
        live: dict[int, _Live],
        candidates: dict[int, set[int]],
        known: dict[int, _Live],
        decisions: dict[tuple[str, str], str],
    ) -> list[dict[str, Any]]:
        edges: list[dict[str, Any]] = []
        done: set[tuple[int, int]] = set()
        for rid in sorted(live):
            mine = live[rid]
            model = self.models[mine.record.kind]
            for other_id in sorted(candidates.get(rid, ())):
                other = known.get(other_id)
                if other is None or other_id == rid or other.record.kind != mine.record.kind:
                    continue
                pair = _pair(rid, other_id)
                if pair in done:
                    continue
                done.add(pair)
                decision = decisions.get(_ref_pair(mine.ref, other.ref))
                decided = pair_status(mine.record, other.record, model, decision)
                if decided is None:
                    continue
                status, found = decided
                a, b = (mine, other) if pair[0] == rid else (other, mine)
                edges.append(self._edge(*pair, a.record, b.record, model, found, status, None))
        return edges

    def _edge(
        self,
        a_id: int,
        b_id: int,
        a: LinkRecord,
        b: LinkRecord,
        model: Model,
        found: Verdict,
        status: str,
        by: str | None,
    ) -> dict[str, Any]:
        return {
            "a_id": a_id,
            "b_id": b_id,
            "status": status,
            "weight": round(found.weight, 6),
            "deterministic": found.deterministic,
            "explanation": self._explanation(a, b, model, found),
            "decided_by": by,
            "updated_at": utcnow(),
        }

    def _explanation(self, a: LinkRecord, b: LinkRecord, model: Model, found: Verdict) -> str:
        """The stored explanation of a decided pair, as JSON. It depends on the pair only
        through its comparison vector, so it is made once a vector and decision."""
        if found.vector is None:
            return json.dumps(explain(a, b, model, found).to_dict())
        key = (model.kind, found.vector, found.kind, found.deterministic, found.reason)
        made = self._explained.get(key)
        if made is None:
            made = self._explained[key] = json.dumps(explain(a, b, model, found).to_dict())
        return made

    def _candidates(self, db: Connection, keys: dict[int, set[str]]) -> dict[int, set[int]]:
        """Records sharing a key with each changed record (itself excluded): the stored
        holders of its keys and the other changed records with one of them."""
        wanted = sorted({k for ks in keys.values() for k in ks})
        holders: dict[str, set[int]] = defaultdict(set)
        for rid, ks in keys.items():
            for key in ks:
                holders[key].add(rid)
        sql = f"SELECT key, record_id FROM {_KEYS.name} WHERE key IN ({{values}})"
        for key, rid in _rows_in(db, sql, wanted):
            holders[key].add(rid)
        crowded = sorted(k for k, ids in holders.items() if len(ids) > MAX_BLOCK)
        for key in crowded:
            log.warning(
                "blocking key %s is shared by %d records (over %d): not used to find candidates",
                key.split(":", 1)[0] + ":...",  # the rule's letter only: keys hold personal data
                len(holders[key]),
                MAX_BLOCK,
            )
            del holders[key]
        return {
            rid: set().union(*(holders.get(k, ()) for k in ks)) - {rid} for rid, ks in keys.items()
        }

    def _load(self, db: Connection, ids: set[int]) -> dict[int, _Live]:
        """Live, linkable records by id, their link records cached by content hash."""
        found: dict[int, _Live] = {}
        cache = self._cache
        t = _RECORDS.c
        missing: dict[int, tuple[str, str | None]] = {}  # id: (content hash, entity)
        sql = (
            f"SELECT id, content_hash, entity_id FROM {_RECORDS.name}"
            " WHERE id IN ({values}) AND NOT deleted"
        )
        for rid, content_hash, entity_id in _rows_in(db, sql, sorted(ids)):
            cached = cache.get(rid, content_hash)
            if cached is MISSING:
                missing[rid] = (content_hash, entity_id)
            elif isinstance(cached, LinkRecord):
                found[rid] = _Live(rid, cached.ref, entity_id, cached)
        # Only these are read whole; a cached record is only read back to check its hash.
        for chunk in _chunks(sorted(missing)):
            for r in db.execute(
                select(t.id, t.dataset, t.department, t.source_id, t.payload, t.updated_at).where(
                    t.id.in_(chunk)
                )
            ):
                ref = record_ref(r.dataset, r.department, r.source_id)
                rec = link_record(r.dataset, ref, r.department, r.payload, r.updated_at)
                content_hash, entity_id = missing[r.id]
                cache.put(r.id, content_hash, rec)
                if rec is not None:
                    found[r.id] = _Live(r.id, ref, entity_id, rec)
        return found

    @staticmethod
    def _add_decided(
        db: Connection,
        live: dict[int, _Live],
        decisions: dict[tuple[str, str], str],
        candidates: dict[int, set[int]],
    ) -> None:
        """Add to each changed record's candidates the records a reviewer decided it with."""
        by_ref = {lv.ref: rid for rid, lv in live.items()}
        others: dict[str, set[int]] = defaultdict(set)  # other ref -> changed record ids
        for a, b in decisions:
            for mine_ref, other_ref in ((a, b), (b, a)):
                if mine_ref in by_ref:
                    others[other_ref].add(by_ref[mine_ref])
        t = _RECORDS.c
        wanted = sorted(others)
        for chunk in _chunks(wanted):
            for rid, dataset, department, source_id in db.execute(
                select(t.id, t.dataset, t.department, t.source_id).where(
                    t.deleted.is_(False),
                    or_(*(
                        (t.dataset == d) & (t.department == dep) & (t.source_id == src)
                        for d, _, rest in (r.partition("/") for r in chunk)
                        for dep, _, src in (rest.partition("/"),)
                    )),
                )
            ):  # fmt: skip
                for mine in others[record_ref(dataset, department, source_id)]:
                    if rid != mine:
                        candidates.setdefault(mine, set()).add(rid)

    def _decisions(self, session: Session, refs: list[str]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for chunk in _chunks(sorted(refs)):
            for a, b, decision in session.execute(
                select(LinkDecision.a_ref, LinkDecision.b_ref, LinkDecision.decision).where(
                    or_(LinkDecision.a_ref.in_(chunk), LinkDecision.b_ref.in_(chunk))
                )
            ):
                found[(a, b)] = decision
        return found

    @staticmethod
    def _members(db: Connection, entity_ids: set[str]) -> dict[int, str]:
        members: dict[int, str] = {}
        sql = (
            f"SELECT id, entity_id FROM {_RECORDS.name}"
            " WHERE entity_id IN ({values}) AND NOT deleted"
        )
        for rid, eid in _rows_in(db, sql, sorted(entity_ids)):
            if eid is not None:
                members[rid] = eid
        return members

    def _recluster(
        self,
        session: Session,
        seeds: set[int],
        old_entities: set[str],
        known: dict[int, _Live],
        entity_of: dict[int, str | None],
    ) -> None:
        """Recompute the entities around ``seeds`` (and ``old_entities``), keeping ids stable.

        ``entity_of`` holds each seed's entity as of this transaction. The decision is
        :func:`exchange.registry.linkage.engine.partition`'s, on the records' refs, as the
        in-memory linker makes it.
        """
        session.flush()  # a reviewer's decision is an ORM object
        if not seeds and not old_entities:
            return
        db = session.connection()
        touched = old_entities | {e for e in entity_of.values() if e is not None}
        members = self._members(db, touched)
        records = set(members) | {s for s in seeds if s in known}
        stored = self._neighbourhood(db, records, touched, members)
        lives = self._lives(db, records, known)
        ref_of = {rid: lv.ref for rid, lv in lives.items()}
        by_ref = {ref: rid for rid, ref in ref_of.items()}
        edges = [
            Edge(ref_of[a], ref_of[b], status, weight, deterministic)
            for (a, b), (status, weight, deterministic) in stored.items()
            if a in ref_of and b in ref_of
        ]
        result: dict[int, str] = {}
        for kind in sorted({lv.record.kind for lv in lives.values()}):
            refs = {lv.ref for lv in lives.values() if lv.record.kind == kind}
            assigned = partition(
                refs,
                [e for e in edges if e.a in refs],
                {lv.ref: lv.record.identifier for lv in lives.values() if lv.ref in refs},
                {ref_of[rid]: eid for rid, eid in members.items() if rid in ref_of},
                lambda kind=kind: new_entity_id(kind),  # type: ignore[misc]
            )
            result.update({by_ref[ref]: eid for ref, eid in assigned.items()})
        now = utcnow()
        changes = [
            (rid, eid)
            for rid, eid in result.items()
            if (members.get(rid) or entity_of.get(rid)) != eid
        ]
        if changes:
            _set_entities(db, changes)
        new_ids = set(result.values())
        created = new_ids - touched
        if created:
            db.execute(
                insert(_ENTITIES),
                [
                    {"id": eid, "kind": "person" if eid[0] == "P" else "organisation",
                     "created_at": now, "updated_at": now}
                    for eid in sorted(created)
                ],
            )  # fmt: skip
        retired = touched - new_ids
        for chunk in _chunks(sorted(retired)):
            db.execute(delete(_ENTITIES).where(_ENTITIES.c.id.in_(chunk)))
        changed_entities = {eid for _, eid in changes} - created
        for chunk in _chunks(sorted(changed_entities)):
            db.execute(update(_ENTITIES).where(_ENTITIES.c.id.in_(chunk)).values(updated_at=now))

    def _neighbourhood(
        self, db: Connection, records: set[int], touched: set[str], members: dict[int, str]
    ) -> dict[tuple[int, int], tuple[str, float, bool]]:
        """The stored edges (status, weight, deterministic) among ``records``, after closing
        ``records`` (and ``touched``, ``members``, in place) over entities: a record with a
        link to one of them brings its whole entity (a link that a cannot-link cut may hold
        again once the record in the way changed)."""
        stored: dict[tuple[int, int], tuple[str, float, bool]] = {}
        frontier = set(records)
        while frontier:
            outside: set[int] = set()
            # The status is checked here, not in SQL: given both conditions, SQLite picks
            # the status index and reads every link of the registry per chunk.
            for side in ("a_id", "b_id"):
                sql = (
                    f"SELECT a_id, b_id, status, weight, deterministic FROM {_EDGES.name}"
                    f" WHERE {side} IN ({{values}})"
                )
                for a, b, status, weight, deterministic in _rows_in(db, sql, sorted(frontier)):
                    if status == "review":
                        continue
                    stored[(a, b)] = (status, weight, bool(deterministic))
                    if status in LINKED:
                        outside |= {a, b} - records
            if not outside:
                break
            reached = {
                eid for rid, eid in self._entities_of(db, outside).items() if eid is not None
            } - touched
            more = self._members(db, reached)
            touched |= reached
            members.update(more)
            frontier = (outside | set(more)) - records
            records |= frontier
        return {pair: found for pair, found in stored.items() if set(pair) <= records}

    @staticmethod
    def _entities_of(db: Connection, ids: set[int]) -> dict[int, str | None]:
        found: dict[int, str | None] = {}
        sql = f"SELECT id, entity_id FROM {_RECORDS.name} WHERE id IN ({{values}}) AND NOT deleted"
        for rid, eid in _rows_in(db, sql, sorted(ids)):
            found[rid] = eid
        return found

    def _lives(
        self, db: Connection, records: set[int], known: dict[int, _Live]
    ) -> dict[int, _Live]:
        """The linkable records among ``records``, from ``known`` or read (and cached)."""
        missing = {r for r in records if r not in known}
        found = self._load(db, missing) if missing else {}
        return {
            r: known[r] if r in known else found[r] for r in records if r in known or r in found
        }

    def _live_by_ref(self, session: Session, ref: str) -> _Live:
        dataset, _, rest = ref.partition("/")
        department, _, source_id = rest.partition("/")
        rid = session.scalar(
            select(SourceRecord.id).where(
                SourceRecord.dataset == dataset,
                SourceRecord.department == department,
                SourceRecord.source_id == source_id,
            )
        )
        found = self._load(session.connection(), {rid}) if rid is not None else {}
        if rid is None or rid not in found:
            raise NotFoundError(f"no live, linkable record {ref!r}")
        return found[rid]
