"""The linkage engine: the one set of rules that turns compared pairs into entities.

Whatever holds the records (the in-memory :class:`~exchange.registry.linkage.incremental.
IncrementalLinker`, or the registry's tables through
:class:`exchange.registry.entities.EntityResolver`), the same two functions decide:

* :func:`pair_status`: what is stored for a candidate pair, given a reviewer's
  earlier decision if there is one: ``link``, ``review``, ``confirmed``,
  ``rejected``, or nothing (a plain non-link);
* :func:`partition`: the entities of a neighbourhood of records, from its
  edges, with ids kept stable (:func:`~exchange.registry.linkage.clusters.assign_components`).

The partition is the connected components of the links, with two kinds of
pairs kept apart (cannot-link):

* pairs a reviewer rejected (a split rejects every pair across the cut);
* records with **different identifiers** of the same kind: two different
  valid identity numbers are two people, so no chain of probabilistic links
  (A links C, C links B) may put them in one entity. Only a reviewer's
  confirmed link joins groups holding different identifiers.

Links are taken strongest first (a reviewer's, then same-identifier links, then
by weight; ties by refs) and one that would break a constraint is dropped, so
the weakest links between two records that must stay apart are the ones cut.
The result depends only on the records, their edges and the reviewers'
decisions, never on arrival order or on the storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from exchange.registry.linkage.clusters import assign_components, constrained_components
from exchange.registry.linkage.features import LinkRecord
from exchange.registry.linkage.linker import Verdict, screen, verdict
from exchange.registry.linkage.model import LINK, NON_LINK, Model

CONFIRMED: Final = "confirmed"
REJECTED: Final = "rejected"
# Edge statuses that join two records into one entity.
JOINING: Final = frozenset({LINK, CONFIRMED})
_REVIEWER: Final = 1e12  # a reviewer's link is stronger than any evidence
_IDENTIFIER: Final = 1e9  # a same-identifier link is stronger than any weight


@dataclass(frozen=True, slots=True)
class Edge:
    """A stored pair: ``status`` is link, review, confirmed or rejected."""

    a: str
    b: str
    status: str
    weight: float
    deterministic: bool


def pair_status(
    record: LinkRecord, other: LinkRecord, model: Model, decision: str | None = None
) -> tuple[str, Verdict] | None:
    """The status to store for a candidate pair and its verdict, or None to store nothing.

    ``decision`` is a reviewer's earlier decision on the pair (``confirmed`` or
    ``rejected``): it overrides the model, and the pair is stored with its
    weight so that the explanation can still be shown.
    """
    found = screen(record, other, model)  # None: a plain non-link
    if decision is None:
        if found is None or found.kind == NON_LINK:
            return None
        return found.kind, found
    if found is None:
        found = verdict(record, other, model)
    return decision, found


def strength(edge: Edge) -> float:
    """How firmly an edge joins its records: a reviewer's link, then the identifier, then weight."""
    if edge.status == CONFIRMED:
        return _REVIEWER + edge.weight
    if edge.deterministic:
        return _IDENTIFIER + edge.weight
    return edge.weight


def components(
    refs: Iterable[str], edges: Iterable[Edge], identifiers: Mapping[str, str | None]
) -> list[list[str]]:
    """The entities of ``refs`` (each sorted, ordered by smallest ref), cannot-links kept.

    Only ``link`` and ``confirmed`` edges join; ``rejected`` edges keep their
    records apart; two groups holding different identifiers join only through
    a ``confirmed`` edge. Edges leaving ``refs`` are ignored.
    """
    joining = [e for e in edges if e.status in JOINING]
    return constrained_components(
        refs,
        [(e.a, e.b, strength(e)) for e in joining],
        [(e.a, e.b) for e in edges if e.status == REJECTED],
        labels=identifiers,
        forced={(min(e.a, e.b), max(e.a, e.b)) for e in joining if e.status == CONFIRMED},
    )


def partition(
    refs: Iterable[str],
    edges: Iterable[Edge],
    identifiers: Mapping[str, str | None],
    previous: Mapping[str, str],
    new_id: Callable[[], str],
) -> dict[str, str]:
    """The entity id of every record of a neighbourhood after its edges changed.

    ``refs`` must hold every member of every old entity it touches;
    ``previous`` maps the records that had an entity to its id. Ids follow
    :func:`~exchange.registry.linkage.clusters.assign_components`: unchanged
    membership keeps its id, a merge keeps the larger entity's, a split leaves it
    with the larger part.
    """
    return assign_components(previous, components(refs, edges, identifiers), new_id)
