"""Golden records: one value per field for an entity, chosen among its linked records.

Each field has a survivorship rule: an ordered list of criteria that narrow
the records offering a value (missing and empty values never survive):

* ``most_trusted``: the records of the most trusted department (lowest rank);
* ``most_recent``: the most recently updated records;
* ``most_common``: the value most records give.

Criteria are applied in order until one value is left; if several remain,
the value of the smallest source ref wins (so the result never depends on
the order records are given in) and the rule says ``"tie: smallest ref"``.
Every chosen value says which criterion chose it (``"agreed"`` if every
source gave the same value) and which record it came from (of several
records giving it, the most trusted, then the most recent).

The defaults (:data:`DEFAULT_RULES`): identity fields (names, dates,
sex, nationality, identifiers) trust the department that registers them
first, then take the latest; contact and location fields (phone,
residence or registered address, status) take the latest report first,
because people move and change numbers, then the most trusted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from exchange.registry.linkage.features import ORGANISATION, PERSON, LinkRecord

MOST_TRUSTED: Final = "most_trusted"
MOST_RECENT: Final = "most_recent"
MOST_COMMON: Final = "most_common"
AGREED: Final = "agreed"  # every source that has the field gives the same value
TIE: Final = "tie: smallest ref"
CRITERIA: Final = frozenset({MOST_TRUSTED, MOST_RECENT, MOST_COMMON})

Rule = tuple[str, ...]
IDENTITY: Final[Rule] = (MOST_TRUSTED, MOST_RECENT)
CONTACT: Final[Rule] = (MOST_RECENT, MOST_TRUSTED)
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

# A payload given with its ref, e.g. ("person/health/H-1", {"family_name": "张", ...}).
Payload = tuple[str, Mapping[str, Any]]
Source = tuple[LinkRecord | Payload, int, datetime | None]

_RECORD_FIELDS: Final = (
    "identifier", "family_name", "given_name", "full_name", "birth_date", "sex",
    "phone", "division_code", "representative",
)  # fmt: skip
_EPOCH: Final = datetime.min


def trust_ranks(departments_most_trusted_first: Sequence[str]) -> dict[str, int]:
    """Ranks for a trust order: the first department gets 1, the next 2, ..."""
    return {name: rank for rank, name in enumerate(departments_most_trusted_first, start=1)}


def _values(record: LinkRecord | Payload) -> tuple[str, dict[str, Any]]:
    if isinstance(record, LinkRecord):
        values = {f: getattr(record, f) for f in _RECORD_FIELDS}
        return record.ref, values
    ref, payload = record
    return ref, dict(payload)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _narrow(
    offers: list[tuple[Any, str, int, datetime]], criterion: str
) -> list[tuple[Any, str, int, datetime]]:
    if criterion == MOST_TRUSTED:
        best_rank = min(o[2] for o in offers)
        return [o for o in offers if o[2] == best_rank]
    if criterion == MOST_RECENT:
        latest = max(o[3] for o in offers)
        return [o for o in offers if o[3] == latest]
    if criterion == MOST_COMMON:
        tally = Counter(repr(o[0]) for o in offers)
        top = max(tally.values())
        return [o for o in offers if tally[repr(o[0])] == top]
    raise ValueError(f"unknown survivorship criterion {criterion!r}; use one of {sorted(CRITERIA)}")


def _naive(moment: datetime | None) -> datetime:
    """Comparable timestamps: aware ones in UTC without tzinfo, missing ones the oldest."""
    if moment is None:
        return _EPOCH
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def golden_record(
    records: Sequence[Source],
    rules: Mapping[str, Rule] | None = None,
    *,
    kind: str = PERSON,
) -> dict[str, dict[str, Any]]:
    """The golden record of one entity: ``{field: {"value", "source", "rule"}}``.

    ``records`` are ``(record, trust rank, updated_at)`` where the record is a
    :class:`LinkRecord` or a ``(ref, payload)`` pair and rank 1 is the most
    trusted department. ``rules`` override :data:`DEFAULT_RULES` of ``kind``
    field by field. The result is JSON-serialisable (dates as ISO strings).
    """
    chosen_rules = {**DEFAULT_RULES.get(kind, {}), **(rules or {})}
    offers: dict[str, list[tuple[Any, str, int, datetime]]] = {}
    for record, rank, updated_at in records:
        ref, values = _values(record)
        moment = _naive(updated_at or getattr(record, "updated_at", None))
        for name, value in values.items():
            if _present(value):
                offers.setdefault(name, []).append((value, ref, rank, moment))
    golden: dict[str, dict[str, Any]] = {}
    for name in sorted(offers):
        remaining = offers[name]
        rule = AGREED
        for criterion in chosen_rules.get(name, DEFAULT_RULE):
            if len({repr(o[0]) for o in remaining}) == 1:
                break
            remaining = _narrow(remaining, criterion)
            rule = criterion
        if len({repr(o[0]) for o in remaining}) > 1:
            rule = TIE
            first = min(remaining, key=lambda o: o[1])
        else:  # one value, maybe from several records: cite the best of them
            first = min(remaining, key=lambda o: (o[2], -(o[3] - _EPOCH).total_seconds(), o[1]))
        value, ref = first[0], first[1]
        golden[name] = {"value": _jsonable(value), "source": ref, "rule": rule}
    return golden
