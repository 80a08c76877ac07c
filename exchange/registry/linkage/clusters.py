"""Entities as clusters of linked records, with ids that stay put.

An entity is a connected component of the link graph (records as nodes, links
as edges). When records arrive, change or go, only the components around them
are recomputed, and :func:`assign` gives the recomputed components their ids
so that an entity whose membership did not change keeps its id, a merge keeps
the id of the entity that brought the most records, and a split leaves the id
with the largest part. Batch linkage tools that renumber every cluster on
every run make every downstream reference churn; this does not.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence


class _Sets:
    """Union-find over string refs, with path halving."""

    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # the smaller root wins, so the result does not depend on the edges' order
            self.parent[max(ra, rb)] = min(ra, rb)


def components(records: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of ``records`` under ``edges`` (edges leaving ``records`` ignored).

    Each component is sorted; components are ordered by their smallest ref.
    """
    sets = _Sets(records)
    for a, b in edges:
        if a in sets.parent and b in sets.parent:
            sets.union(a, b)
    groups: dict[str, list[str]] = defaultdict(list)
    for ref in sets.parent:
        groups[sets.find(ref)].append(ref)
    return sorted((sorted(group) for group in groups.values()), key=lambda g: g[0])


def assign_components(
    members: Mapping[str, str], parts: Sequence[Sequence[str]], new_id: Callable[[], str]
) -> dict[str, str]:
    """Entity ids for components (each sorted, ordered by smallest ref); see :func:`assign`."""
    # For each old entity, its members in each component.
    spread: dict[str, Counter[int]] = defaultdict(Counter)
    smallest: dict[tuple[str, int], str] = {}
    for index, part in enumerate(parts):
        for ref in part:
            old = members.get(ref)
            if old is None:
                continue
            spread[old][index] += 1
            key = (old, index)
            if key not in smallest or ref < smallest[key]:
                smallest[key] = ref
    # An old id can only stay with its largest part (ties: the part with the smallest ref).
    claims: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for old, counts in spread.items():
        best = min(counts, key=lambda i: (-counts[i], smallest[(old, i)]))
        claims[best].append((counts[best], old))
    result: dict[str, str] = {}
    for index, part in enumerate(parts):
        candidates = claims.get(index)
        # a merge keeps the id that brought the most members (ties: the smallest id)
        entity = min(candidates, key=lambda c: (-c[0], c[1]))[1] if candidates else new_id()
        for ref in part:
            result[ref] = entity
    return result


def assign(
    members: Mapping[str, str],
    edges: Iterable[tuple[str, str]],
    records: Iterable[str],
    new_id: Callable[[], str],
) -> dict[str, str]:
    """The entity id of every record of a neighbourhood, after its links changed.

    ``members`` maps each record that already had an entity to that entity's
    id (new records are absent); ``edges`` are the current links among
    ``records``; ``records`` must hold every member of every old entity it
    touches (otherwise a split cannot be told from an entity partly outside).
    The rules:

    * a component whose members are exactly an old entity's keeps its id;
    * a merge keeps the id of the old entity that contributed the most members
      (ties: the smallest id); the other ids are retired;
    * a split leaves the id with the largest part (ties: the part holding the
      smallest ref); the other parts get ``new_id()``, called in the order of
      the parts' smallest refs, so the result is deterministic.

    No two components get the same id (as long as ``new_id`` never repeats
    itself or an old id).
    """
    refs = set(records)
    return assign_components(members, components(refs, edges), new_id)


def constrained_components(
    records: Iterable[str],
    edges: Iterable[tuple[str, str, float]],
    cannot_link: Iterable[tuple[str, str]],
    labels: Mapping[str, str | None] | None = None,
    forced: Collection[tuple[str, str]] = (),
) -> list[list[str]]:
    """Components when some pairs must stay apart (a reviewer rejected them or split them).

    Edges are taken strongest first (``(a, b, strength)``; ties by refs) and
    one that would join a pair that cannot link is dropped, so the result
    cuts the weakest links between such a pair. With ``labels`` (a record's
    identifier, or None), two groups holding different labels join only
    through an edge listed in ``forced`` (as ``(a, b)`` with ``a < b``: a
    reviewer's link). Without constraints it equals :func:`components`.
    """
    sets = _Sets(records)
    apart: dict[str, set[str]] = defaultdict(set)
    for a, b in cannot_link:
        apart[a].add(b)
        apart[b].add(a)
    held: dict[str, set[str]] = {ref: {ref} for ref in sets.parent}
    given = labels or {}
    marks: dict[str, frozenset[str]] = {
        ref: frozenset({label}) if (label := given.get(ref)) else frozenset() for ref in sets.parent
    }
    ordered = sorted(
        (e for e in edges if e[0] in sets.parent and e[1] in sets.parent),
        key=lambda e: (-e[2], min(e[0], e[1]), max(e[0], e[1])),
    )
    for a, b, _ in ordered:
        ra, rb = sets.find(a), sets.find(b)
        if ra == rb:
            continue
        small, large = sorted((held[ra], held[rb]), key=len)
        if any(apart[ref] & large for ref in small):
            continue
        la, lb = marks[ra], marks[rb]
        if not (la <= lb or lb <= la) and (min(a, b), max(a, b)) not in forced:
            continue  # different labels: only a forced edge joins them
        sets.union(ra, rb)
        root = sets.find(ra)
        gone = rb if root == ra else ra
        held[root] |= held.pop(gone)
        marks[root] = la | lb
        del marks[gone]
    groups: dict[str, list[str]] = defaultdict(list)
    for ref in sets.parent:
        groups[sets.find(ref)].append(ref)
    return sorted((sorted(group) for group in groups.values()), key=lambda g: g[0])
