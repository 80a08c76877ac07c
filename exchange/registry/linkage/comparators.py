"""Field comparators: how alike two records are, field by field, as discrete levels.

Each field of a record kind has an ordered list of levels, from the strongest
agreement to outright disagreement. Level 0 is always ``null``: one side (or
both) has no value, and the field then contributes no evidence either way
(weight 0). :func:`compare` gives the comparison vector of a pair, one level
index per field, which is all the model looks at.

Every comparator is symmetric (``compare(a, b) == compare(b, a)``), which the
tests check; the linker relies on it so that the order in which records
arrive does not change which pairs link.

:func:`compare_bounded` gives the same vector, comparing the cheapest and most
decisive fields first, or gives up (``None``) as soon as the weight reached
plus the most the fields left could add falls below a floor: the linker's
shortcut for the many candidate pairs that are plainly two people.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, cast

from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from exchange.registry.linkage.features import (
    ORGANISATION,
    PERSON,
    LinkRecord,
    is_latin,
    metaphone,
    phonetic,
    pinyin,
)

NULL: Final = 0
NAME_SIMILAR_JW: Final = 0.9  # Jaro-Winkler on pinyin above which two names are "similar"
LATIN_TYPO_JW: Final = 0.93  # Latin names: Jaro-Winkler of a typo (names of 4 letters or more)
LATIN_TYPO_MIN: Final = 4  # letters a Latin name needs for a one-edit difference to be a typo
LATIN_SIMILAR_JW: Final = 0.85  # Latin names: Jaro-Winkler above which names are "similar"
ADDRESS_SIMILAR: Final = 0.8  # address token similarity (see _token_similarity) of "similar"
ADDRESS_PARTIAL: Final = 0.5
ORG_SIMILAR_JW: Final = 0.88  # Jaro-Winkler on organisation core names


@dataclass(frozen=True, slots=True)
class Field:
    """One compared field: its levels (``levels[0] == "null"``), what each means, the comparator."""

    name: str
    levels: tuple[str, ...]
    meanings: tuple[str, ...]
    level: Callable[[LinkRecord, LinkRecord], int]
    # For a name part: the level given ``swapped_order(a, b)``, which both name parts need
    # and :func:`compare` therefore computes once a pair.
    level_swapped: Callable[[LinkRecord, LinkRecord, bool | None], int] | None = None

    def meaning(self, level: int) -> str:
        return self.meanings[level]


def _identifier(a: LinkRecord, b: LinkRecord) -> int:
    if a.identifier is None or b.identifier is None:
        return NULL
    return 1 if a.identifier == b.identifier else 2


_NameParts = tuple[str, str, str, str, str, str, str, str]


def _parts(a: LinkRecord, b: LinkRecord) -> _NameParts | None:
    """Family and given names of both sides, hanzi then pinyin; None if a part is missing."""
    parts = (a.family, a.given, b.family, b.given, a.family_py, a.given_py, b.family_py, b.given_py)
    if any(p is None for p in parts):
        return None
    return cast(_NameParts, parts)


def swapped_order(a: LinkRecord, b: LinkRecord) -> bool | None:
    """Whether ``b`` holds ``a``'s name with family and given name in the other order.

    ``None`` if not; else ``True`` when the characters are the same and
    ``False`` when only the pinyin is, or (Latin letters) each name is within
    a typo (Jaro-Winkler >= 0.93) of the other's other part and closer to it
    than to its own. Symmetric.
    """
    parts = _parts(a, b)
    if parts is None:
        return None
    fa, ga, fb, gb, pfa, pga, pfb, pgb = parts
    if pfa == pfb and pga == pgb:
        return None
    found: bool | None = None
    if pga + pfa == pfb + pgb:
        found = ga + fa == fb + gb
    if pfa + pga == pgb + pfb:
        found = bool(found) or fa + ga == gb + fb
    if found is None and is_latin(fa + ga + fb + gb):
        # Latin names in the other order, with a typo on either side (FEBRL swaps fields).
        crossed = min(JaroWinkler.similarity(fa, gb), JaroWinkler.similarity(ga, fb))
        straight = max(JaroWinkler.similarity(fa, fb), JaroWinkler.similarity(ga, gb))
        if crossed >= LATIN_TYPO_JW and crossed > straight:
            found = False
    return found


def _family(a: LinkRecord, b: LinkRecord) -> int:
    return _family_swapped(a, b, swapped_order(a, b))


def _crossed(a: LinkRecord, b: LinkRecord) -> tuple[int, int] | None:
    """Latin names where one record's family name is the other's given name or nearly, and
    the names in place are clearly different (a department swapped the fields, and one of
    them is also wrong): the (better, worse) family-name levels of the two crossed pairs,
    better first; the better counts for the family name, the worse for the given name.
    (Tried: the given name not compared, null, when the worse pair is only similar or
    different; on the Latin population precision fell from 0.992 to 0.987.)
    Symmetric: the two crossed pairs are the same whichever record comes first."""
    fa, ga, fb, gb = a.family, a.given, b.family, b.given
    if not (fa and ga and fb and gb and is_latin(fa + ga + fb + gb)):
        return None
    if max(JaroWinkler.similarity(fa, fb), JaroWinkler.similarity(ga, gb)) >= LATIN_SIMILAR_JW:
        return None
    if max(JaroWinkler.similarity(fa, gb), JaroWinkler.similarity(ga, fb)) < LATIN_TYPO_JW:
        return None
    levels = sorted(
        1 if x == y else _latin_name(x, y, typo=3, similar=4, different=5)
        for x, y in ((fa, gb), (ga, fb))
    )
    return levels[0], levels[1]


_GIVEN_OF_FAMILY: Final = (0, 1, 2, 4, 5, 6)  # a family-name level as a given-name level


def _family_swapped(a: LinkRecord, b: LinkRecord, swapped: bool | None) -> int:
    if swapped is not None:
        return 1 if swapped else 2
    if a.family is None or b.family is None:
        return NULL
    if a.family == b.family:
        return 1
    crossed = _crossed(a, b)
    if crossed is not None:
        return crossed[0]
    if is_latin(a.family) and is_latin(b.family):
        return _latin_name(a.family, b.family, typo=3, similar=4, different=5)
    if a.family_py == b.family_py:
        return 2
    if a.family in b.family or b.family in a.family:
        return 4
    return 4 if Levenshtein.distance(a.family_py or "", b.family_py or "") <= 1 else 5


def _latin_name(x: str, y: str, *, typo: int, similar: int, different: int) -> int:
    """Level of two different Latin-alphabet names: homophone (2), typo, similar or different.

    Homophone: the same NYSIIS and metaphone codes (either alone takes many a vowel
    typo, and LI for LU, for the same sound). Typo: one letter changed, added,
    dropped or two adjacent letters swapped (Damerau-Levenshtein, optimal string
    alignment), or Jaro-Winkler >= 0.93, on names of at least 4 letters. Similar:
    Jaro-Winkler >= 0.85, two edits, or one name the start of the other (an initial).
    """
    if min(len(x), len(y)) >= 3 and phonetic(x) == phonetic(y) and metaphone(x) == metaphone(y):
        return 2
    if max(len(x), len(y)) >= LATIN_TYPO_MIN and (
        OSA.distance(x, y) <= 1 or JaroWinkler.similarity(x, y) >= LATIN_TYPO_JW
    ):
        return typo
    if (
        JaroWinkler.similarity(x, y) >= LATIN_SIMILAR_JW
        or OSA.distance(x, y) <= 2
        or x.startswith(y)
        or y.startswith(x)
    ):
        return similar
    return different


def _given(a: LinkRecord, b: LinkRecord) -> int:
    return _given_swapped(a, b, swapped_order(a, b))


def _given_swapped(a: LinkRecord, b: LinkRecord, swapped: bool | None) -> int:
    if swapped is not None:
        return 1 if swapped else 2
    if a.given is None or b.given is None:
        return NULL
    if a.given == b.given:
        return 1
    crossed = _crossed(a, b)
    if crossed is not None:
        return _GIVEN_OF_FAMILY[crossed[1]]
    if is_latin(a.given) and is_latin(b.given):
        return _latin_name(a.given, b.given, typo=4, similar=5, different=6)
    if a.given_py == b.given_py:
        return 2
    if max(len(a.given), len(b.given)) >= 2 and Levenshtein.distance(a.given, b.given) == 1:
        return 3
    pa, pb = a.given_py or "", b.given_py or ""
    if Levenshtein.distance(pa, pb) <= 1 or JaroWinkler.similarity(pa, pb) >= NAME_SIMILAR_JW:
        return 5
    return 6


def _date(a: LinkRecord, b: LinkRecord) -> int:
    x, y = a.birth, b.birth
    if x is None or y is None:
        return NULL
    if x == y:
        return 1
    if x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
        return 2
    if OSA.distance(x, y) <= 1 or (x[4:] == y[4:] and abs(int(x[:4]) - int(y[:4])) == 1):
        return 3
    if _one_day_apart(x, y):
        return 3
    if x[:6] == y[:6] or x[4:] == y[4:] or OSA.distance(x, y) <= 2:
        return 4
    return 5


def _one_day_apart(x: str, y: str) -> bool:
    try:
        dx = date(int(x[:4]), int(x[4:6]), int(x[6:8]))
        dy = date(int(y[:4]), int(y[4:6]), int(y[6:8]))
    except ValueError:
        return False
    return abs((dx - dy).days) == 1


def _sex(a: LinkRecord, b: LinkRecord) -> int:
    if a.sex_code is None or b.sex_code is None:
        return NULL
    return 1 if a.sex_code == b.sex_code else 2


def _phone(a: LinkRecord, b: LinkRecord) -> int:
    x, y = a.phone_digits, b.phone_digits
    if x is None or y is None:
        return NULL
    if x == y or x.endswith(y) or y.endswith(x):  # with or without the area code
        return 1
    return 2 if len(x) == len(y) and OSA.distance(x, y) <= 1 else 3


def _division(a: LinkRecord, b: LinkRecord) -> int:
    """Best agreement of any division code of one side (registered or current) with the other's.

    Not compared (null) when both sides have an address line: one household shares its
    division, postcode and address, and counted as three independent agreements they
    would outweigh a different given name and birth date (a relative taken for the
    person); the address level then speaks for where they live.
    """
    xs, ys = a.divisions, b.divisions
    if not xs or not ys or (a.addresses and b.addresses):
        return NULL
    if any(x == y for x in xs for y in ys):
        return 1
    return 2 if any(x[:4] == y[:4] for x in xs for y in ys) else 3


def _token_similarity(x: frozenset[str], y: frozenset[str]) -> float:
    """How alike two address lines' tokens are, 0 to 1: each token of the shorter line
    counts 1 if the other line has it and its best Jaro-Winkler >= 0.9 otherwise (a typo),
    over the number of tokens of the shorter line; symmetric."""
    if x == y:
        return 1.0
    small, large = (x, y) if (len(x), sorted(x)) <= (len(y), sorted(y)) else (y, x)
    found = float(len(small & large))
    for token in small - large:
        if len(token) >= 4 and process.extractOne(
            token, large, scorer=JaroWinkler.similarity, score_cutoff=NAME_SIMILAR_JW
        ):
            found += 0.8
    return float(found / len(small) * (len(small) / len(large)) ** 0.25)


def _address(a: LinkRecord, b: LinkRecord) -> int:
    """Best agreement of any address line of one side (registered or current) with the other's."""
    if not a.addresses or not b.addresses:
        return NULL
    best = max(_token_similarity(x, y) for x in a.addresses for y in b.addresses)
    if best >= 1.0 - 1e-9:
        return 1
    if best >= ADDRESS_SIMILAR:
        return 2
    return 3 if best >= ADDRESS_PARTIAL else 4


