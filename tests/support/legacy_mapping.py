"""The mapping and validation of row values as they were before issue 19, kept as an oracle.

Issue 19 made :func:`connectors.mapping.map_row` faster (a mapper compiled once a
definition, dates read without ``strptime``, the resident-id and phone checks partly in
C); it must give the same records, problems and flags. This module is the code it
replaced, copied unchanged but for names (the mapping of commit 99795d5, with its
``strptime`` date parsing and the resident-id, phone and division-code validators it
called), so a test can compare the two on many rows. Validators that did not change
are the registry's own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from connectors.dates import WRITINGS
from connectors.definition import ConnectorDefinition, FieldMapping
from connectors.names import split_name
from connectors.numbers import scaled
from schemas import FieldSpec, Standard
from schemas import validators as current
from schemas.standards import base_type
from schemas.validators import Invalid

Problem = tuple[str, str, str]
MAX_STRING = 512

# --- validators (schemas/validators.py at 99795d5) ----------------------------------------

_ASCII_DIGITS = frozenset("0123456789")
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK_MAP = "10X98765432"
_EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def _is_ascii_digits(value: str) -> bool:
    return bool(value) and all(c in _ASCII_DIGITS for c in value)


def _province_prefixes() -> frozenset[str]:
    return frozenset(d.code[:2] for d in current._divisions().values() if d.level == "province")


def resident_id_check_character(first17: str) -> str:
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("expected exactly 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK_MAP[total % 11]


def resident_id(value: str, *, today: date | None = None) -> Invalid | None:
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
                f"{current._describe_char(char)} but must be {expected}; {fix}",
            )
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
    expected_check = resident_id_check_character(value[:17])
    if value[17] != expected_check:
        return Invalid(
            "resident_id.check_character",
            f"check character is {value[17]!r} but the first 17 characters require "
            f"{expected_check!r}; re-type the number from the ID card",
        )
    return None


def division_code(value: str) -> Invalid | None:
    if len(value) != 6 or not _is_ascii_digits(value):
        return Invalid(
            "division_code.format",
            f"division code {value!r} must be exactly 6 digits, e.g. 440305 for "
            "南山区, 深圳市; use half-width digits with no spaces",
        )
    if current.division(value) is None:
        return Invalid(
            "division_code.unknown",
            f"division code {value!r} is not in the administrative division list "
            "(GB/T 2260), current or retired since 1980; check the code against the "
            "official list",
        )
    return None


def phone(value: str) -> Invalid | None:
    invalid = Invalid(
        "phone.format",
        "telephone number must be a mainland mobile number (11 digits starting 13-19) "
        "or a fixed line: area code such as 010 or 0755 followed by 7-8 digits; only "
        "digits, spaces, hyphens and a +86 prefix are allowed",
    )
    if current._PHONE_CHARS_RE.fullmatch(value.strip()) is None:
        return invalid
    digits = value.strip().replace(" ", "").replace("-", "")
    domestic: list[str] = []
    international: list[str] = []
    if digits.startswith("+86"):
        international.append(digits[3:])
    elif not digits.startswith("+"):
        domestic.append(digits)
        if digits.startswith("0086"):
            international.append(digits[4:])
    candidates = domestic + international
    candidates.extend("0" + c for c in international if not c.startswith("0"))
    if any(current._is_domestic_phone(c) for c in candidates):
        return None
    return invalid


LEGACY_VALIDATORS: dict[str, Callable[[str], Invalid | None]] = {
    "cn.resident_id": resident_id,
    "cn.division_code": division_code,
    "cn.phone": phone,
}


def _validator(name: str) -> Callable[[str], Invalid | None]:
    return LEGACY_VALIDATORS.get(name) or current.get_validator(name)


# --- dates (connectors/dates.py at 99795d5) ------------------------------------------------


def _by_writing(text: str, name: str) -> date | None:
    for pattern in WRITINGS[name]:
        found = pattern.fullmatch(text)
        if found:
            try:
                return date(int(found["y"]), int(found["m"]), int(found["d"]))
            except ValueError:
                return None
    return None


def parse_date(text: str, formats: list[str]) -> date | None:
    for entry in formats:
        if entry in WRITINGS:
            found = _by_writing(text, entry)
            if found is not None:
                return found
            continue
        try:
            return datetime.strptime(text, entry).date()
        except ValueError:
            continue
    return None


# --- mapping (connectors/mapping.py at 99795d5) --------------------------------------------


def _halfwidth(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "halfwidth": _halfwidth,
    "upper": str.upper,
    "lower": str.lower,
    "collapse_spaces": lambda s: " ".join(s.split()),
}
DEFAULT_DATE_FORMATS = ["%Y-%m-%d"]


def _convert(spec: FieldSpec, mapping: FieldMapping, text: str) -> tuple[Any, Problem | None]:
    base = base_type(spec.avro_type)
    name = spec.name
    if mapping.split_name is not None:
        parts = split_name(text)
        if isinstance(parts, tuple):
            return None, (name, *parts)
        text = parts.part(mapping.split_name)
    if mapping.codes is not None:
        if text not in mapping.codes:
            known = ", ".join(sorted(mapping.codes))
            return None, (name, "code.unknown", f"code {text!r} is not in the code table ({known})")
        text = mapping.codes[text]
    if isinstance(base, dict) and base.get("logicalType") == "date":
        formats = mapping.date_formats or DEFAULT_DATE_FORMATS
        parsed = parse_date(text, formats)
        if parsed is not None:
            return parsed, None
        listed = ", ".join(formats)
        return None, (name, "date.invalid", f"{text!r} is not a real date in any of: {listed}")
    if mapping.scale is not None and base in ("int", "long", "float", "double"):
        result = scaled(text, mapping.scale, base)
        if isinstance(result, tuple):
            return None, (name, *result)
        return result, None
    if isinstance(base, dict) and base.get("type") == "enum":
        if text not in base["symbols"]:
            return None, (
                name,
                "enum.unknown",
                f"{text!r} is not one of {', '.join(base['symbols'])}",
            )
        return text, None
    if base in ("int", "long"):
        try:
            return int(text), None
        except ValueError:
            return None, (name, "type.integer", f"{text!r} is not a whole number")
    if base in ("float", "double"):
        try:
            return float(text), None
        except ValueError:
            return None, (name, "type.number", f"{text!r} is not a number")
    if base == "boolean":
        lowered = text.lower()
        if lowered in {"true", "1", "yes", "y", "是"}:
            return True, None
        if lowered in {"false", "0", "no", "n", "否"}:
            return False, None
        return None, (name, "type.boolean", f"{text!r} is not true or false")
    if len(text) > MAX_STRING:
        return None, (
            name,
            "size.too_long",
            f"value has {len(text)} characters; at most {MAX_STRING}",
        )
    if spec.validator:
        invalid = _validator(spec.validator)(text)
        if invalid is not None:
            return None, (name, invalid.code, invalid.message)
    return text, None


def map_row(
    definition: ConnectorDefinition,
    standard: Standard,
    values: dict[str, str],
    flags: list[Problem] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """``map_row`` as it was: the oracle for the compiled one."""
    record: dict[str, Any] = {}
    problems: list[Problem] = []
    for spec in standard.fields:
        mapping = definition.fields.get(spec.name)
        if mapping is None:
            if spec.has_default:
                record[spec.name] = spec.default
            continue
        parts = [values.get(col) for col in mapping.columns]
        if any(p is None for p in parts) and mapping.default is None and not mapping.optional:
            missing = [c for c, p in zip(mapping.columns, parts, strict=True) if p is None]
            problems.append(
                (spec.name, "column.missing", f"column {', '.join(missing)} is missing")
            )
            continue
        text = mapping.separator.join(p or "" for p in parts)
        for step in mapping.transform:
            text = _TRANSFORMS[step](text)
        if text == "" and mapping.default is not None:
            text = mapping.default
        if text == "":
            if spec.required:
                problems.append((spec.name, "required.missing", "required value is empty"))
            elif spec.optional_declared and not mapping.optional:
                problems.append(
                    (
                        spec.name,
                        "required.missing",
                        f"value is empty, and the definition does not declare "
                        f"[fields.{spec.name}] optional = true",
                    )
                )
            else:
                record[spec.name] = spec.default if spec.has_default else None
            continue
        value, problem = _convert(spec, mapping, text)
        if problem:
            problems.append(problem)
            continue
        record[spec.name] = value
        if flags is not None and spec.validator and isinstance(value, str):
            flag = current.get_flag(spec.validator, value)
            if flag is not None:
                flags.append((spec.name, flag.code, flag.message))
    return record, problems
