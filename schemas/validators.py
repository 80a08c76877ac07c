"""Validators for identifiers and codes carried in exchanged records.

Departments publish Avro records whose *shape* is fixed by the shared schemas, but
a well-typed string can still be a wrong identifier: a mistyped citizen identity
number, a unified social credit code with a bad check character, an unknown
administrative division, an impossible date.  This module holds the checks that
every department applies before publishing, so that the same value is judged the
same way everywhere.

Each validator is a plain function ``(value: str) -> Invalid | None``: ``None``
means the value is valid; otherwise the :class:`Invalid` result carries a stable,
machine-readable ``code`` (e.g. ``resident_id.check_character``) for reports and
metrics, and a ``message`` a department clerk can act on.  Validators are strict:
they judge the value exactly as it will be stored.  Tidy user input first (for
example with :func:`normalise_resident_id`).

Messages about personal identifiers (resident identity numbers, phone numbers) do
not repeat the value, so they can be logged without spreading personal data.

Standards implemented:

* GB 11643-1999 citizen identity number (ISO 7064 MOD 11-2 check character);
* GB 32100-2015 unified social credit code (MOD 31 check character);
* GB/T 2260 administrative division codes, checked against the complete vendored
  list ``schemas/data/cn_divisions.csv`` (every province-, prefecture- and
  county-level code in use) and ``cn_divisions_retired.csv`` (codes retired since
  1980: accepted, and flagged by :func:`division_flag`); see ``schemas/data/README.md``;
* postcodes: 6 digits in mainland China, or another country's postcode
  (:func:`postcode`, permissive);
* ISO 8601 calendar dates (``YYYY-MM-DD``);
* mainland China mobile and fixed-line telephone numbers.

A validator may also *flag* a value it accepts (:data:`FLAGS`, :func:`get_flag`): a
:class:`Flag` is a warning a clerk should see, never a rejection (a retired division
code is valid in records made before it was retired).

Validators are pluggable per jurisdiction through :data:`VALIDATORS`, keyed by
dotted names: ``cn.*`` for mainland China, ``iso.*`` for international formats,
``intl.*`` for checks that accept several countries' forms.
Other jurisdictions register theirs under their own prefix with
:func:`register_validator` and are looked up with :func:`get_validator`.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

__all__ = [
    "FLAGS",
    "VALIDATORS",
    "Division",
    "Flag",
    "Flagger",
    "Invalid",
    "Validator",
    "division",
    "division_code",
    "division_codes",
    "division_flag",
    "division_name",
    "get_flag",
    "get_validator",
    "iso_date",
    "normalise_resident_id",
    "phone",
    "postcode",
    "register_validator",
    "resident_id",
    "resident_id_check_character",
    "unified_social_credit_code",
    "uscc_check_character",
]


@dataclass(frozen=True)
class Invalid:
    """Why a value was rejected.

    ``code`` is a stable machine-readable reason, ``<kind>.<reason>``; ``message``
    is a sentence telling a department clerk what is wrong and how to fix it.
    """

    code: str
    message: str


Validator = Callable[[str], Invalid | None]
"""A validator returns ``None`` for a valid value, else an :class:`Invalid`."""


@dataclass(frozen=True)
class Flag:
    """A warning about a value that is accepted: ``code`` as :class:`Invalid`'s, and a
    ``message`` saying what the clerk may want to check."""

    code: str
    message: str


Flagger = Callable[[str], Flag | None]
"""A flagger returns a :class:`Flag` for an accepted value worth a warning, else ``None``."""


def _is_ascii_digits(value: str) -> bool:
    """True for a non-empty string of ASCII digits (``str.isdigit`` alone accepts others,
    such as full-width digits; among ASCII characters it accepts exactly 0-9)."""
    return value.isascii() and value.isdigit()


def _describe_char(char: str) -> str:
    """Describe a character for a message, naming ones that are hard to see."""
    if char.isspace():
        return "a space"
    if "\uff01" <= char <= "\uff5e":
        return f"the full-width character {char!r}"
    return repr(char)


# --------------------------------------------------------------------------
# Administrative divisions (GB/T 2260)
# --------------------------------------------------------------------------

_DIVISIONS_FILE: Final = "cn_divisions.csv"
_RETIRED_FILE: Final = "cn_divisions_retired.csv"
_DIVISION_LEVELS: Final = frozenset({"province", "prefecture", "county"})


@dataclass(frozen=True)
class Division:
    """One division of the shipped GB/T 2260 lists.

    ``retired_in`` is the year a retired code stopped being used (None for a code in
    use), and ``successors`` the codes its area went to (may be empty).
    """

    code: str
    name: str
    level: str
    retired_in: int | None = None
    successors: tuple[str, ...] = ()

    @property
    def retired(self) -> bool:
        return self.retired_in is not None


def _read_data(filename: str) -> str:
    try:
        resource = importlib.resources.files("schemas") / "data" / filename
        return resource.read_text(encoding="utf-8")
    except NotADirectoryError:
        # Python 3.11 cannot open resources of a *namespace* package whose __path__
        # holds a non-directory entry, such as the hook that setuptools' editable
        # install adds.  While ``schemas`` has no __init__.py, read the file next
        # to this module instead; it is the same file.
        return (Path(__file__).parent / "data" / filename).read_text(encoding="utf-8")


def _read_divisions(filename: str, *, retired: bool) -> dict[str, Division]:
    table: dict[str, Division] = {}
    reader = csv.DictReader(io.StringIO(_read_data(filename)))
    for line, row in enumerate(reader, start=2):
        code, name, level = row["code"], row["name"], row["level"]
        if len(code) != 6 or not _is_ascii_digits(code) or level not in _DIVISION_LEVELS:
            raise ValueError(f"{filename} line {line}: malformed row {row!r}")
        if code in table:
            raise ValueError(f"{filename} line {line}: duplicate code {code}")
        if retired:
            successors = tuple(c for c in row["successors"].split(";") if c)
            table[code] = Division(code, name, level, int(row["until"]), successors)
        else:
            table[code] = Division(code=code, name=name, level=level)
    return table


@functools.cache
def _divisions() -> Mapping[str, Division]:
    """The divisions in use, keyed by 6-digit code (loaded once, on first use)."""
    return _read_divisions(_DIVISIONS_FILE, retired=False)


@functools.cache
def _retired_divisions() -> Mapping[str, Division]:
    """Codes no longer in use, keyed by code (loaded once, on first use)."""
    current = _divisions()
    table = _read_divisions(_RETIRED_FILE, retired=True)
    clash = sorted(set(table) & set(current))
    if clash:
        raise ValueError(f"{_RETIRED_FILE}: codes both current and retired: {clash[:5]}")
    return table


def division(code: str) -> Division | None:
    """The division with this code, in use or retired; ``None`` if it is in neither list."""
    return _divisions().get(code) or _retired_divisions().get(code)


def division_name(code: str) -> str | None:
    """Name of the division with this 6-digit code (its last name if retired), or ``None``."""
    found = division(code)
    return None if found is None else found.name


def division_codes() -> frozenset[str]:
    """Every code in use today (what the disclosure rule counts; retired codes are not
    counted, which only makes the rule stricter)."""
    return frozenset(_divisions())


@functools.cache
def _province_prefixes() -> frozenset[str]:
    """The first two digits of every province-level code in use (built once, on first use:
    the resident-id validator asks for every value)."""
    return frozenset(d.code[:2] for d in _divisions().values() if d.level == "province")


def division_code(value: str) -> Invalid | None:
    """Validate a GB/T 2260 administrative division code such as ``440305``.

    A code in use is valid; so is a retired one (old records and identity numbers keep
    the code of their day), which :func:`division_flag` flags.
    """
    if len(value) != 6 or not _is_ascii_digits(value):
        return Invalid(
            "division_code.format",
            f"division code {value!r} must be exactly 6 digits, e.g. 440305 for "
            "南山区, 深圳市; use half-width digits with no spaces",
        )
    if division(value) is None:
        return Invalid(
            "division_code.unknown",
            f"division code {value!r} is not in the administrative division list "
            "(GB/T 2260), current or retired since 1980; check the code against the "
            "official list",
        )
    return None


def division_flag(value: str) -> Flag | None:
    """``division_code.retired`` for an accepted code that is no longer in use, else None."""
    found = _retired_divisions().get(value)
    if found is None:
        return None
    now = [f"{c} {division_name(c) or '?'}" for c in found.successors]
    where = f"; its area is now in {', '.join(now)}" if now else ""
    return Flag(
        "division_code.retired",
        f"division code {value} ({found.name}) was retired in {found.retired_in}{where}; "
        "it is accepted as a code of its time, but a current record should use the current code",
    )


# --------------------------------------------------------------------------
# Citizen identity number (GB 11643-1999)
# --------------------------------------------------------------------------

_RESIDENT_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK_MAP: Final = "10X98765432"
_EARLIEST_BIRTH_DATE: Final = date(1900, 1, 1)
# What every character must be (ASCII digits, a final X); a number that does not match is
# explained character by character by _resident_id_charset.
_RESIDENT_ID_CHARS: Final = re.compile(r"[0-9]{17}[0-9X]")

_FULL_WIDTH_TO_HALF_WIDTH: Final = {
    **{0xFF10 + i: ord("0") + i for i in range(10)},
    **{0xFF21 + i: ord("A") + i for i in range(26)},
    **{0xFF41 + i: ord("a") + i for i in range(26)},
}


def resident_id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("expected exactly 17 ASCII digits")
    return _check_character(first17)


# For each of the 17 positions, each digit's weighted value: the check sum is one lookup
# a position, in C (the validator computes it for every identity number published).
_RESIDENT_ID_TERMS: Final = tuple(
    {str(digit): digit * weight for digit in range(10)} for weight in _RESIDENT_ID_WEIGHTS
)


def _check_character(first17: str) -> str:
    # 17 ASCII digits, checked by the caller.
    total = sum(map(dict.__getitem__, _RESIDENT_ID_TERMS, first17))
    return _RESIDENT_ID_CHECK_MAP[total % 11]


def normalise_resident_id(value: str) -> str:
    """Tidy a typed or pasted identity number into its stored form.

    Removes whitespace (including full-width spaces, and spaces used to group the
    digits), converts full-width digits and letters to half-width, and writes a
    final ``x`` as upper-case ``X``.  It does not validate; idempotent.
    """
    compact = "".join(value.split()).translate(_FULL_WIDTH_TO_HALF_WIDTH)
    return compact.replace("x", "X")


def _resident_id_charset(value: str) -> Invalid:
    """Why an 18-character ``value`` that is not 17 digits and a digit or ``X`` is refused:
    its first character that is not allowed where it stands."""
    for position, char in enumerate(value, start=1):
        allowed = "0123456789X" if position == 18 else "0123456789"
        if char not in allowed:
            if position == 18 and char == "x":
                fix = "write the final x as upper-case 'X'"
            elif char.isspace() or "\uff01" <= char <= "\uff5e":
                fix = "remove spaces and use half-width digits"
            else:
                fix = "re-type the number from the ID card"
            expected = "a digit or 'X'" if position == 18 else "a digit"
            return Invalid(
                "resident_id.charset",
                f"character {position} of the resident identity number is "
                f"{_describe_char(char)} but must be {expected}; {fix}",
            )
    raise AssertionError("unreachable: every character of the number is allowed")


def resident_id(value: str, *, today: date | None = None) -> Invalid | None:
    """Validate an 18-character citizen identity number (GB 11643-1999).

    Checks, in order: length, characters, province-level division prefix, the
    embedded birth date (a real date from 1900-01-01 up to ``today``, which
    defaults to the current date), and the check character.
    """
    if len(value) != 18:
        hint = (
            "; this looks like an old 15-digit number, which must be converted to the "
            "18-digit form before exchange"
            if len(value) == 15
            else "; re-type the number from the ID card"
        )
        return Invalid(
            "resident_id.length",
            f"resident identity number must be 18 characters, got {len(value)}{hint}",
        )

    if _RESIDENT_ID_CHARS.fullmatch(value) is None:
        return _resident_id_charset(value)
    if value[:2] not in _province_prefixes():
        return Invalid(
            "resident_id.division",
            f"the first two digits {value[:2]!r} are not a province-level division code; "
            "re-type the number from the ID card",
        )

    birth = value[6:14]
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        return Invalid(
            "resident_id.birth_date",
            "characters 7-14 of the resident identity number (the birth date, "
            "YYYYMMDD) are not a real date; re-type the number from the ID card",
        )
    reference = date.today() if today is None else today
    if born > reference:
        return Invalid(
            "resident_id.birth_date",
            "characters 7-14 of the resident identity number give a birth date in the "
            "future; re-type the number from the ID card",
        )
    if born < _EARLIEST_BIRTH_DATE:
        return Invalid(
            "resident_id.birth_date",
            "characters 7-14 of the resident identity number give a birth date before "
            "1900-01-01; re-type the number from the ID card",
        )

    expected_check = _check_character(value[:17])
    if value[17] != expected_check:
        return Invalid(
            "resident_id.check_character",
            f"check character is {value[17]!r} but the first 17 characters require "
            f"{expected_check!r}; re-type the number from the ID card",
        )
    return None


# --------------------------------------------------------------------------
# Unified social credit code (GB 32100-2015)
# --------------------------------------------------------------------------

_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES: Final = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a USCC."""
    if len(first17) != 17 or any(c not in _USCC_VALUES for c in first17):
        raise ValueError(f"expected exactly 17 characters from {_USCC_ALPHABET!r}")
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def unified_social_credit_code(value: str) -> Invalid | None:
    """Validate an 18-character unified social credit code (GB 32100-2015)."""
    if len(value) != 18:
        return Invalid(
            "uscc.length",
            f"unified social credit code {value!r} must be 18 characters, got "
            f"{len(value)}; copy it from the business licence",
        )
    for position, char in enumerate(value, start=1):
        if char not in _USCC_VALUES:
            if char in "IOZSV":
                fix = "the letters I, O, Z, S and V are never used; it is probably a digit"
            elif char.islower():
                fix = "use upper-case letters"
            else:
                fix = "copy the code from the business licence"
            return Invalid(
                "uscc.charset",
                f"character {position} of unified social credit code {value!r} is "
                f"{_describe_char(char)}, which cannot occur in the code; {fix}",
            )
    expected_check = uscc_check_character(value[:17])
    if value[17] != expected_check:
        return Invalid(
            "uscc.check_character",
            f"check character of unified social credit code {value!r} is {value[17]!r} "
            f"but the first 17 characters require {expected_check!r}; copy the code "
            "from the business licence",
        )
    return None


