"""The access policy: what a caller may see of a row, from the grants in force.

Pure: no database, no clock. The rule (DESIGN.md, "Security model"):

* Deny by default. A grant *applies* to a request when it names the caller's
  department and role and the dataset, serves the stated purpose, is not
  revoked, and ``valid_from <= at < valid_until``.
* A row is visible if at least one applicable grant's row constraints admit
  it; its visible fields are the union over the grants that admit it, and
  ``full`` beats ``masked`` when two grants name the same field.
* No applicable grant: :func:`access` returns a :class:`Denial` with the reason.
* The disclosure rule (:mod:`exchange.access.disclosure`) holds in every answer: a
  masked field that the role's grants for the purpose, all together, would show
  against the rule is ``redacted`` (shown as ``***``), whatever the catalogue let in.
* :func:`project` returns a row's visible fields, masked (in the style the
  standard declares) where the mode says so, or ``None`` for a hidden row. A field
  no grant names is never returned (blind indexes ``<field>_bidx`` are not fields
  of a standard, so no grant can name them).

Row constraints (all of a grant's constraints must hold):

* ``division_prefix``: the row's administrative division code (the standard's
  ``cn.division_code`` field) starts with the value, e.g. ``"3301"``;
* ``department``: the row was published by this department.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

from exchange.access import disclosure
from exchange.access.disclosure import StandardOf
from exchange.access.masking import REDACT, MaskStyle, Tokenizer, mask


class Mode(StrEnum):
    FULL = "full"
    MASKED = "masked"
    # Never in a grant: what the policy makes of a masked field that breaks the disclosure
    # rule (exchange.access.disclosure).
    REDACTED = "redacted"


DIVISION_PREFIX = "division_prefix"
DEPARTMENT = "department"
# ``linked_by``: only records that joined the answer's entity this way (see
# exchange.registry.joins): ``identifier`` (the identifier asked for, or the same identifier
# link by link), or ``reviewed`` (that, or a reviewer's confirmed link); never a record
# joined by a model's probability.
LINKED_BY = "linked_by"
LINKED_BY_VALUES: Final = {"identifier": frozenset({"identifier"}),
                           "reviewed": frozenset({"identifier", "reviewer"})}  # fmt: skip
CONSTRAINTS = frozenset({DIVISION_PREFIX, DEPARTMENT, LINKED_BY})


@dataclass(frozen=True, slots=True)
class RowFacts:
    """What row constraints look at: the publishing department, the division code, and
    how the record joined the entity of the answer (None where it is unknown or there is no
    entity: a ``linked_by`` constraint then admits the record only if it was asked for by
    its identifier, which the caller passes as ``identifier``)."""

    department: str
    division: str | None = None
    joined: str | None = None


@dataclass(frozen=True, slots=True)
class GrantRule:
    """A grant as the policy sees it (see :class:`exchange.core.models.Grant`)."""

    id: int
    department: str
    role: str
    dataset: str
    fields: Mapping[str, Mode]
    purposes: frozenset[str]
    constraints: Mapping[str, str] = field(default_factory=dict)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    revoked_at: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= at:
            return False
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until

    def applies(self, *, department: str, role: str, dataset: str, purpose: str) -> bool:
        return (
            self.department == department
            and self.role == role
            and self.dataset == dataset
            and purpose in self.purposes
        )

    def admits(self, row: RowFacts) -> bool:
        for name, value in self.constraints.items():
            if name == DIVISION_PREFIX:
                if row.division is None or not row.division.startswith(value):
                    return False
            elif name == DEPARTMENT:
                if row.department != value:
                    return False
            elif name == LINKED_BY:
                if row.joined not in LINKED_BY_VALUES.get(str(value), frozenset()):
                    return False
            else:  # an unknown constraint admits nothing: fail closed
                return False
        return True


@dataclass(frozen=True, slots=True)
class Denial:
    """No grant applies; ``reason`` says why, without naming other departments' grants."""

    dataset: str
    reason: str


