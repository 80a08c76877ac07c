"""Schema compatibility: can one Avro schema read data written with another?

The registry refuses a new version of a subject's schema when it breaks the
subject's compatibility level (Confluent's levels, :class:`CompatibilityLevel`).
A level is a set of reader/writer checks, and each check follows Avro's
schema-resolution rules (specification 1.11.1, "Schema Resolution"): field
defaults, the numeric and string/bytes promotions, union branches, enum symbols
and enum defaults, names and aliases, fixed sizes, and decimal parameters.

We walk Apache Avro's parsed schemas (``avro.schema``) ourselves rather than
return what ``avro.compatibility.ReaderWriterCompatibilityChecker`` says. Its
verdicts follow the Java reference (which Confluent's registry uses) and we keep
them, except where it falls short of the specification; the unit tests run the
raw checker beside ours on every case and pin each difference:

* A type alias relative to the reader's namespace ("aliases": ["Old"] in
  namespace "gov.uk") never matches: the checker compares the alias as written
  with the writer's full name. The specification resolves it to "gov.uk.Old".
* Decimals: the specification says two decimals match only if their precision
  and scale match; the checker (and Java, AVRO-2078) ignores both, so a scale
  change that silently rescales every value passed. We refuse it. Every other
  logical type is ignored for resolution, as the specification says: a ``date``
  reads an ``int``, and ``timestamp-millis`` reads ``timestamp-micros``.
* A reader field of an enum type with an enum default but no field default,
  missing from the writer, is reported by the checker as a type mismatch between
  the enum and the whole writer record. It is a missing field default.
* Aliases that are a string rather than a list are accepted by ``avro.schema``
  and then matched as substrings ("OldPerson" aliased "Person"). We refuse such a
  schema as invalid, as the Java parser does.
* Diagnostics: the checker returns sets of messages and JSON-pointer locations
  that cannot be paired with its list of rules, resets the location inside
  unions, and reports a changed record inside a union only as "reader union
  lacking writer type: RECORD". We report each break with its rule, a dotted
  path ("Person.address.street", "Person.tags[]" for array items,
  "Person.labels{}" for map values) and a sentence naming the field.

A reader union reads a writer type when any branch can (the reference's rule;
the specification's "first matching branch" gives the same verdict for every
union Avro allows). When no branch can, the branch the writer's type selects
(same name, or same or promotable type) explains why.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import avro.errors
import avro.schema
from avro.schema import (
    ArraySchema,
    DecimalLogicalSchema,
    EnumSchema,
    FixedSchema,
    MapSchema,
    NamedSchema,
    RecordSchema,
    Schema,
    UnionSchema,
)

from exchange.core.errors import InvalidSchemaError

__all__ = [
    "CompatibilityLevel",
    "Direction",
    "Incompatibility",
    "Rule",
    "check_level",
    "check_pair",
]


class CompatibilityLevel(StrEnum):
    """Confluent's compatibility levels; the values are the registry API's strings."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


class Rule(StrEnum):
    """Stable machine names of the resolution rules a schema can break."""

    READER_FIELD_MISSING_DEFAULT_VALUE = "reader_field_missing_default_value"
    TYPE_MISMATCH = "type_mismatch"
    NAME_MISMATCH = "name_mismatch"
    MISSING_ENUM_SYMBOLS = "missing_enum_symbols"
    MISSING_UNION_BRANCH = "missing_union_branch"
    FIXED_SIZE_MISMATCH = "fixed_size_mismatch"
    DECIMAL_MISMATCH = "decimal_mismatch"


class Direction(StrEnum):
    """Which schema reads and which wrote: the first two for levels, the last for pairs."""

    NEW_READS_OLD = "new schema reading old data"
    OLD_READS_NEW = "old schema reading new data"
    READER_READS_WRITER = "reader schema reading writer data"


@dataclass(frozen=True)
class Incompatibility:
    """One way a reader schema cannot read data written with a writer schema."""

    rule: Rule
    location: str
    message: str
    direction: Direction
    version: int | None = None


_TRANSITIVE = {level for level in CompatibilityLevel if level.endswith("_TRANSITIVE")}
_NEW_READS_OLD = {level for level in CompatibilityLevel if level.startswith(("BACKWARD", "FULL"))}
_OLD_READS_NEW = {level for level in CompatibilityLevel if level.startswith(("FORWARD", "FULL"))}

# (writer type, reader type) pairs the reader may promote.
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}

