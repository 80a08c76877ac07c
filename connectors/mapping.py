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

import enum
import re
import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, Final

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
_TRUE: Final = frozenset({"true", "1", "yes", "y", "是"})
_FALSE: Final = frozenset({"false", "0", "no", "n", "否"})


class _Kind(enum.Enum):
    """What a field's text becomes, decided once from its Avro type (and ``scale``)."""

    DATE = "date"
    SCALED = "scaled"
    ENUM = "enum"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    LIST = "list"
    TEXT = "text"


def _kind(base: Any, mapping: FieldMapping) -> _Kind:
    # In the order the conversion has always tested them.
    if isinstance(base, dict) and base.get("logicalType") == "date":
        return _Kind.DATE
    if mapping.scale is not None and base in ("int", "long", "float", "double"):
        return _Kind.SCALED
    if isinstance(base, dict) and base.get("type") == "enum":
        return _Kind.ENUM
    if base in ("int", "long"):
        return _Kind.INTEGER
    if base in ("float", "double"):
        return _Kind.NUMBER
    if base == "boolean":
        return _Kind.BOOLEAN
    if isinstance(base, dict) and base.get("type") == "array":
        return _Kind.LIST
    return _Kind.TEXT


class _Field:
    """One field of the standard as a definition maps it: everything :meth:`RowMapper.map`
    needs, looked up once."""

    __slots__ = (
        "base",
        "codes",
        "columns",
        "default",
        "formats",
        "kind",
        "lenient",
        "mapping",
        "name",
        "scale",
        "separator",
        "single",
        "spec",
        "split_name",
        "symbols",
        "transforms",
        "validator",
    )

    def __init__(self, spec: FieldSpec, mapping: FieldMapping | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.mapping = mapping
        self.validator = spec.validator
        self.base = base = base_type(spec.avro_type)
        if mapping is None:
            return
        self.columns = tuple(mapping.columns)
        self.single = self.columns[0] if len(self.columns) == 1 else None
        self.separator = mapping.separator
        self.transforms = tuple(_TRANSFORMS[step] for step in mapping.transform)
        self.default = mapping.default
        # A missing column is no problem when the mapping has a default or is optional.
        self.lenient = mapping.default is not None or mapping.optional
        self.split_name = mapping.split_name
        self.codes = mapping.codes
        self.scale = mapping.scale or Decimal(1)  # read for _Kind.SCALED only, never None there
        self.kind = _kind(base, mapping)
        self.formats = mapping.date_formats or DEFAULT_DATE_FORMATS
        items = base.get("items") if self.kind is _Kind.LIST else None
        self.symbols = (
            frozenset(base["symbols"])
            if self.kind is _Kind.ENUM
            else frozenset(items["symbols"])
            if isinstance(items, dict) and items.get("type") == "enum"
            else frozenset()
        )

    def joined(self, values: dict[str, str]) -> str | Problem:
        """The columns of a ``join`` (or of no column) read, or the ``column.missing`` problem."""
        parts = [values.get(column) for column in self.columns]
        if None in parts and not self.lenient:
            missing = [c for c, p in zip(self.columns, parts, strict=True) if p is None]
            return (self.name, "column.missing", f"column {', '.join(missing)} is missing")
        return self.separator.join(p or "" for p in parts)

    def convert(self, text: str) -> tuple[Any, Problem | None]:
        """The value of a non-empty ``text``, or the problem with it."""
        name = self.name
        if self.split_name is not None:
            parts = split_name(text)
            if isinstance(parts, tuple):
                return None, (name, *parts)
            text = parts.part(self.split_name)
        if self.kind is _Kind.LIST:
            return self._convert_list(text)
        if self.codes is not None:
            if text not in self.codes:
                known = ", ".join(sorted(self.codes))
                return None, (
                    name,
                    "code.unknown",
                    f"code {text!r} is not in the code table ({known})",
                )
            text = self.codes[text]
        kind = self.kind
        if kind is _Kind.TEXT:
            if len(text) > MAX_STRING:
                return None, (
                    name,
                    "size.too_long",
                    f"value has {len(text)} characters; at most {MAX_STRING}",
                )
            if self.validator:
                invalid = get_validator(self.validator)(text)
                if invalid is not None:
                    return None, (name, invalid.code, invalid.message)
            return text, None
        if kind is _Kind.DATE:
            parsed = parse_date(text, self.formats)
            if parsed is not None:
                return parsed, None
            listed = ", ".join(self.formats)
            return None, (name, "date.invalid", f"{text!r} is not a real date in any of: {listed}")
        if kind is _Kind.ENUM:
            if text not in self.symbols:
                return None, (
                    name,
                    "enum.unknown",
                    f"{text!r} is not one of {', '.join(self.base['symbols'])}",
                )
            return text, None
        return _convert_number(self, text)

    def _convert_list(self, text: str) -> tuple[Any, Problem | None]:
        """A list: the text split at ``|``, ``,``, ``;`` or ``、``, each item through the code
        table and checked against the enum's symbols; each item once, in order."""
        name = self.name
        out: list[str] = []
        for raw in _LIST_SEPARATORS.split(text):
            item = raw.strip()
            if not item:
                continue
            if self.codes is not None:
                if item not in self.codes:
                    known = ", ".join(sorted(self.codes))
                    return None, (
                        name,
                        "code.unknown",
                        f"code {item!r} is not in the code table ({known})",
                    )
                item = self.codes[item]
            if self.symbols and item not in self.symbols:
                return None, (
                    name,
                    "enum.unknown",
                    f"{item!r} is not one of {', '.join(sorted(self.symbols))}",
                )
            if item not in out:
                out.append(item)
        return out, None


_LIST_SEPARATORS: Final = re.compile(r"[|,;、]")


def _convert_number(field: _Field, text: str) -> tuple[Any, Problem | None]:
    name = field.name
    if field.kind is _Kind.SCALED:
        result = scaled(text, field.scale, field.base)
        if isinstance(result, tuple):
            return None, (name, *result)
        return result, None
    if field.kind is _Kind.INTEGER:
        try:
            return int(text), None
        except ValueError:
            return None, (name, "type.integer", f"{text!r} is not a whole number")
    if field.kind is _Kind.NUMBER:
        try:
            return float(text), None
        except ValueError:
            return None, (name, "type.number", f"{text!r} is not a number")
    lowered = text.lower()  # _Kind.BOOLEAN
    if lowered in _TRUE:
        return True, None
    if lowered in _FALSE:
        return False, None
    return None, (name, "type.boolean", f"{text!r} is not true or false")


class RowMapper:
    """:func:`map_row` for one definition and standard, with every per-field decision (its
    columns, transforms, conversion) taken once, when it is built.

    The definition is read when the mapper is built: a definition changed afterwards
    needs a new mapper (:func:`map_row` builds one when ``definition.fields`` changes).
    """

    def __init__(self, definition: ConnectorDefinition, standard: Standard) -> None:
        self.definition = definition
        self.standard = standard
        self._fields = tuple(
            _Field(spec, definition.fields.get(spec.name)) for spec in standard.fields
        )
        self._read = dict(definition.fields)  # what the mapper was built from

    def map(
        self, values: dict[str, str], flags: list[Problem] | None = None
    ) -> tuple[dict[str, Any], list[Problem]]:
        """As :func:`map_row`."""
        record: dict[str, Any] = {}
        problems: list[Problem] = []
        for field in self._fields:
            spec = field.spec
            if field.mapping is None:
                if spec.has_default:
                    record[field.name] = spec.default
                continue
            column = field.single
            if column is not None:  # most fields: read inline, the loop's hot path
                found = values.get(column)
                if found is None:
                    if not field.lenient:
                        problems.append(
                            (field.name, "column.missing", f"column {column} is missing")
                        )
                        continue
                    found = ""
                text = found
            else:
                joined = field.joined(values)
                if isinstance(joined, tuple):
                    problems.append(joined)
                    continue
                text = joined
            for step in field.transforms:
                text = step(text)
            if text == "" and field.default is not None:
                text = field.default
            if text == "":
                if spec.required:
                    problems.append((field.name, "required.missing", "required value is empty"))
                elif spec.optional_declared and not field.mapping.optional:
                    problems.append(
                        (
                            field.name,
                            "required.missing",
                            f"value is empty, and the definition does not declare "
                            f"[fields.{field.name}] optional = true",
                        )
                    )
                else:
                    record[field.name] = spec.default if spec.has_default else None
                continue
            value, problem = field.convert(text)
            if problem:
                problems.append(problem)
                continue
            record[field.name] = value
            if flags is not None and field.validator and isinstance(value, str):
                flag = get_flag(field.validator, value)
                if flag is not None:
                    flags.append((field.name, flag.code, flag.message))
        return record, problems


_MAPPERS: dict[tuple[int, int], RowMapper] = {}
_MAPPERS_KEPT = 32  # definitions a process maps with at once: one a connector, a few in tests


def _mapper(definition: ConnectorDefinition, standard: Standard) -> RowMapper:
    """The mapper for this definition and standard, built on first use and kept."""
    key = (id(definition), id(standard))
    mapper = _MAPPERS.get(key)
    if (
        mapper is None
        or mapper.definition is not definition
        or mapper.standard is not standard
        or mapper._read != definition.fields
    ):
        if len(_MAPPERS) >= _MAPPERS_KEPT:
            _MAPPERS.clear()
        mapper = _MAPPERS[key] = RowMapper(definition, standard)
    return mapper


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
    return _mapper(definition, standard).map(values, flags)


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """The record with dates as ISO strings, for JSON storage and responses."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in record.items()}
