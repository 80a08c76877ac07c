"""Mapping a department's row to a standard record, then validating it.

:func:`map_row` turns a source row into an Avro-ready dict (dates as
``datetime.date``, enums as symbols, empty optional values as ``None``) and
collects every problem as ``(field, reason_code, message)``; nothing raises
for bad data. Problems are collected rather than stopping at the first, so a
clerk can fix a row in one pass.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from connectors.definition import ConnectorDefinition, FieldMapping
from schemas import FieldSpec, Standard
from schemas.validators import get_validator

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


def _avro_base(avro_type: Any) -> Any:
    """The non-null branch of a nullable union, else the type itself."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return branches[0] if len(branches) == 1 else avro_type
    return avro_type


def _convert(spec: FieldSpec, mapping: FieldMapping, text: str) -> tuple[Any, Problem | None]:
    base = _avro_base(spec.avro_type)
    name = spec.name
    if mapping.codes is not None:
        if text not in mapping.codes:
            known = ", ".join(sorted(mapping.codes))
            return None, (name, "code.unknown", f"code {text!r} is not in the code table ({known})")
        text = mapping.codes[text]
    if isinstance(base, dict) and base.get("logicalType") == "date":
        for fmt in mapping.date_formats or ["%Y-%m-%d"]:
            try:
                return datetime.strptime(text, fmt).date(), None
            except ValueError:
                continue
        formats = ", ".join(mapping.date_formats or ["%Y-%m-%d"])
        return None, (name, "date.invalid", f"{text!r} is not a real date in any of: {formats}")
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
    definition: ConnectorDefinition, standard: Standard, values: dict[str, str]
) -> tuple[dict[str, Any], list[Problem]]:
    """Build the standard record from a row; returns (record, problems)."""
    record: dict[str, Any] = {}
    problems: list[Problem] = []
    for spec in standard.fields:
        mapping = definition.fields.get(spec.name)
        if mapping is None:
            if spec.has_default:
                record[spec.name] = spec.default
            continue
        parts = [values.get(col) for col in mapping.columns]
        if any(p is None for p in parts) and mapping.default is None:
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
            else:
                record[spec.name] = spec.default if spec.has_default else None
            continue
        value, problem = _convert(spec, mapping, text)
        if problem:
            problems.append(problem)
        else:
            record[spec.name] = value
    return record, problems


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """The record with dates as ISO strings, for JSON storage and responses."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in record.items()}