_ITEMS = "[]"
_VALUES = "{}"


def check_pair(reader: str | dict[str, Any], writer: str | dict[str, Any]) -> list[Incompatibility]:
    """Why ``reader`` cannot read data written with ``writer``; empty if it can.

    Raises :class:`InvalidSchemaError` if either is not a valid Avro schema.
    """
    return _compare(
        _parse(reader, "the reader schema"),
        _parse(writer, "the writer schema"),
        Direction.READER_READS_WRITER,
        None,
    )


def check_level(
    level: CompatibilityLevel | str,
    new: str | dict[str, Any],
    existing: Sequence[tuple[int, str | dict[str, Any]]],
) -> list[Incompatibility]:
    """Why ``new`` may not follow ``existing`` (``(version, schema)``, oldest first) at ``level``.

    BACKWARD: the new schema reads the latest version's data; FORWARD: the latest
    version reads the new schema's data; FULL: both. The ``_TRANSITIVE`` levels
    check every existing version instead of the latest. NONE and an empty history
    allow anything. Each result names the version it clashes with.

    Raises :class:`InvalidSchemaError` if the new schema (at any level) or an
    existing version it is compared with is not a valid Avro schema, and
    ``ValueError`` for an unknown level.
    """
    level = CompatibilityLevel(level)
    new_schema = _parse(new, "the new schema")
    if level is CompatibilityLevel.NONE or not existing:
        return []
    against = existing if level in _TRANSITIVE else existing[-1:]
    found: list[Incompatibility] = []
    for version, schema in against:
        old = _parse(schema, f"version {version}")
        if level in _NEW_READS_OLD:
            found += _compare(new_schema, old, Direction.NEW_READS_OLD, version)
        if level in _OLD_READS_NEW:
            found += _compare(old, new_schema, Direction.OLD_READS_NEW, version)
    return found


def _parse(schema: str | dict[str, Any], what: str) -> Schema:
    try:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        # The specification says to ignore an unknown or invalid logical type and use
        # the underlying type; avro.schema does, and warns each time. catch_warnings
        # swaps process-wide filters, so a thread parsing at the same moment may miss
        # or see one of these warnings: harmless, as they carry nothing we act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
            parsed: Schema = avro.schema.parse(text)
    except (avro.errors.AvroException, TypeError, ValueError) as exc:
        raise InvalidSchemaError(f"{what} is not a valid Avro schema: {exc}") from exc
    _check_aliases(parsed, what)
    return parsed


def _check_aliases(schema: Schema, what: str) -> None:
    """Refuse aliases that are not a list of names (avro.schema accepts any value)."""
    seen: set[int] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, NamedSchema):
            _require_names(node.get_prop("aliases"), f"{node.type} '{node.name}'", what)
        if isinstance(node, RecordSchema):
            for field in node.fields:
                _require_names(field.get_prop("aliases"), f"field '{field.name}'", what)
                stack.append(field.type)
        elif isinstance(node, ArraySchema):
            stack.append(node.items)
        elif isinstance(node, MapSchema):
            stack.append(node.values)
        elif isinstance(node, UnionSchema):
            stack.extend(node.schemas)


def _require_names(aliases: object, owner: str, what: str) -> None:
    if aliases is None:
        return
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidSchemaError(
            f"{what} is not a valid Avro schema: the aliases of {owner} must be a list of names"
        )


@dataclass(frozen=True)
class _Finding:
    """A broken rule, located by a path relative to the schema pair where it was found."""

    rule: Rule
    path: tuple[str, ...]
    reader: Schema
    writer: Schema
    writer_branch: bool = False  # the writer type is one branch of a writer union


def _under(step: str, findings: list[_Finding]) -> list[_Finding]:
    return [replace(f, path=(step, *f.path)) for f in findings]


