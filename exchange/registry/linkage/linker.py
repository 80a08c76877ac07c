"""Pair decisions: link, review or non-link, by identifier rules first and the model second.

* The same identifier on both sides always links (deterministically). If the
  rest of the records conflicts badly (a different birth or registration date
  *and* a different name) the link says so (reason "same identifier, other
  fields conflict"): one department has probably recorded a wrong name or date,
  and the golden record flags the conflict.
* Two different identifiers never link automatically (cannot-link): the
  connectors reject identity numbers and credit codes whose check character is
  wrong, so two different valid identifiers are almost always two people. A
  pair that would link on its other fields alone (the weight without the
  identifier's disagreement), and is not a possible twin or sibling (below),
  goes to review, reason "different identifiers", so that a reviewer can still
  join a mistyped but valid number; any other pair does not link. The entities
  keep the rule too: no entity holds two identifiers unless a reviewer joined
  them (:mod:`~exchange.registry.linkage.engine`).
* An identifier missing on either side leaves the decision to the model.
* With the model's ``sibling_guard`` (on in the shipped person model), a pair
  the weight would link but that has the same family name and birth date, a
  different given name and no shared identifier goes to review instead, as a
  "possible twin or sibling": siblings share a household's address and phone
  too, which the model, counting each field as independent evidence, takes
  for one person. A typo in one record's given name looks the same; a
  reviewer tells them apart (benchmark: precision 0.9986 -> 0.9997, recall
  0.9968 -> 0.9919).

:func:`screen` is :func:`verdict` for the many candidate pairs that are
plainly two people: it stops comparing fields once the weight cannot reach
the review threshold any more, and says only that the pair does not link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from exchange.registry.linkage.comparators import FIELDS, compare
from exchange.registry.linkage.explanation import Explanation
from exchange.registry.linkage.features import LinkRecord
from exchange.registry.linkage.model import LINK, NON_LINK, REVIEW, Model

SAME_IDENTIFIER: Final = "same identifier"
IDENTIFIER_CONFLICT: Final = "same identifier, other fields conflict"
DIFFERENT_IDENTIFIERS: Final = "different identifiers"
POSSIBLE_SIBLING: Final = "possible twin or sibling"
# (field, level) pairs that together make a same-identifier pair a conflict, per kind:
# the date differs outright and so does one of the names.
_CONFLICT_DATE: Final = {"person": "birth_date", "organisation": "registration_date"}
# screen gives up on a pair only if its weight is below the review threshold by more than
# this: far more than the rounding of a sum of a few weights taken in another order.
_MARGIN: Final = 1e-6
_CONFLICT_NAMES: Final = {
    "person": ("family_name", "given_name"),
    "organisation": ("legal_name",),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision without its explanation: what the linker keeps for every compared pair."""

    kind: str
    weight: float
    deterministic: bool
    reason: str | None = None
    # The comparison vector it was decided on, so that its explanation need not compare the
    # pair again; not part of the decision.
    vector: tuple[int, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision on a pair: ``kind`` is ``link``, ``review`` or ``non-link``."""

    kind: str
    weight: float
    deterministic: bool
    explanation: Explanation


# Where each field sits in its kind's comparison vector, and its level names.
_FIELD_AT: Final = {
    kind: {f.name: (i, f.levels) for i, f in enumerate(fields)} for kind, fields in FIELDS.items()
}


def _level(kind: str, vector: tuple[int, ...], name: str) -> str | None:
    """The level of field ``name`` in a vector (None if the kind has no such field)."""
    found = _FIELD_AT[kind].get(name)
    return None if found is None else found[1][vector[found[0]]]


def _conflict(kind: str, vector: tuple[int, ...]) -> bool:
    if _level(kind, vector, _CONFLICT_DATE[kind]) != "different":
        return False
    return any(_level(kind, vector, name) == "different" for name in _CONFLICT_NAMES[kind])


# Given-name levels that siblings' names show: another name, or (Chinese) one character of
# two changed, as siblings often share a generation character (张伟 / 张玮 is homophone, but
# 张伟明 / 张伟华 is one_char). Not ``typo``, a Latin name one letter off (THOMAS / THOMSA),
# the commonest error of one person's records, nor ``homophone``.
_SIBLING_GIVEN: Final = frozenset({"one_char", "similar", "different"})


_OTHER_DATE: Final = frozenset({"close", "different"})
_TWIN_DATE: Final = frozenset({"exact", "swapped", "typo"})
_TWIN_FAMILY: Final = frozenset({"exact", "homophone", "typo"})


def _possible_sibling(kind: str, vector: tuple[int, ...]) -> bool:
    """A relative rather than the person, in any naming culture: a twin or sibling (same
    birth date and family name, a given name a sibling could bear), or another member of
    the household (given name and birth date both other: what links them is the address,
    phone and family name a household shares, which the model counts as independent)."""
    if kind != "person":
        return False
    given = _level(kind, vector, "given_name")
    if given not in _SIBLING_GIVEN:
        return False
    date = _level(kind, vector, "birth_date")
    if date in _OTHER_DATE:
        return True
    # A twin's record with a date or family-name typo looks like this too.
    return date in _TWIN_DATE and _level(kind, vector, "family_name") in _TWIN_FAMILY


def verdict(a: LinkRecord, b: LinkRecord, model: Model) -> Verdict:
    """The decision on a pair, cheaply (no explanation); what :func:`decide` decides."""
    return _verdict(a, b, model, compare(a, b))


def screen(a: LinkRecord, b: LinkRecord, model: Model) -> Verdict | None:
    """:func:`verdict`, or None where that verdict is certainly ``non-link``.

    Fields are compared cheapest first, and the comparison stops once the weight
    reached plus the most the fields left could add is below the review
    threshold; the pair's weight is then not known. Wherever it returns a
    verdict, that verdict is :func:`verdict`'s, weight included. A pair sharing
    an identifier is never given up on (the identifier rule decides it).
    """
    if a.identifier is not None and a.identifier == b.identifier:
        return verdict(a, b, model)
    floor = model.review
    if _different_identifiers(a, b):
        # such a pair is reviewed only if its weight without the identifier reaches the link
        # threshold, and otherwise never links: nothing below that floor can change it
        floor = model.link + _identifier_disagreement(model)
    vector = model.bounded_vector(a, b, floor - _MARGIN)
    return None if vector is None else _verdict(a, b, model, vector)


def _different_identifiers(a: LinkRecord, b: LinkRecord) -> bool:
    return a.identifier is not None and b.identifier is not None and a.identifier != b.identifier


def _identifier_disagreement(model: Model) -> float:
    """The weight of two different identifiers in ``model`` (0 if it has no such level)."""
    return model.identifier_disagreement


def _verdict(a: LinkRecord, b: LinkRecord, model: Model, vector: tuple[int, ...]) -> Verdict:
    weight = model.weight(vector)
    if a.identifier is not None and a.identifier == b.identifier:
        reason = IDENTIFIER_CONFLICT if _conflict(a.kind, vector) else SAME_IDENTIFIER
        return Verdict(LINK, weight, True, reason, vector)
    if _different_identifiers(a, b):
        # twins and siblings with their own numbers are the common case: not for review
        without = weight - _identifier_disagreement(model)
        if without >= model.link and not _possible_sibling(a.kind, vector):
            return Verdict(REVIEW, weight, True, DIFFERENT_IDENTIFIERS, vector)
        return Verdict(NON_LINK, weight, True, DIFFERENT_IDENTIFIERS, vector)
    decision = model.decision(weight)
    if decision == LINK and model.sibling_guard and _possible_sibling(a.kind, vector):
        return Verdict(REVIEW, weight, True, POSSIBLE_SIBLING, vector)
    return Verdict(decision, weight, False, None, vector)


def explain(
    a: LinkRecord, b: LinkRecord, model: Model, given: Verdict | None = None
) -> Explanation:
    """The explanation of a pair's decision (of ``given`` if a rule or a reviewer decided)."""
    explanation = model.explain(a, b, given.vector if given is not None else None)
    decided = given or verdict(a, b, model)
    return explanation.decided(
        decided.kind, deterministic=decided.deterministic, reason=decided.reason
    )


def decide(a: LinkRecord, b: LinkRecord, model: Model) -> Decision:
    """Link, review or non-link for two records of the same kind, with the explanation."""
    decided = verdict(a, b, model)
    return Decision(
        kind=decided.kind,
        weight=decided.weight,
        deterministic=decided.deterministic,
        explanation=explain(a, b, model, decided),
    )