# --------------------------------------------------------------------------
# Dates (ISO 8601 calendar date)
# --------------------------------------------------------------------------

_ISO_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(value: str) -> Invalid | None:
    """Validate a calendar date written ``YYYY-MM-DD`` (e.g. ``2024-02-29``)."""
    if _ISO_DATE_RE.fullmatch(value) is None:
        return Invalid(
            "date.format",
            f"date {value!r} must be written YYYY-MM-DD with half-width digits, e.g. 2024-03-01",
        )
    try:
        date(int(value[:4]), int(value[5:7]), int(value[8:]))
    except ValueError:
        return Invalid(
            "date.impossible",
            f"date {value!r} does not exist in the calendar; check the day and month",
        )
    return None


# --------------------------------------------------------------------------
# Telephone numbers (mainland China)
# --------------------------------------------------------------------------

_PHONE_CHARS_RE: Final = re.compile(r"\+?[0-9 \-]+")
_MOBILE_RE: Final = re.compile(r"1[3-9][0-9]{9}")
_FIXED_LINE_RE: Final = re.compile(r"0[0-9]{2,3}[0-9]{7,8}")


def _is_domestic_phone(digits: str) -> bool:
    return bool(_MOBILE_RE.fullmatch(digits) or _FIXED_LINE_RE.fullmatch(digits))