class _Resolver:
    """One walk over a reader/writer pair, remembering pairs so recursive types end."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, int], list[_Finding]] = {}
        self._active: set[tuple[int, int]] = set()

    def resolve(self, reader: Schema, writer: Schema) -> list[_Finding]:
        key = (id(reader), id(writer))
        if key in self._done:
            return self._done[key]
        if key in self._active:
            # Recursion: assume the pair resolves; a break in it is reported where the
            # cycle began, as in the reference checker.
            return []
        self._active.add(key)
        try:
            if isinstance(writer, UnionSchema):
                # Any branch may have been written, so the reader must read them all.
                found = [f for b in writer.schemas for f in self._branch(reader, b, True)]
            else:
                found = self._branch(reader, writer, False)
        finally:
            self._active.discard(key)
        self._done[key] = found
        return found

    def _branch(self, reader: Schema, writer: Schema, writer_branch: bool) -> list[_Finding]:
        if not isinstance(reader, UnionSchema):
            return self._match(reader, writer, writer_branch)
        selected: list[_Finding] | None = None
        for branch in reader.schemas:
            found = self.resolve(branch, writer)
            if not found:
                return []
            if selected is None and _selects(branch, writer):
                selected = found
        if selected is not None:
            return selected
        return [_Finding(Rule.MISSING_UNION_BRANCH, (), reader, writer, writer_branch)]

    def _match(self, reader: Schema, writer: Schema, writer_branch: bool) -> list[_Finding]:
        if reader.type != writer.type:
            if (writer.type, reader.type) in _PROMOTIONS:
                return []
            return [_Finding(Rule.TYPE_MISMATCH, (), reader, writer, writer_branch)]
        # Same type from here on, so the writer is of the reader's class too.
        if isinstance(reader, ArraySchema) and isinstance(writer, ArraySchema):
            return _under(_ITEMS, self.resolve(reader.items, writer.items))
        if isinstance(reader, MapSchema) and isinstance(writer, MapSchema):
            return _under(_VALUES, self.resolve(reader.values, writer.values))
        found = []
        if not _names_agree(reader, writer):
            found.append(_Finding(Rule.NAME_MISMATCH, (), reader, writer))
        if isinstance(reader, FixedSchema) and reader.size != writer.get_prop("size"):
            found.append(_Finding(Rule.FIXED_SIZE_MISMATCH, (), reader, writer))
        if _missing_symbols(reader, writer):
            found.append(_Finding(Rule.MISSING_ENUM_SYMBOLS, (), reader, writer))
        if isinstance(reader, RecordSchema) and isinstance(writer, RecordSchema):
            found += self._fields(reader, writer)
        if _decimal(reader) and _decimal(writer) and _decimal(reader) != _decimal(writer):
            found.append(_Finding(Rule.DECIMAL_MISMATCH, (), reader, writer))
        return found

    def _fields(self, reader: RecordSchema, writer: RecordSchema) -> list[_Finding]:
        written = {field.name: field for field in writer.fields}
        found = []
        for field in reader.fields:
            names = [field.name, *_aliases(field)]
            source = next((written[n] for n in names if n in written), None)
            if source is not None:
                found += _under(field.name, self.resolve(field.type, source.type))
            elif not field.has_default:
                rule = Rule.READER_FIELD_MISSING_DEFAULT_VALUE
                found.append(_Finding(rule, (field.name,), field.type, writer))
        return found


def _selects(reader: Schema, writer: Schema) -> bool:
    """Whether a reader union branch is the one the writer's type selects."""
    if reader.type != writer.type:
        return (writer.type, reader.type) in _PROMOTIONS
    return _names_agree(reader, writer)


def _names_agree(reader: Schema, writer: Schema) -> bool:
    """Same unqualified name (as the reference has it), or a reader alias for the writer's.

    Aliases resolve against the reader's namespace, as the specification says.
    """
    if not isinstance(reader, NamedSchema) or not isinstance(writer, NamedSchema):
        return True
    if reader.name == writer.name:
        return True
    namespace = reader.namespace
    aliases = {
        alias if "." in alias or not namespace else f"{namespace}.{alias}"
        for alias in _aliases(reader)
    }
    return writer.fullname in aliases


def _aliases(owner: NamedSchema | avro.schema.Field) -> list[str]:
    aliases = owner.get_prop("aliases")  # a list of names: _check_aliases made sure
    return [a for a in aliases if isinstance(a, str)] if isinstance(aliases, list) else []


def _missing_symbols(reader: Schema, writer: Schema) -> list[str]:
    """Symbols the writer enum may hold that the reader enum can neither read nor default."""
    if not isinstance(reader, EnumSchema) or not isinstance(writer, EnumSchema):
        return []
    if reader.get_prop("default") in reader.symbols:
        return []
    return [symbol for symbol in writer.symbols if symbol not in reader.symbols]


def _decimal(schema: Schema) -> tuple[int, int] | None:
    """(precision, scale) of a valid decimal; avro.schema parses an invalid one as plain."""
    if not isinstance(schema, DecimalLogicalSchema):
        return None
    precision, scale = schema.get_prop("precision"), schema.get_prop("scale")
    return (precision, scale) if isinstance(precision, int) and isinstance(scale, int) else None


