"""The disclosure rule: what a role's grants for one purpose may show together.

Checked by the catalogue when a grant is made (:func:`breaches`; it refuses with
:class:`~exchange.core.errors.DisclosureRuleError`) and again by the policy when an
answer is built (:func:`redacted`: a masked field that breaks the rule is redacted).
Both look at every unrevoked grant of the role that serves the purpose, over every
dataset, whatever its validity dates and row constraints (all of them could apply
to one answer: a lookup returns the records of every dataset linked to a person).

**Identifiers.** A masked identifier shown by a style that shows some of its
characters (``keep_last:N``, ``keep_first:N``, ...), together with every field the role
sees, must leave at least :data:`MIN_CANDIDATES` (1,000,000) candidates for the
original. For a citizen identity number (``cn.resident_id``: 6 division digits, 8
birth-date digits, 3 sequence digits whose last is odd for men, and an ISO 7064
MOD 11-2 check character) the candidates are counted from what is known of each part:

* the division digits: those the mask shows, the digits of any division code field
  shown (``cn.division_code``, in full or as its style shows it; a ``token`` of a
  division, a date or a sex counts as shown in full, as they have few values) and the
  digits a ``division_prefix`` row constraint fixes; the count is the smallest number of
  codes of the shipped division list that agree on the known digits;
* the birth-date digits: those the mask shows and those of a birth-date field
  (vocabulary ``cpv:birthDate``) shown; the count is the smallest number of dates
  from 1900-01-01 to today that agree on them;
* the sequence digits: those not shown are free, the last only odd or even if the
  sex is shown;
* the check character, if shown, leaves of the free sequence digits only those that
  complete the check: the count used is the smallest, over every residue, of the
  combinations that give it (a lower bound whatever the other parts are).

The count is a lower bound over every possible record. An identifier whose
structure the rule does not model (any validator but ``cn.resident_id``) may be
shown masked only by a style that shows none of it. ``redact`` and ``token`` show
nothing of the identifier and always pass.

**Names.** A masked name never shows a part whole, and at most the first character
of a part of three or more characters: a field that holds one part of a name
(``cpv:familyName``, ``cpv:givenName``) may be masked ``initial_only``, ``redact`` or
``token``; a field that holds a whole name (``full_name``, whose parts are not
separated in Chinese) only ``redact`` or ``token``. So family name, given name and
full name shown masked never add up to more than each part's initial.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, lru_cache
from itertools import product
from typing import Any, Protocol

from exchange.access.masking import MaskKind, MaskStyle, Style, mask_kind, shown_positions, style_of
from exchange.core.errors import SchemaNotFoundError
from schemas.standards import FieldSpec, Standard, load_standard
from schemas.validators import division_codes

MIN_CANDIDATES = 1_000_000
RESIDENT_ID = "cn.resident_id"
EARLIEST_BIRTH = date(1900, 1, 1)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_SAMPLE_ID = "X" * 18
_SAMPLE_DATE = "1980-05-17"
_DATE_DIGITS = {0: 0, 1: 1, 2: 2, 3: 3, 5: 4, 6: 5, 8: 6, 9: 7}  # "YYYY-MM-DD" -> YYYYMMDD
_NAME_PARTS = frozenset({"cpv:familyName", "cpv:givenName"})
_PART_FIELDS = frozenset({"family_name", "given_name"})

StandardOf = Callable[[str], Standard]


class GrantLike(Protocol):
    """What the rule reads of a grant (a :class:`~exchange.access.policy.GrantRule`)."""

    @property
    def dataset(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, Any]: ...
    @property
    def constraints(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Breach:
    """A field a role's grants show masked that breaks the rule, and why."""

    dataset: str
    field: str
    code: str
    message: str


@dataclass
class Known:
    """What the role sees for a purpose of the parts of a citizen identity number."""

    id_positions: set[int] = field(default_factory=set)
    division: set[int] = field(default_factory=set)
    birth_date: set[int] = field(default_factory=set)
    sex: bool = False
    narrowed_by: set[str] = field(default_factory=set)


def is_birth_date(spec: FieldSpec) -> bool:
    return spec.vocabulary == "cpv:birthDate" or "birth" in spec.name


