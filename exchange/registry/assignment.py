"""Entity assignment decided in one place, when several builders share the partitions.

Builders in one consumer group (``RegistryBuilder(group_id=...)``) each apply their
own partitions' records in their own transaction. On PostgreSQL (READ COMMITTED)
two such transactions do not see each other's uncommitted rows, which breaks two
things if nothing else is done:

* **missed pairs**: records ``r1`` (builder A) and ``r2`` (builder B) sharing a
  blocking key, inserted concurrently, are each compared with the registry as
  committed before them, and never with each other;
* **lost updates**: both recompute the same entity from what they read, and the
  second to commit overwrites the first's assignment.

What every builder still does in parallel: verify, decode, upsert, features, its
own blocking keys, candidate retrieval and scoring (the costly part). What is
serialised is the part that must be decided in one place, under one
transaction-scoped advisory lock (:func:`acquire`, ``pg_advisory_xact_lock``),
taken once the speculative scoring is done:

1. the candidates of the transaction's records are read again
   (:func:`catch_up`): once the lock is held, every transaction that committed
   before it is visible to a fresh statement, so the holders of this batch's keys
   now include every record those transactions keyed. If no transaction ended
   since the batch began reading (:func:`begin` notes the snapshot,
   :func:`committed_between` compares it with one taken under the lock: one
   builder alone, or a quiet moment), what it read is already the registry as of
   the lock, and nothing is read again;
2. a pair whose inputs did not change since it was scored before the lock (same
   candidate, same link record, same reviewer decision) keeps its result; any
   other pair of the fresh candidates is scored now, and a pair scored before
   the lock that is no longer a candidate is dropped;
3. the stored pairs of the transaction's changed records are deleted (under the
   lock: this removes the pairs a concurrent builder committed against their
   previous versions) and the batch's pairs inserted;
4. the entities around the changed records are recomputed
   (``EntityResolver._recluster``), from the registry as of the lock.

So, in the order in which builders take the lock (the order in which they
commit: the lock is held to the commit), each transaction stores exactly the
pairs and entities a single builder applying the same batches in that order
would. A pair of records changed by two concurrent transactions is scored by the
later one only: the earlier cannot see the later's uncommitted keys, and
whatever the earlier stored against the later's old version is deleted by the
later in step 3. Records keep their linkage independent of the order batches
arrive in (the rebuild and kill-and-restart tests), so the registry is the one a
single builder makes (``tests/integration/test_builder_scaleout.py``).

The one wait left is a row lock: if a transaction holding the lock must move to
another entity a record that a concurrent transaction is updating (not
inserting) before its own turn, the two wait for each other; PostgreSQL breaks
the cycle within ``deadlock_timeout`` (1 s) by failing one of them, which the
builder applies again. A rebuild only inserts, and never meets it.

On SQLite a write transaction excludes every other writer: nothing runs
concurrently, and neither the lock nor the catch-up is needed (they are skipped
by dialect).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, delete, event, or_, select, text
from sqlalchemy.orm import Session

from exchange.core.models import LinkEdge, SourceRecord
from exchange.registry.records import Changed

if TYPE_CHECKING:  # entities imports this module: only its types are needed here
    from exchange.registry.entities import EntityResolver, _Live

log = logging.getLogger(__name__)

# The advisory lock's key (a bigint): the first 8 bytes of a digest of this module's name,
# so that no other advisory lock of the database takes it by chance.
LOCK_KEY = int.from_bytes(hashlib.sha256(__name__.encode()).digest()[:8], "big", signed=True)
_CHUNK = 900
_EDGES: Table = LinkEdge.__table__  # type: ignore[assignment]
_RECORDS: Table = SourceRecord.__table__  # type: ignore[assignment]


@dataclass
class LockWaits:
    """How long this process's transactions waited for, and held, the assignment lock."""

    taken: int = 0
    waited_s: float = 0.0
    longest_wait_s: float = 0.0
    held_s: float = 0.0  # from taking the lock to the end of the transaction
    catch_up_s: float = 0.0  # of which in the catch-up (the rest: pairs, entities, commit)
    caught_up: int = 0  # catch-ups that read the candidates again (another builder committed)

    def as_dict(self) -> dict[str, float]:
        return {
            "taken": self.taken,
            "waited_s": round(self.waited_s, 4),
            "longest_wait_s": round(self.longest_wait_s, 4),
            "held_s": round(self.held_s, 4),
            "catch_up_s": round(self.catch_up_s, 4),
            "caught_up": self.caught_up,
        }