def _postcode(a: LinkRecord, b: LinkRecord) -> int:
    """Postcodes, compared (as the division) only where a side has no address line."""
    x, y = a.postcode_code, b.postcode_code
    if x is None or y is None or (a.addresses and b.addresses):
        return NULL
    if x == y:
        return 1
    return 2 if len(x) == len(y) and OSA.distance(x, y) <= 1 else 3


def _organisation_name(a: LinkRecord, b: LinkRecord) -> int:
    if a.full is None or b.full is None or a.core is None or b.core is None:
        return NULL
    if a.full == b.full:
        return 1
    if a.core == b.core or a.core_py == b.core_py:
        return 2
    return 3 if JaroWinkler.similarity(a.core, b.core) >= ORG_SIMILAR_JW else 4


def _representative(a: LinkRecord, b: LinkRecord) -> int:
    x, y = a.representative, b.representative
    if x is None or y is None:
        return NULL
    x, y = x.replace(" ", ""), y.replace(" ", "")
    if x == y:
        return 1
    px, py = a.representative_py or pinyin(x), b.representative_py or pinyin(y)
    if px == py:
        return 2
    if Levenshtein.distance(x, y) <= 1 or JaroWinkler.similarity(px, py) >= NAME_SIMILAR_JW:
        return 3
    return 4