def _compare(
    reader: Schema, writer: Schema, direction: Direction, version: int | None
) -> list[Incompatibility]:
    root = next((s.name for s in (reader, writer) if isinstance(s, NamedSchema)), "(root)")
    if direction is Direction.NEW_READS_OLD:
        labels = ("the new schema", f"version {version}")
    elif direction is Direction.OLD_READS_NEW:
        labels = (f"version {version}", "the new schema")
    else:
        labels = ("the reader schema", "the writer schema")
    return [
        Incompatibility(
            rule=f.rule,
            location=root + _path(f.path, leading_dot=True),
            message=f"{_what(f, direction, *labels)}: readers using {labels[0]} "
            f"cannot read data written with {labels[1]}",
            direction=direction,
            version=version,
        )
        for f in _Resolver().resolve(reader, writer)
    ]


def _path(path: Sequence[str], *, leading_dot: bool) -> str:
    text = "".join(step if step in (_ITEMS, _VALUES) else f".{step}" for step in path)
    return text if leading_dot else text.removeprefix(".")


def _subject(path: Sequence[str]) -> str:
    if not path:
        return "the schema"
    if path[-1] == _ITEMS:
        return f"each array item of {_subject(path[:-1])}"
    if path[-1] == _VALUES:
        return f"each map value of {_subject(path[:-1])}"
    return f"field '{_path(path, leading_dot=False)}'"


def _describe(schema: Schema) -> str:
    decimal = _decimal(schema)
    if decimal is not None:
        return f"decimal({decimal[0]}, {decimal[1]})"
    if isinstance(schema, NamedSchema):
        return f"{schema.type} '{schema.name}'"
    if isinstance(schema, UnionSchema):
        return "union [" + ", ".join(_describe(b) for b in schema.schemas) + "]"
    logical = schema.get_prop("logicalType")
    return f"{schema.type} ({logical})" if isinstance(logical, str) else str(schema.type)


def _what(f: _Finding, direction: Direction, reading: str, written: str) -> str:
    """The broken rule in plain words, naming the field."""
    subject, r, w = _subject(f.path), _describe(f.reader), _describe(f.writer)
    if f.rule is Rule.READER_FIELD_MISSING_DEFAULT_VALUE:
        field = _path(f.path, leading_dot=False)
        if direction is Direction.NEW_READS_OLD:
            text = f"field '{field}' was added without a default"
        elif direction is Direction.OLD_READS_NEW:
            text = f"field '{field}' was removed, and {reading} has no default for it"
        else:
            text = f"field '{field}' is missing from {written} and has no default in {reading}"
        if isinstance(f.reader, EnumSchema) and f.reader.get_prop("default") is not None:
            text += " (the enum's own default stands in for unknown symbols, not a missing field)"
        return text
    if f.rule is Rule.TYPE_MISMATCH and f.writer_branch:
        return f"{subject} may be {w} in {written} but is {r} in {reading}, which cannot read it"
    if f.rule is Rule.TYPE_MISMATCH:
        return f"{subject} is {w} in {written} but {r} in {reading}, and {w} cannot be read as {r}"
    if f.rule is Rule.MISSING_UNION_BRANCH:
        is_ = "may be" if f.writer_branch else "is"
        return f"{subject} {is_} {w} in {written}, which no branch of {r} in {reading} can read"
    if f.rule is Rule.NAME_MISMATCH and isinstance(f.writer, NamedSchema):
        return (
            f"{subject} is {w} in {written} but {r} in {reading}, "
            f"which has no alias '{f.writer.fullname}'"
        )
    if f.rule is Rule.MISSING_ENUM_SYMBOLS:
        return (
            f"{subject} may hold {', '.join(_missing_symbols(f.reader, f.writer))} in {written}, "
            f"which {r} in {reading} lacks and has no enum default for"
        )
    if f.rule is Rule.FIXED_SIZE_MISMATCH:
        return (
            f"{subject} is {w} of {f.writer.get_prop('size')} bytes in {written} "
            f"but of {f.reader.get_prop('size')} bytes in {reading}"
        )
    return (  # Rule.DECIMAL_MISMATCH
        f"{subject} is {w} in {written} but {r} in {reading}; "
        "decimals match only when precision and scale are equal"
    )
