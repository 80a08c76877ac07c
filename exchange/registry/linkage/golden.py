"""Golden records: one value per field for an entity, chosen among its linked records.

Each field has a survivorship rule: an ordered list of criteria that narrow
the records offering a value (missing and empty values never survive):

* ``authoritative``: the records of the department authoritative for the field
  (the first of the field's ordered departments that offers a value; a field
  without authorities, or none of whose authorities offers a value, is not
  narrowed);
* ``most_trusted``: the records of the most trusted department (lowest rank);
* ``most_recent``: the most recently updated records;
* ``most_common``: the value most records give.

Criteria are applied in order until one value is left; if several remain,
the value of the smallest source ref wins (so the result never depends on
the order records are given in) and the rule says ``"tie: smallest ref"``.
Every chosen value says which criterion chose it (``"agreed"`` if every
source gave the same value) and which record it came from (of several
records giving it, the authoritative, then the most trusted, then the most
recent).

The defaults (:data:`DEFAULT_RULES`, :data:`DEFAULT_AUTHORITIES`): identity
fields (names, dates, sex, nationality, identifiers) come from the
department authoritative for them (the household registry, for a person's
names, birth date, sex and identity number), then the most trusted, then the
latest; contact and location fields (phone, residence or registered address,
status) take the latest report first, because people move and change numbers,
then the most trusted.

**Conflicts.** A field whose members give different values carries
``"conflict"``: the refs of the records grouped by the value they give, never
the values (a golden record's conflicts may be logged and shown to operators
who may not see the values). **Identifiers are never mixed**: if members carry
different identifiers (two blind indexes, two credit codes), the identifier is
not chosen at all: its value and source are ``None``, its rule is
:data:`IDENTIFIER_CONFLICT`, and :func:`conflict_flags` says ``"identifier"``.
Two different valid identifiers are almost always two people joined by
probability or by a reviewer; the golden record must not present one of them
as the entity's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, NamedTuple

from exchange.registry.linkage.features import ORGANISATION, PERSON, LinkRecord

log = logging.getLogger(__name__)

AUTHORITATIVE: Final = "authoritative"
MOST_TRUSTED: Final = "most_trusted"
MOST_RECENT: Final = "most_recent"
MOST_COMMON: Final = "most_common"
AGREED: Final = "agreed"  # every source that has the field gives the same value
TIE: Final = "tie: smallest ref"
IDENTIFIER_CONFLICT: Final = "conflict: different identifiers"
CRITERIA: Final = frozenset({AUTHORITATIVE, MOST_TRUSTED, MOST_RECENT, MOST_COMMON})
IDENTIFIER_FLAG: Final = "identifier"

Rule = tuple[str, ...]
IDENTITY: Final[Rule] = (AUTHORITATIVE, MOST_TRUSTED, MOST_RECENT)
CONTACT: Final[Rule] = (MOST_RECENT, AUTHORITATIVE, MOST_TRUSTED)
DEFAULT_RULES: Final[dict[str, dict[str, Rule]]] = {
    PERSON: {
        "phone": CONTACT,
        "residence_division_code": CONTACT,
        "division_code": CONTACT,
    },
    ORGANISATION: {
        "registered_address": CONTACT,
        "registered_division_code": CONTACT,
        "division_code": CONTACT,
        "status": CONTACT,
        "legal_representative_name": CONTACT,
        "representative": CONTACT,
        "industry_code": CONTACT,
    },
}
DEFAULT_RULE: Final[Rule] = IDENTITY  # any field without its own rule

HOUSEHOLD_REGISTRY: Final = "household_registry"  # the department code of the examples
# Field -> departments authoritative for it, first first. Settings add to these field by
# field (``registry.authoritative_departments``); an empty list removes a default.
_IDENTITY_FIELDS: Final = (
    "family_name", "given_name", "full_name", "birth_date", "sex",
    "resident_id", "resident_id_bidx", "identifier",
)  # fmt: skip
DEFAULT_AUTHORITIES: Final[Mapping[str, tuple[str, ...]]] = dict.fromkeys(
    _IDENTITY_FIELDS, (HOUSEHOLD_REGISTRY,)
)

# The fields that name the entity itself: members that differ here are two identities.
# ``identifier`` is a LinkRecord's; ``resident_id`` is the gateway's shown (token) value.
IDENTIFIER_FIELDS: Final = frozenset({"identifier", "resident_id_bidx", "resident_id", "uscc"})

# A payload given with its ref, e.g. ("person/health/H-1", {"family_name": "张", ...}).
Payload = tuple[str, Mapping[str, Any]]
Source = tuple[LinkRecord | Payload, int, datetime | None]

_RECORD_FIELDS: Final = (
    "identifier", "family_name", "given_name", "full_name", "birth_date", "sex",
    "phone", "division_code", "representative",
)  # fmt: skip
_EPOCH: Final = datetime.min
_UNLISTED: Final = 1_000_000  # an authority position after every listed department


class _Offer(NamedTuple):
    value: Any
    ref: str
    rank: int
    moment: datetime
    department: str


def trust_ranks(departments_most_trusted_first: Sequence[str]) -> dict[str, int]:
    """Ranks for a trust order: the first department gets 1, the next 2, ..."""
    return {name: rank for rank, name in enumerate(departments_most_trusted_first, start=1)}


def authorities(
    configured: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """:data:`DEFAULT_AUTHORITIES` with ``configured`` fields replacing theirs."""
    merged = dict(DEFAULT_AUTHORITIES)
    merged.update({name: tuple(deps) for name, deps in (configured or {}).items()})
    return merged


def _department_of(ref: str) -> str:
    """The department of a ref written by :func:`exchange.registry.records.record_ref`
    (``dataset/department/source id``); ``""`` for any other ref."""
    parts = ref.split("/", 2)
    return parts[1] if len(parts) == 3 else ""


def _values(record: LinkRecord | Payload) -> tuple[str, str, dict[str, Any]]:
    if isinstance(record, LinkRecord):
        values = {f: getattr(record, f) for f in _RECORD_FIELDS}
        return record.ref, record.department, values
    ref, payload = record
    return ref, _department_of(ref), dict(payload)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _same(value: Any) -> str:
    """What two values must share to be one value (identifiers: case and spaces aside)."""
    if isinstance(value, str):
        return value.strip().upper()
    return repr(_jsonable(value))


def _narrow(offers: list[_Offer], criterion: str, authority: Sequence[str]) -> list[_Offer]:
    if criterion == AUTHORITATIVE:
        position = {dep: i for i, dep in enumerate(authority)}
        best = min(position.get(o.department, _UNLISTED) for o in offers)
        return [o for o in offers if position.get(o.department, _UNLISTED) == best]
    if criterion == MOST_TRUSTED:
        best_rank = min(o.rank for o in offers)
        return [o for o in offers if o.rank == best_rank]
    if criterion == MOST_RECENT:
        latest = max(o.moment for o in offers)
        return [o for o in offers if o.moment == latest]
    if criterion == MOST_COMMON:
        tally = Counter(_same(o.value) for o in offers)
        top = max(tally.values())
        return [o for o in offers if tally[_same(o.value)] == top]
    raise ValueError(f"unknown survivorship criterion {criterion!r}; use one of {sorted(CRITERIA)}")


def _naive(moment: datetime | None) -> datetime:
    """Comparable timestamps: aware ones in UTC without tzinfo, missing ones the oldest."""
    if moment is None:
        return _EPOCH
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _groups(offers: list[_Offer]) -> list[list[str]]:
    """The refs of ``offers`` grouped by the value they give (refs only, sorted)."""
    by_value: dict[str, set[str]] = {}
    for o in offers:
        by_value.setdefault(_same(o.value), set()).add(o.ref)
    return sorted(sorted(refs) for refs in by_value.values())


def golden_record(
    records: Sequence[Source],
    rules: Mapping[str, Rule] | None = None,
    *,
    kind: str = PERSON,
    authority: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The golden record of one entity: ``{field: {"value", "source", "rule"}}``, and
    ``"conflict"`` (refs grouped by value) where members disagree.

    ``records`` are ``(record, trust rank, updated_at)`` where the record is a
    :class:`LinkRecord` or a ``(ref, payload)`` pair and rank 1 is the most
    trusted department. ``rules`` override :data:`DEFAULT_RULES` of ``kind``
    field by field; ``authority`` maps fields to their authoritative departments
    (default :data:`DEFAULT_AUTHORITIES`; see :func:`authorities` to extend it).
    Different identifiers are never chosen between (see the module's docstring).
    The result is JSON-serialisable (dates as ISO strings).
    """
    chosen_rules = {**DEFAULT_RULES.get(kind, {}), **(rules or {})}
    authority = DEFAULT_AUTHORITIES if authority is None else authority
    offers: dict[str, list[_Offer]] = {}
    for record, rank, updated_at in records:
        ref, department, values = _values(record)
        moment = _naive(updated_at or getattr(record, "updated_at", None))
        for name, value in values.items():
            if _present(value):
                offers.setdefault(name, []).append(_Offer(value, ref, rank, moment, department))
    golden: dict[str, dict[str, Any]] = {}
    for name in sorted(offers):
        golden[name] = _choose(name, offers[name], chosen_rules.get(name, DEFAULT_RULE), authority)
    return golden


