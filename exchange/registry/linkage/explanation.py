"""Explanations: why a pair of records linked, went to review, or did not link.

The registry stores one with every link and every review-queue entry, so a
caseworker or an auditor can see which fields agreed, how much each counted,
and which rule decided. An explanation holds level names and weights, never
the compared values themselves: it may be kept and shown where the records'
personal data may not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Evidence:
    """One field's part in a decision."""

    field: str
    level: str  # the comparison level, e.g. "homophone"
    relationship: str  # what the level means, in words
    weight: float  # log2(m/u); 0 for a missing value
    m: float | None  # None when the value is missing on a side
    u: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "level": self.level,
            "relationship": self.relationship,
            "weight": round(self.weight, 3),
            "m": None if self.m is None else round(self.m, 6),
            "u": None if self.u is None else round(self.u, 6),
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """The evidence of a pair, its total weight, the thresholds and the decision taken.

    ``deterministic`` is true when an identifier rule, not the weight, decided;
    ``reason`` says which rule (e.g. ``"same identifier"``, ``"identifier
    conflict"``, ``"confirmed by a reviewer"``).
    """

    kind: str
    fields: tuple[Evidence, ...]
    total: float
    decision: str
    link: float
    review: float
    deterministic: bool = False
    reason: str | None = None

    def decided(self, decision: str, *, deterministic: bool, reason: str | None) -> Explanation:
        """The same evidence with the decision a rule took."""
        return replace(self, decision=decision, deterministic=deterministic, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (plain dicts, lists, strings and numbers)."""
        return {
            "kind": self.kind,
            "decision": self.decision,
            "deterministic": self.deterministic,
            "reason": self.reason,
            "total_weight": round(self.total, 3),
            "thresholds": {"link": self.link, "review": self.review},
            "fields": [e.to_dict() for e in self.fields],
        }

    def summary(self) -> str:
        """One line, e.g. ``link 23.4 = given_name exact +6.1, birth_date swapped +9.0, ...``."""
        parts = ", ".join(
            f"{e.field} {e.level} {e.weight:+.1f}" for e in self.fields if e.level != "null"
        )
        rule = f" ({self.reason})" if self.reason else ""
        return f"{self.decision}{rule} {self.total:.1f} = {parts}"
