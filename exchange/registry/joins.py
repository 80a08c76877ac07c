"""How each record of an answer joined its entity: by identifier, by a reviewer, or by probability.

A caseworker who looks a person up by an identity number sees every record of
the person's entity; each must say how it came to be there, because a record
joined by a probabilistic link is evidence, not fact. For each member record
the registry's link edges give a path from the records the question was about
(the **anchors**: those holding the identifier asked for, or for an entity view
those holding the entity's identifier); a record's join is the weakest link of
its strongest path:

* ``identifier``: every link on the path is the same identifier (or the record
  is an anchor);
* ``reviewer``: a reviewer's confirmed link is on the path (who and when);
* ``probabilistic``: a model's link is on the path: its weight and the
  model's probability that the pair is one person.

A grant's ``linked_by`` row constraint (:mod:`exchange.access.policy`) uses
this to show a dataset's records only when they joined by identifier.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from exchange.core.models import LinkEdge, SourceRecord
from exchange.registry.linkage.engine import CONFIRMED, JOINING

IDENTIFIER: Final = "identifier"
REVIEWER: Final = "reviewer"
PROBABILISTIC: Final = "probabilistic"
HOWS: Final = (IDENTIFIER, REVIEWER, PROBABILISTIC)
_RANK: Final = {IDENTIFIER: 3, REVIEWER: 2, PROBABILISTIC: 1}
_CHUNK: Final = 900
_EDGES = cast(Table, LinkEdge.__table__)
# The joining edges leaving some records (the primary key (a_id, b_id) serves it).
_LINKS = select(
    _EDGES.c.a_id,
    _EDGES.c.b_id,
    _EDGES.c.status,
    _EDGES.c.weight,
    _EDGES.c.deterministic,
    _EDGES.c.decided_by,
    _EDGES.c.updated_at,
).where(_EDGES.c.a_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class Join:
    """How one record joined its entity (``via``: the record id it joined through)."""

    how: str
    weight: float | None = None
    probability: float | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    via: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"how": self.how}
        if self.how == PROBABILISTIC:
            out["weight"] = self.weight
            out["probability"] = self.probability
        if self.how == REVIEWER:
            out["decided_by"] = self.decided_by
            out["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        return out


@dataclass(frozen=True, slots=True)
class StoredLink:
    """A joining edge as read from ``link_edges``."""

    a: int
    b: int
    status: str
    weight: float
    deterministic: bool
    decided_by: str | None
    updated_at: datetime | None

    def join(self, prior: float, via: int) -> Join:
        if self.status == CONFIRMED:
            return Join(REVIEWER, self.weight, None, self.decided_by, self.updated_at, via)
        if self.deterministic:
            return Join(IDENTIFIER, via=via)
        return Join(PROBABILISTIC, self.weight, probability(self.weight, prior), via=via)


def probability(weight: float, prior: float) -> float:
    """The posterior probability of a match at ``weight`` (bits) for a model's prior."""
    prior = min(max(prior, 1e-9), 1 - 1e-9)
    log_odds = weight + math.log2(prior / (1 - prior))
    if log_odds > 60:
        return 1.0
    return round(1.0 / (1.0 + math.pow(2.0, -log_odds)), 6)


def _key(join: Join) -> tuple[int, float]:
    """Order of strength: identifier > reviewer > probabilistic, then by weight."""
    weight = join.weight if join.how == PROBABILISTIC and join.weight is not None else math.inf
    return (_RANK[join.how], weight)


def joins_of(
    members: Collection[int],
    links: Iterable[StoredLink],
    anchors: Collection[int],
    prior: float,
) -> dict[int, Join]:
    """The join of each member from ``anchors`` (the weakest link of its strongest path).

    A member no anchor reaches (or every member, without anchors) gets the join of its
    strongest own link: what joined it to the rest of the entity.
    """
    near: dict[int, list[tuple[int, StoredLink]]] = defaultdict(list)
    for link in links:
        if link.status in JOINING and link.a in members and link.b in members:
            near[link.a].append((link.b, link))
            near[link.b].append((link.a, link))
    found: dict[int, Join] = {}
    start = [a for a in anchors if a in members]
    heap: list[tuple[tuple[float, float], int, int]] = []
    best: dict[int, Join] = {}
    for a in start:
        best[a] = Join(IDENTIFIER)
        rank, weight = _key(best[a])
        heapq.heappush(heap, ((-rank, -weight), a, a))
    while heap:
        _, ref, _via = heapq.heappop(heap)
        if ref in found:
            continue
        found[ref] = best[ref]
        for other, link in near[ref]:
            if other in found:
                continue
            step = link.join(prior, ref)
            path = min(best[ref], step, key=_key)
            path = Join(
                path.how, path.weight, path.probability, path.decided_by, path.decided_at, ref
            )
            if other not in best or _key(path) > _key(best[other]):
                best[other] = path
                rank, weight = _key(path)
                heapq.heappush(heap, ((-rank, -weight), other, ref))
    for ref in members:
        if ref in found:
            continue
        own = [link.join(prior, other) for other, link in near[ref]]
        if own:
            found[ref] = max(own, key=_key)
    return found