def is_sex(spec: FieldSpec) -> bool:
    return spec.vocabulary == "cpv:sex" or spec.name == "sex"


def is_name_part(spec: FieldSpec) -> bool:
    return spec.vocabulary in _NAME_PARTS or spec.name in _PART_FIELDS


def _shown(
    grants: Iterable[GrantLike], standard_of: StandardOf
) -> dict[str, tuple[Standard, dict[str, str], list[str]]]:
    """dataset -> (standard, field -> "full"/"masked" over all grants, division prefixes)."""
    out: dict[str, tuple[Standard, dict[str, str], list[str]]] = {}
    for grant in grants:
        if grant.dataset not in out:
            try:
                out[grant.dataset] = (standard_of(grant.dataset), {}, [])
            except (SchemaNotFoundError, KeyError):
                continue
        _, modes, prefixes = out[grant.dataset]
        for name, mode in grant.fields.items():
            mode = str(getattr(mode, "value", mode))
            if modes.get(name) != "full":
                modes[name] = mode
        prefix = grant.constraints.get("division_prefix")
        if prefix:
            prefixes.append(str(prefix))
    return out


def _spec(standard: Standard, name: str) -> FieldSpec | None:
    try:
        return standard.field(name)
    except KeyError:
        return None


def known_parts(grants: Iterable[GrantLike], standard_of: StandardOf | None = None) -> Known:
    """What every grant together shows of the parts of a citizen identity number."""
    standard_of = standard_of or load_standard
    known = Known()
    for dataset, (standard, modes, prefixes) in _shown(grants, standard_of).items():
        # A division_prefix constraint fixes the first digits of every row it admits.
        has_division = any(f.validator == "cn.division_code" for f in standard.fields)
        for name, mode in modes.items():
            spec = _spec(standard, name)
            if spec is None:
                continue
            style = style_of(spec)
            # A token of a division, a date or a sex has few values: whoever knows a few
            # people's can tell the rest, so it counts as shown in full.
            full = mode == "full" or style.style is Style.TOKEN
            where = f"{dataset}.{name}"
            if spec.validator == "cn.division_code":
                shown = set(range(6)) if full else shown_positions(style, "000000")
                if shown:
                    known.division |= shown
                    known.narrowed_by.add(where)
            elif is_birth_date(spec) and mask_kind(spec) is MaskKind.DATE:
                if full:
                    shown = set(range(8))
                else:
                    shown = {
                        _DATE_DIGITS[p]
                        for p in shown_positions(style, _SAMPLE_DATE)
                        if p in _DATE_DIGITS
                    }
                if shown:
                    known.birth_date |= shown
                    known.narrowed_by.add(where)
            elif is_sex(spec) and (full or not style.reveals_nothing):
                known.sex = True
                known.narrowed_by.add(where)
        if has_division:
            for prefix in prefixes:
                known.division |= set(range(min(len(prefix), 6)))
                known.narrowed_by.add(f"{dataset} division_prefix={prefix}")
    return known


@cache
def _division_min(positions: frozenset[int]) -> int:
    groups: dict[tuple[str, ...], int] = {}
    for code in division_codes():
        key = tuple(code[p] for p in sorted(positions))
        groups[key] = groups.get(key, 0) + 1
    return min(groups.values()) if groups else 0


@lru_cache(maxsize=512)
def _date_min(positions: frozenset[int], today: date) -> int:
    groups: dict[tuple[str, ...], int] = {}
    order = sorted(positions)
    day = EARLIEST_BIRTH
    while day <= today:
        digits = f"{day:%Y%m%d}"
        key = tuple(digits[p] for p in order)
        groups[key] = groups.get(key, 0) + 1
        day += timedelta(days=1)
    return min(groups.values())


@cache
def _sequence(free: frozenset[int], parity: bool, check: bool) -> int:
    """The fewest completions of the free sequence digits (0, 1, 2 of 14-16): all of
    them, or with the check character shown the fewest that give any one residue."""
    least = None
    for wanted_parity in (0, 1) if parity else (None,):
        counts = [0] * 11
        total = 0
        for digits in product(range(10), repeat=len(free)):
            chosen = dict(zip(sorted(free), digits, strict=True))
            if wanted_parity is not None and 2 in chosen and chosen[2] % 2 != wanted_parity:
                continue
            total += 1
            counts[sum(_WEIGHTS[14 + p] * d for p, d in chosen.items()) % 11] += 1
        n = min(counts) if check else total
        least = n if least is None else min(least, n)
    return least or 0