def _choose(
    name: str, offers: list[_Offer], rule: Rule, authority: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    groups = _groups(offers)
    if len(groups) > 1 and name in IDENTIFIER_FIELDS:
        log.info("golden record: %s differs among its records %s; none chosen", name, groups)
        return {"value": None, "source": None, "rule": IDENTIFIER_CONFLICT, "conflict": groups}
    remaining, chosen_by = offers, AGREED
    for criterion in rule:
        if len({_same(o.value) for o in remaining}) == 1:
            break
        remaining = _narrow(remaining, criterion, authority.get(name, ()))
        chosen_by = criterion
    if len({_same(o.value) for o in remaining}) > 1:
        chosen_by = TIE
        first = min(remaining, key=lambda o: o.ref)
    else:  # one value, maybe from several records: cite the best of them
        position = {dep: i for i, dep in enumerate(authority.get(name, ()))}
        first = min(
            remaining,
            key=lambda o: (
                position.get(o.department, _UNLISTED),
                o.rank,
                -(o.moment - _EPOCH).total_seconds(),
                o.ref,
            ),
        )
    chosen = {"value": _jsonable(first.value), "source": first.ref, "rule": chosen_by}
    if len(groups) > 1:
        chosen["conflict"] = groups
    return chosen


def conflicts(golden: Mapping[str, Mapping[str, Any]]) -> dict[str, list[list[str]]]:
    """The fields of a golden record whose members disagree: refs grouped by value."""
    return {name: list(v["conflict"]) for name, v in golden.items() if v.get("conflict")}


def conflict_flags(golden: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``["identifier"]`` when members carry different identifiers, else ``[]``."""
    differ = any(v.get("rule") == IDENTIFIER_CONFLICT for v in golden.values())
    return [IDENTIFIER_FLAG] if differ else []
