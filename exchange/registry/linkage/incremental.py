"""The incremental linker: entities kept consistent as records arrive, change and go.

In memory, for the benchmark and the tests, and as the reference the
database-backed registry builder follows. Adding a record costs time in
proportion to its candidates (records sharing a blocking key) and the
entities they belong to, never to the population:

1. the record's blocking keys give its candidates;
2. each candidate pair is decided (:func:`~exchange.registry.linkage.linker.screen`,
   which is :func:`~exchange.registry.linkage.linker.verdict` without the comparisons
   that cannot change a non-link), unless a reviewer already confirmed or
   rejected it; links become edges, uncertain pairs enter the review queue;
3. the entities touched (the record's old entity, and the entities of the
   records it links to) are recomputed as components of the link graph and
   given ids by :func:`~exchange.registry.linkage.clusters.assign`.

Without reviewer decisions, the partition into entities depends only on the
records held, not on the order they came in: every pair sharing a key is
compared exactly once, and the comparators are symmetric.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from exchange.registry.linkage.blocking import block_keys
from exchange.registry.linkage.engine import CONFIRMED as CONFIRMED_STATUS
from exchange.registry.linkage.engine import REJECTED as REJECTED_STATUS
from exchange.registry.linkage.engine import Edge, pair_status, partition
from exchange.registry.linkage.explanation import Explanation
from exchange.registry.linkage.features import LinkRecord
from exchange.registry.linkage.linker import Verdict, explain, verdict
from exchange.registry.linkage.model import LINK, NON_LINK, REVIEW, Model

CONFIRMED = "confirmed by a reviewer"
REJECTED = "rejected by a reviewer"
Pair = tuple[str, str]


def pair(a: str, b: str) -> Pair:
    """A pair of refs in canonical (sorted) order."""
    return (a, b) if a < b else (b, a)


def _counter_ids(prefix: str = "E") -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):08d}"


class IncrementalLinker:
    """Links records into entities one record at a time.

    ``models`` is one model, or a mapping kind -> model. ``new_id`` makes
    entity ids (default ``E00000001``, ...). ``max_block`` skips blocking keys
    held by more records than that (a guard against a placeholder value such
    as a shared switchboard number; it makes the result depend on arrival
    order, so it is off by default).
    """

    def __init__(
        self,
        models: Model | Mapping[str, Model],
        *,
        new_id: Callable[[], str] | None = None,
        max_block: int | None = None,
    ) -> None:
        self.models = {models.kind: models} if isinstance(models, Model) else dict(models)
        self._new_id = new_id or _counter_ids()
        self.max_block = max_block
        self.compared = 0  # pairs decided so far, for the benchmark
        self._records: dict[str, LinkRecord] = {}
        self._keys: dict[str, set[str]] = {}
        self._blocks: dict[str, set[str]] = defaultdict(set)
        self._links: dict[str, dict[str, Verdict]] = defaultdict(dict)
        self._review: dict[Pair, Verdict] = {}
        self._queued: dict[str, set[str]] = defaultdict(set)  # review pairs by ref
        # reviewer decisions, both directions: ref -> refs
        self._confirmed: dict[str, set[str]] = defaultdict(set)
        self._rejected: dict[str, set[str]] = defaultdict(set)
        self._entity: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}

    # ---------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, ref: object) -> bool:
        return ref in self._records

    def record(self, ref: str) -> LinkRecord:
        return self._records[ref]

    def entity_of(self, ref: str) -> str:
        """The entity id of a held record (KeyError if the record is not held)."""
        return self._entity[ref]

    def members(self, entity: str) -> frozenset[str]:
        return frozenset(self._members.get(entity, ()))

    def entities(self) -> dict[str, frozenset[str]]:
        return {entity: frozenset(refs) for entity, refs in self._members.items()}

    def links(self) -> dict[Pair, Verdict]:
        """Every link edge (model links, identifier links and confirmed pairs)."""
        return {pair(a, b): v for a, near in self._links.items() for b, v in near.items() if a < b}

    def review_queue(self, *, all_pairs: bool = False) -> dict[Pair, Verdict]:
        """Uncertain pairs waiting for a reviewer, in pair order.

        Only pairs whose records are in different entities need a reviewer;
        ``all_pairs`` also gives the uncertain pairs already joined through
        other links (they matter again if the entity is split).
        """
        return {
            key: found
            for key, found in sorted(self._review.items())
            if all_pairs or self._entity[key[0]] != self._entity[key[1]]
        }

    def explain(self, a: str, b: str) -> Explanation:
        """The explanation of the decision on two held records (as linked, queued or not)."""
        ra, rb = self._records[a], self._records[b]
        model = self.models[ra.kind]
        given = self._links.get(a, {}).get(b) or self._review.get(pair(a, b))
        if b in self._rejected.get(a, ()):
            given = Verdict(NON_LINK, verdict(ra, rb, model).weight, True, REJECTED)
        return explain(ra, rb, model, given)

    def candidates(self, record: LinkRecord) -> set[str]:
        """Held records of the same kind sharing a blocking key with ``record``."""
        found: set[str] = set()
        for key in block_keys(record):
            block = self._blocks.get(key)
            if block and (self.max_block is None or len(block) <= self.max_block):
                found |= block
        found.discard(record.ref)
        return {ref for ref in found if self._records[ref].kind == record.kind}

    # ---------------------------------------------------------------- changes

    def add(self, record: LinkRecord) -> dict[str, str]:
        """Add (or replace) a record; returns ``{ref: entity id}`` of records whose id changed."""
        touched: set[str] = set()
        if record.ref in self._records:
            touched |= self._detach(record.ref)
        self._records[record.ref] = record
        keys = block_keys(record)
        self._keys[record.ref] = keys
        model = self.models[record.kind]
        # a reviewer's link holds whether or not the pair still shares a blocking key
        joined = {r for r in self._confirmed.get(record.ref, ()) if r in self._records}
        for other in sorted(self.candidates(record) | joined):
            if other in self._rejected.get(record.ref, ()):
                continue
            self.compared += 1
            decision = CONFIRMED_STATUS if other in self._confirmed.get(record.ref, ()) else None
            found = pair_status(record, self._records[other], model, decision)
            if found is None:
                continue
            status, decided = found
            if status == CONFIRMED_STATUS:
                decided = Verdict(LINK, decided.weight, True, CONFIRMED)
            if decided.kind == LINK:
                self._links[record.ref][other] = self._links[other][record.ref] = decided
                touched |= self._entity_members(other)
            elif decided.kind == REVIEW:
                self._queue(record.ref, other, decided)
        for key in keys:
            self._blocks[key].add(record.ref)
        touched.add(record.ref)
        return self._recluster(touched)

    update = add

    def remove(self, ref: str) -> dict[str, str]:
        """Remove a record; its entity may split. Returns the changed ids of the rest."""
        touched = self._detach(ref)
        entity = self._entity.pop(ref)
        self._members[entity].discard(ref)
        if not self._members[entity]:
            del self._members[entity]
        del self._records[ref]
        touched.discard(ref)
        for decided in (self._confirmed, self._rejected):
            for other in decided.pop(ref, set()):
                decided[other].discard(ref)
        return self._recluster(touched)

    def confirm(self, a: str, b: str) -> dict[str, str]:
        """A reviewer's link: ``a`` and ``b`` are the same entity, whatever the model says."""
        self._decided(a, b, confirmed=True)
        model = self.models[self._records[a].kind]
        weight = verdict(self._records[a], self._records[b], model).weight
        self._links[a][b] = self._links[b][a] = Verdict(LINK, weight, True, CONFIRMED)
        return self._recluster(self._entity_members(a) | self._entity_members(b))

    def reject(self, a: str, b: str) -> dict[str, str]:
        """A reviewer's non-link: ``a`` and ``b`` are never in one entity again."""
        self._decided(a, b, confirmed=False)
        return self._recluster(self._entity_members(a) | self._entity_members(b))

    def split(self, entity: str, refs: Iterable[str]) -> dict[str, str]:
        """Separate ``refs`` from the rest of ``entity``: every pair across is rejected."""
        part = set(refs)
        members = self._members[entity]
        if not part or not part < members:
            raise ValueError("split needs some, but not all, of the entity's members")
        for a in part:
            for b in members - part:
                self._decided(a, b, confirmed=False)
        return self._recluster(set(members))

    # ---------------------------------------------------------------- internals

    def _decided(self, a: str, b: str, *, confirmed: bool) -> None:
        """Record a reviewer's decision on a pair; a rejection also drops the pair's link."""
        for x, y in ((a, b), (b, a)):
            (self._confirmed if confirmed else self._rejected)[x].add(y)
            (self._rejected if confirmed else self._confirmed)[x].discard(y)
            if not confirmed:
                self._links[x].pop(y, None)
        self._unqueue(a, b)

    def _queue(self, a: str, b: str, found: Verdict) -> None:
        self._review[pair(a, b)] = found
        self._queued[a].add(b)
        self._queued[b].add(a)

    def _unqueue(self, a: str, b: str) -> None:
        if self._review.pop(pair(a, b), None) is not None:
            self._queued[a].discard(b)
            self._queued[b].discard(a)

    def _entity_members(self, ref: str) -> set[str]:
        entity = self._entity.get(ref)
        return set(self._members[entity]) if entity is not None else {ref}

    def _detach(self, ref: str) -> set[str]:
        """Drop a record's edges, queue entries and keys; returns its entity's members."""
        touched = self._entity_members(ref)
        for other in self._links.pop(ref, {}):
            self._links[other].pop(ref, None)
        for other in list(self._queued.get(ref, ())):
            self._unqueue(ref, other)
        self._queued.pop(ref, None)
        for key in self._keys.pop(ref, set()):
            block = self._blocks[key]
            block.discard(ref)
            if not block:
                del self._blocks[key]
        return touched

    def _neighbourhood(self, touched: set[str]) -> set[str]:
        """``touched`` closed over entities: with every member of each entity it meets, and
        the entities of records that one of them has a link with (a link cut by a cannot-link
        may hold again once the record in the way changes)."""
        done: set[str] = set()
        frontier = set(touched)
        while frontier:
            done |= frontier
            reached: set[str] = set()
            for ref in frontier:
                reached |= self._entity_members(ref)
                for other in self._links.get(ref, {}):
                    reached |= self._entity_members(other)
            frontier = reached - done
        return done

    def _recluster(self, touched: set[str]) -> dict[str, str]:
        touched = self._neighbourhood({ref for ref in touched if ref in self._records})
        members = {ref: self._entity[ref] for ref in touched if ref in self._entity}
        edges = [
            Edge(
                a, b, CONFIRMED_STATUS if v.reason == CONFIRMED else LINK, v.weight, v.deterministic
            )
            for a in touched
            for b, v in self._links.get(a, {}).items()
            if a < b and b in touched
        ]
        edges += [
            Edge(a, b, REJECTED_STATUS, 0.0, True)
            for a in touched
            for b in self._rejected.get(a, ())
            if a < b and b in touched
        ]
        identifiers = {ref: self._records[ref].identifier for ref in touched}
        assigned = partition(touched, edges, identifiers, members, self._new_id)
        for old in set(members.values()):
            self._members.pop(old, None)
        changed: dict[str, str] = {}
        for ref, entity in assigned.items():
            if members.get(ref) != entity:
                changed[ref] = entity
            self._entity[ref] = entity
            self._members.setdefault(entity, set()).add(ref)
        return changed