_NULL_MEANING = "missing on one side or both"
IDENTIFIER = Field(
    "identifier",
    ("null", "agree", "disagree"),
    (_NULL_MEANING, "same identifier", "different identifiers"),
    _identifier,
)
_NAME_LEVELS = ("null", "exact", "homophone")
_NAME_MEANINGS = (
    _NULL_MEANING,
    "same characters",
    "different characters with the same pinyin (or the same name in the other order); "
    "Latin letters: the same NYSIIS and metaphone codes",
)
_LATIN_TYPO = (
    "Latin letters: one letter changed, added, dropped or transposed, or Jaro-Winkler >= "
    f"{LATIN_TYPO_JW}, on a name of {LATIN_TYPO_MIN} letters or more"
)
_LATIN_SIMILAR = (
    f"Latin letters: Jaro-Winkler >= {LATIN_SIMILAR_JW}, two edits apart, or one the start "
    "of the other"
)
FAMILY = Field(
    "family_name",
    (*_NAME_LEVELS, "typo", "similar", "different"),
    (
        *_NAME_MEANINGS,
        _LATIN_TYPO,
        f"one contains the other, or pinyin one letter apart; {_LATIN_SIMILAR}",
        "different",
    ),
    _family,
    _family_swapped,
)
GIVEN = Field(
    "given_name",
    (*_NAME_LEVELS, "one_char", "typo", "similar", "different"),
    (
        *_NAME_MEANINGS,
        "one character changed, added or dropped (Chinese names)",
        _LATIN_TYPO,
        f"pinyin one letter apart or Jaro-Winkler >= {NAME_SIMILAR_JW}; {_LATIN_SIMILAR}",
        "different",
    ),
    _given,
    _given_swapped,
)
_DATE_LEVELS = ("null", "exact", "swapped", "typo", "close", "different")
_DATE_MEANINGS = (
    _NULL_MEANING,
    "same date",
    "day and month swapped",
    "one digit changed, two adjacent digits transposed, the year one off, or one day apart",
    "same year and month, same month and day, or two digits apart",
    "different",
)
BIRTH_DATE = Field("birth_date", _DATE_LEVELS, _DATE_MEANINGS, _date)
SEX = Field("sex", ("null", "agree", "disagree"), (_NULL_MEANING, "same", "different"), _sex)
PHONE = Field(
    "phone",
    ("null", "agree", "typo", "disagree"),
    (_NULL_MEANING, "same number", "one digit changed or transposed", "different"),
    _phone,
)
DIVISION = Field(
    "division_code",
    ("null", "same", "same_city", "different"),
    (_NULL_MEANING, "same division", "same city (first 4 digits), other district", "different"),
    _division,
)
ADDRESS = Field(
    "address",
    ("null", "exact", "similar", "partial", "different"),
    (
        _NULL_MEANING,
        "same address line (registered or current, the same tokens)",
        f"address tokens alike >= {ADDRESS_SIMILAR} (words, or characters pairs of a Chinese line)",
        f"address tokens alike >= {ADDRESS_PARTIAL}",
        "different",
    ),
    _address,
)
POSTCODE = Field(
    "postcode",
    ("null", "agree", "typo", "disagree"),
    (_NULL_MEANING, "same postcode", "one character changed or transposed", "different"),
    _postcode,
)
ORGANISATION_NAME = Field(
    "legal_name",
    ("null", "exact", "same_core", "similar", "different"),
    (
        _NULL_MEANING,
        "same name",
        "same name once region, brackets and legal form are set aside (or same pinyin)",
        f"core names Jaro-Winkler >= {ORG_SIMILAR_JW}",
        "different",
    ),
    _organisation_name,
)
REGISTRATION_DATE = Field("registration_date", _DATE_LEVELS, _DATE_MEANINGS, _date)
REPRESENTATIVE = Field(
    "legal_representative_name",
    ("null", "exact", "homophone", "similar", "different"),
    (
        _NULL_MEANING,
        "same characters",
        "different characters with the same pinyin",
        f"one character apart or pinyin Jaro-Winkler >= {NAME_SIMILAR_JW}",
        "different",
    ),
    _representative,
)

FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    PERSON: (IDENTIFIER, FAMILY, GIVEN, BIRTH_DATE, SEX, PHONE, DIVISION, ADDRESS, POSTCODE),
    ORGANISATION: (IDENTIFIER, ORGANISATION_NAME, REGISTRATION_DATE, DIVISION, REPRESENTATIVE),
}


def fields_of(kind: str) -> tuple[Field, ...]:
    """The compared fields of a record kind, in comparison-vector order."""
    try:
        return FIELDS[kind]
    except KeyError:
        raise ValueError(f"no comparators for record kind {kind!r}") from None


# Each kind's fields in the order compare_bounded compares them: the cheapest and most
# decisive first (identifier, date, ...), the names (edit distances, Jaro-Winkler) last.
_NAMES: Final = frozenset(
    {FAMILY.name, GIVEN.name, ORGANISATION_NAME.name, REPRESENTATIVE.name, ADDRESS.name}
)
EVALUATION_ORDER: Final[dict[str, tuple[int, ...]]] = {
    kind: tuple(i for i, _ in sorted(enumerate(fields), key=lambda f: f[1].name in _NAMES))
    for kind, fields in FIELDS.items()
}


def compare(a: LinkRecord, b: LinkRecord) -> tuple[int, ...]:
    """The comparison vector of two records of the same kind: one level index per field."""
    if a.kind != b.kind:
        raise ValueError(f"cannot compare a {a.kind} with a {b.kind}")
    vector = []
    swapped: bool | None = None
    unknown = True  # swapped not computed yet
    for f in fields_of(a.kind):
        if f.level_swapped is None:
            vector.append(f.level(a, b))
            continue
        if unknown:
            swapped, unknown = swapped_order(a, b), False
        vector.append(f.level_swapped(a, b, swapped))
    return tuple(vector)