_waits = LockWaits()
_waits_lock = threading.Lock()


def lock_waits() -> LockWaits:
    """A copy of this process's totals since it started (or since :func:`reset_waits`)."""
    with _waits_lock:
        return LockWaits(**vars(_waits))


def reset_waits() -> None:
    global _waits
    with _waits_lock:
        _waits = LockWaits()


def serialised(session: Session) -> bool:
    """Whether concurrent builders can write this database at once (PostgreSQL), so that
    entity assignment must be serialised; SQLite runs one write transaction at a time."""
    return session.get_bind().dialect.name == "postgresql"


def begin(session: Session) -> bool:
    """Start linking a batch: on PostgreSQL, note which transactions had committed (the
    snapshot) before the batch reads its candidates, so that :func:`catch_up` can tell
    whether any committed since; returns :func:`serialised`."""
    if not serialised(session):
        return False
    session.info["assignment_snapshot"] = _snapshot(session)
    return True


def _snapshot(session: Session) -> str:
    return str(session.execute(text("SELECT pg_current_snapshot()::text")).scalar_one())


def committed_between(before: str, after: str, own: int | None) -> bool:
    """Whether a transaction other than ``own`` ended between two snapshots
    (``pg_current_snapshot()`` as text, ``xmin:xmax:xip,...``): one running at ``before``
    that is not at ``after``, or one begun since that has ended. An aborted one counts
    too (the catch-up then merely finds nothing new)."""
    _, xmax0, xip0 = _parse(before)
    _, xmax1, xip1 = _parse(after)
    if any(x not in xip1 and x != own for x in xip0):
        return True
    # Every id below xmax1 was assigned; those from xmax0 on that are not running ended.
    running = {x for x in xip1 if x >= xmax0} | (
        {own} if own is not None and own >= xmax0 else set()
    )
    return xmax1 - xmax0 > len({x for x in running if x < xmax1})


def _parse(snapshot: str) -> tuple[int, int, set[int]]:
    xmin, xmax, xip = snapshot.split(":")
    return int(xmin), int(xmax), {int(x) for x in xip.split(",") if x}


def acquire(session: Session) -> None:
    """Take the assignment lock for the rest of the session's transaction (PostgreSQL; a
    no-op elsewhere). Taking it again in the same transaction returns at once."""
    if not serialised(session):
        return
    info = session.info
    if info.get("assignment_lock"):
        return
    started = time.perf_counter()
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    taken = time.perf_counter()
    waited = taken - started
    token = info["assignment_lock"] = object()

    def released(_session: Session, *_: Any) -> None:
        if info.get("assignment_lock") is not token:
            return  # the other listener of this lock already ran
        del info["assignment_lock"]
        held = time.perf_counter() - taken
        with _waits_lock:
            _waits.held_s += held
        log.debug("assignment lock held %.1f ms", held * 1000)

    # The lock ends with the transaction, whichever way it ends.
    event.listen(session, "after_commit", released, once=True)
    event.listen(session, "after_rollback", released, once=True)
    with _waits_lock:
        _waits.taken += 1
        _waits.waited_s += waited
        _waits.longest_wait_s = max(_waits.longest_wait_s, waited)
    if waited >= 1.0:
        log.info("waited %.2f s for the entity assignment lock", waited)
    else:
        log.debug("waited %.1f ms for the entity assignment lock", waited * 1000)


@dataclass
class CaughtUp:
    """What linkage continues with once the lock is held: the batch's pairs to store, and
    every record it read, with its entity as of the lock."""

    edges: list[dict[str, Any]]
    known: dict[int, _Live]
    old_entities: set[str]
    rescored: int = 0  # pairs scored under the lock (missed, or stale, before it)
    dropped: int = 0  # pairs scored before the lock that are no longer candidates