def phone(value: str) -> Invalid | None:
    """Validate a mainland China mobile or fixed-line telephone number.

    Accepts an 11-digit mobile number starting 13-19, or a fixed line: area code
    (``0XX`` or ``0XXX``) followed by 7-8 digits.  Spaces and hyphens are ignored,
    and a ``+86`` / ``0086`` country prefix is allowed; after it, a fixed-line
    number may omit its leading ``0`` as is usual internationally
    (``+86 10 1234 5678``).
    """
    if _is_domestic_phone(value):
        return None  # the usual case, as written: what the steps below would accept too
    invalid = Invalid(
        "phone.format",
        "telephone number must be a mainland mobile number (11 digits starting 13-19) "
        "or a fixed line: area code such as 010 or 0755 followed by 7-8 digits; only "
        "digits, spaces, hyphens and a +86 prefix are allowed",
    )
    if _PHONE_CHARS_RE.fullmatch(value.strip()) is None:
        return invalid
    digits = value.strip().replace(" ", "").replace("-", "")

    domestic: list[str] = []
    international: list[str] = []  # what follows a +86 / 0086 country prefix
    if digits.startswith("+86"):
        international.append(digits[3:])
    elif not digits.startswith("+"):
        domestic.append(digits)
        if digits.startswith("0086"):
            international.append(digits[4:])
    candidates = domestic + international
    candidates.extend("0" + c for c in international if not c.startswith("0"))

    if any(_is_domestic_phone(c) for c in candidates):
        return None
    return invalid