def compare_bounded(
    a: LinkRecord,
    b: LinkRecord,
    weights: Sequence[Sequence[float]],
    rest: Sequence[float],
    floor: float,
) -> tuple[int, ...] | None:
    """:func:`compare`'s vector, or ``None`` once the pair's weight is sure to stay below ``floor``.

    ``weights[i][level]`` is field ``i``'s weight at ``level``; ``rest[k]`` is the
    most the fields after the ``k``-th of ``EVALUATION_ORDER`` could add (the sum of
    their largest weights, at least 0). Fields are compared in that order; after
    each, if the weight so far plus ``rest[k]`` is below ``floor`` the rest are
    not compared.
    """
    if a.kind != b.kind:
        raise ValueError(f"cannot compare a {a.kind} with a {b.kind}")
    fields = fields_of(a.kind)
    vector = [0] * len(fields)
    total = 0.0
    swapped: bool | None = None
    unknown = True
    for k, i in enumerate(EVALUATION_ORDER[a.kind]):
        f = fields[i]
        if f.level_swapped is None:
            level = f.level(a, b)
        else:
            if unknown:
                swapped, unknown = swapped_order(a, b), False
            level = f.level_swapped(a, b, swapped)
        vector[i] = level
        total += weights[i][level]
        if total + rest[k] < floor:
            return None
    return tuple(vector)