def stored_links(session: Session, record_ids: Collection[int]) -> list[StoredLink]:
    """The joining edges among ``record_ids`` (Core rows: it runs on every lookup)."""
    ids = sorted(record_ids)
    wanted = set(ids)
    db = session.connection()
    out: list[StoredLink] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for a, b, status, weight, deterministic, by, at in db.execute(_LINKS, {"ids": chunk}):
            if status in JOINING and b in wanted:
                out.append(StoredLink(a, b, status, weight, bool(deterministic), by, at))
    return out


def record_joins(
    session: Session,
    entities: Mapping[int, str | None],
    anchors: Collection[int],
    prior_of: Callable[[str], float],
    kinds: Mapping[str, str],
) -> dict[int, Join]:
    """The join of every record of ``entities`` (record id -> entity id, None: in none).

    ``anchors`` are the records the question named; ``prior_of(kind)`` the active
    model's prior (asked only for an entity with members not named by the question);
    ``kinds`` each entity's kind. A record in no entity has no join. An entity whose
    members are all anchors needs no link read: each joined by identifier.
    """
    by_entity: dict[str, set[int]] = defaultdict(set)
    for rid, eid in entities.items():
        if eid is not None:
            by_entity[eid].add(rid)
    named = set(anchors)
    out: dict[int, Join] = {}
    rest: dict[str, set[int]] = {}
    for eid, refs in by_entity.items():
        if refs <= named:
            out.update({rid: Join(IDENTIFIER) for rid in refs})
        else:
            rest[eid] = refs
    if not rest:
        return out
    links = stored_links(session, [r for refs in rest.values() for r in refs])
    priors: dict[str, float] = {}
    for eid, refs in rest.items():
        kind = kinds.get(eid, "person")
        if kind not in priors:
            priors[kind] = prior_of(kind)
        mine = [link for link in links if link.a in refs]
        out.update(joins_of(refs, mine, [a for a in named if a in refs], priors[kind]))
    return out


def principal_anchors(keyed: Iterable[tuple[int, str | None]]) -> set[int]:
    """The records holding an entity's identifier, from ``(record id, lookup key)`` pairs:
    if a reviewer joined records of two identifiers, the one most records hold (ties: the
    one of the smallest record id), so that the others say a reviewer joined them."""
    holders: dict[str, set[int]] = defaultdict(set)
    for rid, key in keyed:
        if key:
            holders[key].add(rid)
    if not holders:
        return set()
    best = min(holders.values(), key=lambda ids: (-len(ids), min(ids)))
    return set(best)


def entity_joins(
    session: Session, entity_ids: Collection[str], prior_of: Callable[[str], float]
) -> dict[int, Join]:
    """The join of every live record of ``entity_ids``, from the records holding the
    entity's identifier (a lookup key): what an entity view or a search hit shows."""
    t = SourceRecord
    members: dict[int, str | None] = {}
    keyed: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    ids = sorted(entity_ids)
    for start in range(0, len(ids), _CHUNK):
        for rid, eid, key in session.execute(
            select(t.id, t.entity_id, t.lookup_key).where(
                t.entity_id.in_(ids[start : start + _CHUNK]), t.deleted.is_(False)
            )
        ):
            members[rid] = eid
            keyed[str(eid)].append((rid, key))
    anchors = {rid for pairs in keyed.values() for rid in principal_anchors(pairs)}
    kinds = {eid: ("person" if eid[:1] == "P" else "organisation") for eid in ids}
    return record_joins(session, members, anchors, prior_of, kinds)