@dataclass(frozen=True, slots=True)
class Access:
    """The grants that apply to one (department, role, dataset, purpose) at one time."""

    dataset: str
    grants: tuple[GrantRule, ...]
    redacted: frozenset[str] = frozenset()  # masked fields the disclosure rule redacts

    def fields_for(self, row: RowFacts) -> dict[str, Mode] | None:
        """The visible fields of ``row`` and their modes, or None if the row is hidden."""
        admitting = [g for g in self.grants if g.admits(row)]
        if not admitting:
            return None
        fields = union_fields(g.fields for g in admitting)
        for name in self.redacted:
            if fields.get(name) is Mode.MASKED:
                fields[name] = Mode.REDACTED
        return fields

    @property
    def possible_fields(self) -> dict[str, Mode]:
        """Fields some row may show (what a search may match on at most)."""
        return union_fields(g.fields for g in self.grants)

    @property
    def grant_ids(self) -> list[int]:
        return sorted(g.id for g in self.grants)


def union_fields(each: Iterable[Mapping[str, Mode]]) -> dict[str, Mode]:
    """Union of field grants; ``full`` beats ``masked``."""
    out: dict[str, Mode] = {}
    for fields in each:
        for name, mode in fields.items():
            if out.get(name) is not Mode.FULL:
                out[name] = Mode(mode)
    return out


def access(
    grants: Iterable[GrantRule],
    *,
    department: str,
    role: str,
    dataset: str,
    purpose: str,
    at: datetime,
    standard_of: StandardOf | None = None,
) -> Access | Denial:
    """The applicable grants, or a denial saying why there are none.

    The disclosure rule is applied over every unrevoked grant of the role for the
    purpose, of every dataset (``standard_of`` gives a dataset's standard)."""
    candidates = [g for g in grants if g.department == department and g.role == role]
    for_dataset = [g for g in candidates if g.dataset == dataset]
    if not for_dataset:
        return Denial(dataset, f"no grant gives {department}/{role} the dataset {dataset!r}")
    for_purpose = [g for g in for_dataset if purpose in g.purposes]
    if not for_purpose:
        return Denial(
            dataset,
            f"no grant gives {department}/{role} the dataset {dataset!r} "
            f"for the purpose {purpose!r}",
        )
    in_force = tuple(g for g in for_purpose if g.in_force(at))
    if not in_force:
        return Denial(
            dataset,
            f"the grants of {department}/{role} on {dataset!r} for {purpose!r} "
            "are revoked, expired or not yet valid",
        )
    for_rule = [
        g
        for g in candidates
        if purpose in g.purposes and (g.revoked_at is None or g.revoked_at > at)
    ]
    redacted = _redacted(_rule_key(for_rule), standard_of)
    return Access(dataset, in_force, frozenset(f for d, f in redacted if d == dataset))


_RuleKey = tuple[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], ...]


def _rule_key(grants: Iterable[GrantRule]) -> _RuleKey:
    return tuple(
        sorted(
            (
                g.dataset,
                tuple(sorted((k, Mode(v).value) for k, v in g.fields.items())),
                tuple(sorted(g.constraints.items())),
            )
            for g in grants
        )
    )


@dataclass(frozen=True)
class _KeyedGrant:
    dataset: str
    fields: Mapping[str, str]
    constraints: Mapping[str, str]


@lru_cache(maxsize=1024)
def _redacted(key: _RuleKey, standard_of: StandardOf | None) -> frozenset[tuple[str, str]]:
    return disclosure.redacted((_KeyedGrant(d, dict(f), dict(c)) for d, f, c in key), standard_of)


def project(
    payload: Mapping[str, Any],
    visible: Mapping[str, Mode] | None,
    styles: Mapping[str, MaskStyle],
    *,
    domains: Mapping[str, str] | None = None,
    tokenizer: Tokenizer | None = None,
) -> dict[str, Any] | None:
    """The fields of ``payload`` that ``visible`` allows, masked where its mode says so.

    ``None`` if the row is hidden (``visible`` is None). Fields of the payload
    that ``visible`` does not name are left out, whatever they are. A masked field is
    shown in its style (``styles``; a field without one is redacted); a ``token`` is made
    by ``tokenizer`` from the field's domain (``domains``, else its name).
    """
    if visible is None:
        return None
    out: dict[str, Any] = {}
    for name, mode in visible.items():
        if name not in payload:
            continue
        value = payload[name]
        if mode is Mode.FULL:
            out[name] = value
            continue
        style = styles.get(name, REDACT) if mode is Mode.MASKED else REDACT
        domain = (domains or {}).get(name, name)
        out[name] = mask(value, style, domain=domain, tokenizer=tokenizer)
    return out
