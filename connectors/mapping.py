"""Mapping a department's row to a standard record, then validating it.

:func:`map_row` turns a source row into an Avro-ready dict (dates as
``datetime.date``, enums as symbols, empty optional values as ``None``) and
collects every problem as ``(field, reason_code, message)``; nothing raises
for bad data. Problems are collected rather than stopping at the first, so a
clerk can fix a row in one pass.

A field's value is made in this order: read the column(s), the text
``transform`` steps, the empty check (``default``, ``optional``), ``split_name``
(:mod:`connectors.names`), ``codes``, then the conversion to the field's type:
dates by ``date_formats`` (:mod:`connectors.dates`), numbers times ``scale``
(:mod:`connectors.numbers`), then the field's validator. A value the validator
accepts but flags (a retired division code) is published, and the flag is
reported through ``flags``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from connectors.dates import parse_date
from connectors.definition import ConnectorDefinition, FieldMapping
from connectors.names import split_name
from connectors.numbers import scaled
from schemas import FieldSpec, Standard
from schemas.standards import base_type
from schemas.validators import get_flag, get_validator

Problem = tuple[str, str, str]
MAX_STRING = 512


def _halfwidth(text: str) -> str:
    # NFKC maps full-width digits, letters and the ideographic space to ASCII.
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
        invalid = get_validator(spec.validator)(text)
        if invalid is not None:
            return None, (name, invalid.code, invalid.message)
    return text, None


def map_row(
    definition: ConnectorDefinition,
    standard: Standard,
    values: dict[str, str],
    flags: list[Problem] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Build the standard record from a row; returns (record, problems).

    Flags (accepted values worth a warning, e.g. ``division_code.retired``) are
    appended to ``flags`` if given; they never make a problem.
    """
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
            flag = get_flag(spec.validator, value)
            if flag is not None:
                flags.append((spec.name, flag.code, flag.message))
    return record, problems


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """The record with dates as ISO strings, for JSON storage and responses."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in record.items()}