def resident_id_candidates(known: Known, *, today: date | None = None) -> int:
    """A lower bound, over every record, of the originals a masked citizen identity number
    leaves given what is known of its parts."""
    ids = known.id_positions
    division = frozenset(known.division | {p for p in ids if p < 6})
    born = frozenset(known.birth_date | {p - 6 for p in ids if 6 <= p < 14})
    seq_known = {p - 14 for p in ids if 14 <= p < 17}
    free = frozenset({0, 1, 2} - seq_known)
    parity = known.sex and 2 in free
    n_division = 1 if len(division) == 6 else _division_min(division)
    n_date = 1 if len(born) == 8 else _date_min(born, today or date.today())
    return n_division * n_date * _sequence(free, parity, 17 in ids)


def breaches(
    grants: Iterable[GrantLike],
    standard_of: StandardOf | None = None,
    *,
    today: date | None = None,
) -> list[Breach]:
    """Every masked field the grants (one role, one purpose) show against the rule
    (``standard_of`` gives a dataset's standard; the shipped ones by default)."""
    standard_of = standard_of or load_standard
    grants = list(grants)
    shown = _shown(grants, standard_of)
    found: list[Breach] = []
    full_ids = {
        spec.validator
        for standard, modes, _ in shown.values()
        for name, mode in modes.items()
        if mode == "full" and (spec := _spec(standard, name)) is not None and spec.identifier
    }
    partial_ids: list[tuple[str, str, MaskStyle]] = []
    for dataset, (standard, modes, _) in sorted(shown.items()):
        for name, mode in sorted(modes.items()):
            spec = _spec(standard, name)
            if spec is None or mode == "full":
                continue
            style = style_of(spec)
            kind = mask_kind(spec)
            where = f"{dataset}.{name}"
            if kind is MaskKind.IDENTIFIER and not style.reveals_nothing:
                if spec.validator == RESIDENT_ID:
                    if RESIDENT_ID not in full_ids:
                        partial_ids.append((dataset, name, style))
                else:
                    found.append(
                        Breach(
                            dataset,
                            name,
                            "disclosure.identifier_style",
                            f"{where} is masked as {style}, which shows part of an identifier "
                            "whose structure the disclosure rule does not model; only an "
                            "identifier masked redact or token may be shown masked",
                        )
                    )
            elif (
                kind is MaskKind.NAME
                and not style.reveals_nothing
                and not (style.style is Style.INITIAL_ONLY and is_name_part(spec))
            ):
                what = "one part of a name" if is_name_part(spec) else "a whole name"
                found.append(
                    Breach(
                        dataset,
                        name,
                        "disclosure.name_style",
                        f"{where} holds {what} and is masked as {style}, which may show a "
                        "part of the name whole or more than the first character of a part "
                        "of 3 or more characters; mask it redact or token"
                        + (", or initial_only" if is_name_part(spec) else ""),
                    )
                )
    if partial_ids:
        known = known_parts(grants, standard_of)
        for _, _, style in partial_ids:
            known.id_positions |= shown_positions(style, _SAMPLE_ID)
        count = resident_id_candidates(known, today=today)
        if count < MIN_CANDIDATES:
            narrowed = ", ".join(sorted(known.narrowed_by)) or "nothing else"
            for dataset, name, style in partial_ids:
                found.append(
                    Breach(
                        dataset,
                        name,
                        "disclosure.identifier_candidates",
                        f"{dataset}.{name} masked as {style}, with what the role sees for the "
                        f"purpose ({narrowed}), leaves as few as {count:,} candidates for the "
                        f"original, fewer than {MIN_CANDIDATES:,}: show it redacted or as a "
                        "token (a style of the standard), or show less of the birth date, "
                        "division and sex",
                    )
                )
    return found


def redacted(
    grants: Iterable[GrantLike], standard_of: StandardOf | None = None
) -> frozenset[tuple[str, str]]:
    """``(dataset, field)`` of every masked field the policy must redact in an answer."""
    return frozenset((b.dataset, b.field) for b in breaches(grants, standard_of))
