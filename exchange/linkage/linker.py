"""Pair decisions: link, review or non-link, by identifier rules first and the model second.

* The same identifier on both sides links (deterministically), unless the rest
  of the records conflicts badly (a different birth or registration date *and*
  a different name): then the pair goes to review as an "identifier conflict",
  because one department has probably recorded the wrong person's number.
* Two different identifiers are strong evidence against, but identifiers are
  sometimes mistyped: the model's ``identifier disagree`` level weighs it
  against the other fields.
* An identifier missing on either side leaves the decision to the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from exchange.linkage.comparators import compare, fields_of
from exchange.linkage.explanation import Explanation
from exchange.linkage.features import LinkRecord
from exchange.linkage.model import LINK, REVIEW, Model

SAME_IDENTIFIER: Final = "same identifier"
IDENTIFIER_CONFLICT: Final = "identifier conflict"
# (field, level) pairs that together make a same-identifier pair a conflict, per kind:
# the date differs outright and so does one of the names.
_CONFLICT_DATE: Final = {"person": "birth_date", "organisation": "registration_date"}
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


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision on a pair: ``kind`` is ``link``, ``review`` or ``non-link``."""

    kind: str
    weight: float
    deterministic: bool
    explanation: Explanation


def _conflict(kind: str, vector: tuple[int, ...]) -> bool:
    fields = fields_of(kind)
    levels = {f.name: f.levels[level] for f, level in zip(fields, vector, strict=True)}
    if levels.get(_CONFLICT_DATE[kind]) != "different":
        return False
    return any(levels.get(name) == "different" for name in _CONFLICT_NAMES[kind])


def verdict(a: LinkRecord, b: LinkRecord, model: Model) -> Verdict:
    """The decision on a pair, cheaply (no explanation); what :func:`decide` decides."""
    vector = compare(a, b)
    weight = model.weight(vector)
    if a.identifier is not None and a.identifier == b.identifier:
        if _conflict(a.kind, vector):
            return Verdict(REVIEW, weight, True, IDENTIFIER_CONFLICT)
        return Verdict(LINK, weight, True, SAME_IDENTIFIER)
    return Verdict(model.decision(weight), weight, False)


def explain(
    a: LinkRecord, b: LinkRecord, model: Model, given: Verdict | None = None
) -> Explanation:
    """The explanation of a pair's decision (of ``given`` if a rule or a reviewer decided)."""
    explanation = model.explain(a, b)
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