# --------------------------------------------------------------------------
# Postcodes
# --------------------------------------------------------------------------

_CN_POSTCODE_RE: Final = re.compile(r"[0-9]{6}")
# Other countries' forms, upper case: 12345, 12345-6789, SW1A 1AA, K1A 0B1, 1234 AB, D02 X285.
_POSTCODE_RE: Final = re.compile(
    r"(?=[A-Z0-9 \-]*[0-9])[A-Z0-9](?:[A-Z0-9]|[ \-](?=[A-Z0-9])){1,9}"
)


def postcode(value: str) -> Invalid | None:
    """Validate a postcode: 6 digits for mainland China, or another country's form.

    Permissive on purpose (one standard, many countries): 2-10 upper-case letters and
    digits, at least one digit, single spaces or hyphens between them. It catches
    what is surely not a postcode (a phone number is too long, text has no digit),
    not every impossible one.
    """
    if _CN_POSTCODE_RE.fullmatch(value) or _POSTCODE_RE.fullmatch(value):
        return None
    return Invalid(
        "postcode.format",
        f"postcode {value!r} must be 6 digits in mainland China (e.g. 518057), or another "
        "country's postcode in upper case (2-10 letters and digits, at least one digit, "
        "single spaces or hyphens between them, e.g. SW1A 1AA); use half-width characters",
    )


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