def catch_up(
    resolver: EntityResolver,
    session: Session,
    changed: Sequence[Changed],
    live: Mapping[int, _Live],
    keys: Mapping[int, set[str]],
    candidates: Mapping[int, set[int]],
    known: dict[int, _Live],
    decisions: Mapping[tuple[str, str], str],
    edges: list[dict[str, Any]],
    old_entities: set[str],
) -> CaughtUp:
    """Take the assignment lock and bring the batch's scoring up to the registry as of the
    lock (see the module's docstring); on SQLite, return what was scored unchanged.

    ``candidates``, ``known``, ``decisions`` and ``edges`` are what the batch read and
    scored before the lock (after :func:`begin`); the pairs returned are to be inserted
    by the caller, :func:`catch_up` having deleted the stored pairs of the changed records.
    """
    if not serialised(session):
        return CaughtUp(edges, known, old_entities)
    acquire(session)
    started = time.perf_counter()
    db = session.connection()
    # The batch's own records with their entity as of the lock: another builder may have
    # moved one (its previous version) since registry.apply read it.
    entity_now = _entities(db, [c.id for c in changed if not c.created])
    stale_entities = {e for e in entity_now.values() if e is not None}
    # What concurrent builders stored against the previous versions of this batch's records
    # is visible now: deleted with the rest of their pairs (see entities.link).
    _delete_pairs(db, [c.id for c in changed if not c.created])
    before = session.info.pop("assignment_snapshot", None)
    own = session.execute(text("SELECT pg_current_xact_id_if_assigned()::text")).scalar()
    if before is not None and not committed_between(
        before, _snapshot(session), None if own is None else int(own)
    ):
        # Nothing committed since the batch read its candidates: what it read is the registry
        # as of the lock (the one builder's case, or a quiet moment).
        refreshed = dict(known)
        for rid, lv in live.items():
            refreshed[rid] = _with_entity(lv, entity_now.get(rid, lv.entity_id))
        _timed(started)
        return CaughtUp(edges, refreshed, old_entities | stale_entities)
    fresh_candidates = resolver._candidates(db, dict(keys))
    fresh_decisions = resolver._decisions(session, [lv.ref for lv in live.values()])
    resolver._add_decided(db, dict(live), fresh_decisions, fresh_candidates)
    others = {i for ids in fresh_candidates.values() for i in ids} - set(live)
    fresh_known = resolver._load(db, others)
    for rid, lv in live.items():
        fresh_known[rid] = _with_entity(lv, entity_now.get(rid, lv.entity_id))

    def unchanged(rid: int, other: int) -> bool:
        """Whether the pair was scored before the lock on the inputs it has now."""
        if other not in candidates.get(rid, ()):
            return False
        before, now = known.get(other), fresh_known.get(other)
        if before is None or now is None:
            return before is None and now is None  # not linkable then, not linkable now
        if other not in live and before.record != now.record:
            return False
        pair = _ref_pair(live[rid].ref, now.ref)
        return decisions.get(pair) == fresh_decisions.get(pair)

    rescore: dict[int, set[int]] = {}
    keep: set[tuple[int, int]] = set()
    for rid, others_now in fresh_candidates.items():
        for other in others_now:
            if unchanged(rid, other):
                keep.add(_pair(rid, other))
            else:
                rescore.setdefault(rid, set()).add(other)
    kept = [e for e in edges if (e["a_id"], e["b_id"]) in keep]
    scored = resolver._compare(dict(live), rescore, fresh_known, fresh_decisions)
    # A rescored pair may also have been kept through the other side's candidates (two of
    # the batch's records): the fresh score wins.
    fresh_pairs = {(e["a_id"], e["b_id"]) for e in scored}
    result = [e for e in kept if (e["a_id"], e["b_id"]) not in fresh_pairs] + scored
    dropped = len(edges) - len(kept)
    rescored = sum(len(v) for v in rescore.values())
    _timed(started, full=True)
    if rescored or dropped:
        log.debug("assignment catch-up: %d pairs scored, %d dropped", rescored, dropped)
    return CaughtUp(result, fresh_known, old_entities | stale_entities, rescored, dropped)


def _timed(started: float, *, full: bool = False) -> None:
    with _waits_lock:
        _waits.catch_up_s += time.perf_counter() - started
        _waits.caught_up += full


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _ref_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _with_entity(lv: _Live, entity_id: str | None) -> _Live:
    return lv if lv.entity_id == entity_id else type(lv)(lv.id, lv.ref, entity_id, lv.record)


def _entities(db: Connection, ids: Sequence[int]) -> dict[int, str | None]:
    t = _RECORDS.c
    found: dict[int, str | None] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        for rid, eid in db.execute(select(t.id, t.entity_id).where(t.id.in_(chunk))):
            found[rid] = eid
    return found


def _delete_pairs(db: Connection, ids: Sequence[int]) -> None:
    e = _EDGES.c
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        db.execute(delete(_EDGES).where(or_(e.a_id.in_(chunk), e.b_id.in_(chunk))))