VALIDATORS: dict[str, Validator] = {
    "cn.resident_id": resident_id,
    "cn.uscc": unified_social_credit_code,
    "cn.division_code": division_code,
    "cn.phone": phone,
    "iso.date": iso_date,
    "intl.postcode": postcode,
}
"""Validators by dotted name, ``<jurisdiction>.<kind>``."""

FLAGS: dict[str, Flagger] = {"cn.division_code": division_flag}
"""Flaggers by the name of the validator whose accepted values they flag."""


def get_flag(name: str, value: str) -> Flag | None:
    """The flag that validator ``name``'s flagger raises for an accepted ``value``, if any."""
    flagger = FLAGS.get(name)
    return None if flagger is None else flagger(value)


def register_validator(name: str, fn: Validator, *, replace: bool = False) -> None:
    """Register ``fn`` under a dotted name such as ``hk.identity_card``.

    Names are lower-case and dotted, starting with the jurisdiction (``cn``,
    ``hk``, ...) or ``iso`` for international formats.  Registering a name that is
    already taken raises :class:`ValueError` unless ``replace`` is true.
    """
    if _NAME_RE.fullmatch(name) is None:
        raise ValueError(
            f"validator name {name!r} must be dotted lower-case words such as "
            "'hk.identity_card', starting with the jurisdiction"
        )
    if name in VALIDATORS and not replace:
        raise ValueError(
            f"validator {name!r} is already registered; pass replace=True to override it"
        )
    VALIDATORS[name] = fn


def get_validator(name: str) -> Validator:
    """The validator registered under ``name``; :class:`KeyError` if there is none."""
    try:
        return VALIDATORS[name]
    except KeyError:
        known = ", ".join(sorted(VALIDATORS))
        raise KeyError(f"no validator named {name!r}; known validators: {known}") from None
