"""Confluent's Avro schema normalisation (``normalize=true``), as a pure function.

What Confluent's registry does (confluentinc/schema-registry, read at 794611b; Apache
Avro 1.12.1, the Java library it parses with):

- ``AbstractSchemaRegistry.maybeValidateAndNormalizeSchema``
  (core/.../storage/AbstractSchemaRegistry.java) calls ``ParsedSchema.normalize()`` and
  stores ``canonicalString()`` of the result; lookups compare the same form.
- ``AvroSchema.normalize()`` (client/.../avro/AvroSchema.java) re-parses
  ``AvroSchemaUtils.toNormalizedString`` and keeps the references sorted and distinct
  (``references.stream().sorted().distinct()``: the caller's business, not ours).
- ``AvroSchemaUtils.toNormalizedString`` / ``build`` (client/.../avro/AvroSchemaUtils.java)
  writes the parsed schema back: names fully qualified, a named type in full at its first
  use and by name after (a referenced type always by name); custom properties sorted
  (``setSimpleProps``: a TreeMap); aliases of types and fields sorted and distinct
  (TreeSet); a record's, enum's or fixed's ``doc`` only when not empty, a field's
  whenever present; an enum's ``default``; a field's ``default`` as
  ``Field.defaultVal()`` converts it (Avro's ``JacksonUtils.toObject``: by the field's
  type, and by a union's first branch: ``1`` for a double is ``1.0``, a default that
  does not fit the first branch is dropped); every property is kept (logicalType,
  precision, scale and unknown ones), and a primitive without properties collapses to
  its name (``{"type": "int"}`` is ``"int"``); ``"error"`` is written ``"record"``.
- ``canonicalString()`` is Avro's ``Schema.toString(referencedSchemas, false)``
  (lang/java/avro/.../Schema.java, ``toJson``): keys in the order type, name,
  namespace, doc, fields/symbols/size/items/values, default, props, aliases (fields:
  name, type, doc, default, order, aliases, props); names relative to the enclosing
  namespace (``Name.writeName``, ``getQualified``); ``order`` only when not ascending.

Avro's parser (``Schema.parse``) drops what it does not read: reserved keys a type does
not use (``doc`` on a primitive, ``size`` on a record), properties on a name reference
(``{"type": "R", "x": 1}`` is ``"R"``), a ``doc`` that is not a string. So schemas
differing only in key order, whitespace, ``{"type": "int"}`` against ``"int"``, a
namespace written apart or in the name, ``"order": "ascending"``, alias order, an empty
type ``doc`` or the spelling of a default's number normalise to the same text.

Where we differ: names and defaults are always checked as on registration (Confluent's
lookups skip both); what fastavro cannot read is refused (forward references,
redefinitions, a null-namespace type named inside a namespace, properties on a name
reference), as the registry reads schemas with fastavro; every name defined in ``named``
stays a name (Confluent inlines a type nested in a reference at its first use, which
redefines it); key order of Confluent's own logical types ("map", "variant") may differ.
Like Confluent's, the form is idempotent except for an alias spelled ".Name" in a
namespaced type, which Avro writes "Name" (then read in the namespace).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType

from exchange.core.errors import InvalidSchemaError

__all__ = ["normalized_form"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# Avro's Schema.Type names: a name equal to one is always written qualified.
_TYPE_NAMES = PRIMITIVES | {"record", "enum", "array", "map", "union", "fixed"}
_SCHEMA_RESERVED = frozenset(
    {"doc", "fields", "items", "name", "namespace", "size", "symbols", "values", "type", "aliases"}
)
_ENUM_RESERVED = _SCHEMA_RESERVED | {"default"}
_FIELD_RESERVED = frozenset({"default", "doc", "name", "order", "type", "aliases"})
_ORDERS = {"ASCENDING": "ascending", "DESCENDING": "descending", "IGNORE": "ignore"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
# Double.parseDouble's decimal forms (a float or double field's default may be a string).
_JAVA_DOUBLE = re.compile(
    r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)\Z",
)
_LOGICAL_INCOMPATIBLE = ("avro.java.string", "java-class", "java-key-class", "java-element-class")
_LOGICAL_BASES = {
    "big-decimal": {"bytes"},
    "date": {"int"},
    "time-millis": {"int"},
    "time-micros": {"long"},
    "timestamp-millis": {"long"},
    "timestamp-micros": {"long"},
    "timestamp-nanos": {"long"},
    "local-timestamp-millis": {"long"},
    "local-timestamp-micros": {"long"},
    "local-timestamp-nanos": {"long"},
}


class _Missing:
    """Java's ``null`` from ``JacksonUtils.toObject``: a default that converts to nothing."""


_MISSING = _Missing()
_ABSENT = object()


# --- Avro's parsed schema, as much of it as the normal form needs -----------------------


@dataclass
class _Primitive:
    type: str
    props: dict[str, Any]


@dataclass
class _Array:
    items: _Node
    props: dict[str, Any]


@dataclass
class _Map:
    values: _Node
    props: dict[str, Any]


@dataclass
class _Union:
    branches: list[_Node]


@dataclass
class _Field:
    name: str
    type: _Node
    doc: str | None
    default: Any  # the JSON value, or _ABSENT
    order: str
    aliases: list[str]
    props: dict[str, Any]


@dataclass(eq=False)
class _Named:
    kind: str  # record, enum or fixed
    name: str
    space: str | None
    doc: str | None
    props: dict[str, Any] = field(default_factory=dict)
    aliases: list[tuple[str, str | None]] = field(default_factory=list)
    fields: list[_Field] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    enum_default: str | None = None
    size: int = 0

    @property
    def full(self) -> str:
        return self.name if self.space is None else f"{self.space}.{self.name}"


_Node = _Primitive | _Array | _Map | _Union | _Named


def _kind(node: _Node) -> str:
    if isinstance(node, _Primitive):
        return node.type
    if isinstance(node, _Array):
        return "array"
    if isinstance(node, _Map):
        return "map"
    if isinstance(node, _Union):
        return "union"
    return node.kind


# The message of a name used before (or without) its definition: a definition in
# ``named`` that fails so may only be waiting for another (see normalized_form).
_UNDEFINED = "Invalid schema: undefined name "


def _undefined(name: str) -> InvalidSchemaError:
    return InvalidSchemaError(f"{_UNDEFINED}{name!r}")


def _fail(message: str) -> InvalidSchemaError:
    return InvalidSchemaError(f"Invalid schema: {message}")


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"{what} {name!r} is not a valid Avro name ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _split_name(name: str, space: str | None) -> tuple[str, str | None]:
    """Avro's ``Schema.Name``: a dotted name carries its own namespace; "" is none."""
    if "." in name:
        space, name = name.rsplit(".", 1)
    return name, (space or None)


class _Parser:
    """Avro's ``Schema.parse`` (1.12.1) with the registry's strict name validator."""

    def __init__(self, names: dict[str, _Named]) -> None:
        self.names = names

    def parse(self, node: Any, space: str | None) -> _Node:
        if isinstance(node, str):
            return self._reference(node, space)
        if isinstance(node, list):
            return self._union(node, space)
        if not isinstance(node, Mapping):
            raise _fail(f"a schema is a name, an object or a list (union), not {node!r}")
        kind = node.get("type")
        if not isinstance(kind, str):
            raise _fail(f"no type (a string) in {_show(node)}")
        if kind in PRIMITIVES:
            return _Primitive(kind, _props(node, _SCHEMA_RESERVED))
        if kind in ("record", "error", "enum", "fixed"):
            return self._named(node, "record" if kind == "error" else kind, space)
        if kind == "array":
            if "items" not in node:
                raise _fail(f"array has no items type: {_show(node)}")
            return _Array(self.parse(node["items"], space), _props(node, _SCHEMA_RESERVED))
        if kind == "map":
            if "values" not in node:
                raise _fail(f"map has no values type: {_show(node)}")
            return _Map(self.parse(node["values"], space), _props(node, _SCHEMA_RESERVED))
        return self._reference(kind, space)  # {"type": "Name", ...}: its other keys are lost

    def _reference(self, name: str, space: str | None) -> _Node:
        if name in PRIMITIVES:
            return _Primitive(name, {})
        full = name if space is None or "." in name else f"{space}.{name}"
        found = self.names.get(full) or self.names.get(name)
        if found is None:
            raise _undefined(full)
        return found

    def _union(self, node: list[Any], space: str | None) -> _Union:
        branches = [self.parse(branch, space) for branch in node]
        seen: set[str] = set()
        for branch in branches:
            if isinstance(branch, _Union):
                raise _fail(f"nested union in {_show(node)}")
            key = branch.full if isinstance(branch, _Named) else _kind(branch)
            if key in seen:
                raise _fail(f"duplicate in union: {key}")
            seen.add(key)
        return _Union(branches)

    def _named(self, node: Mapping[str, Any], kind: str, space: str | None) -> _Named:
        raw_name = node.get("name")
        if not isinstance(raw_name, str):
            raise _fail(f"no name in {_show(node)}")
        given_space = node.get("namespace")
        if given_space is not None and not isinstance(given_space, str):
            raise _fail(f"namespace {given_space!r} is not a string")
        name, own_space = _split_name(raw_name, space if given_space is None else given_space)
        _check_name(name, "name")
        for part in (own_space or "").split(".") if own_space else ():
            _check_name(part, "namespace part")
        doc = node.get("doc")
        named = _Named(kind, name, own_space, doc if isinstance(doc, str) else None)
        if named.full in PRIMITIVES:
            raise _fail(f"a named type may not be called {named.full!r}")
        if named.full in self.names:
            raise _fail(f"can't redefine {named.full!r}")
        self.names[named.full] = named
        if kind == "record":
            self._fields(node, named)
        elif kind == "enum":
            self._enum(node, named)
        else:
            size = node.get("size")
            if type(size) is not int or not 0 <= size <= _INT32[1]:
                raise _fail(f"invalid or no size in {_show(node)}")
            named.size = size
        named.props = _props(node, _ENUM_RESERVED if kind == "enum" else _SCHEMA_RESERVED)
        for alias in _aliases(node):
            alias_name, alias_space = _split_name(alias, own_space)
            _check_name(alias_name, "alias")
            if (alias_name, alias_space) not in named.aliases:
                named.aliases.append((alias_name, alias_space))
        return named

    def _fields(self, node: Mapping[str, Any], record: _Named) -> None:
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise _fail(f"record has no fields: {_show(node)}")
        for raw in fields:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
                raise _fail(f"no field name in {raw!r}")
            name = _check_name(raw["name"], "field name")
            if any(f.name == name for f in record.fields):
                raise _fail(f"duplicate field {name} in record {record.full}")
            if "type" not in raw:
                raise _fail(f"no type for field {name}")
            field_type = self.parse(raw["type"], record.space)
            order = raw.get("order", "ascending")
            if not isinstance(order, str) or order.upper() not in _ORDERS:
                raise _fail(f"field {name}: order {order!r} is not ascending, descending or ignore")
            default = raw.get("default", _ABSENT)
            if (
                isinstance(default, str)
                and isinstance(field_type, _Primitive)
                and field_type.type in ("float", "double")
            ):
                default = _java_double(default, name)
            if default is not _ABSENT and not _valid_default(field_type, default):
                raise _fail(
                    f"invalid default for field {name}: {default!r} is not a {_kind(field_type)}"
                )
            doc = raw.get("doc")
            record.fields.append(
                _Field(
                    name=name,
                    type=field_type,
                    doc=doc if isinstance(doc, str) else None,
                    default=default,
                    order=_ORDERS[order.upper()],
                    aliases=list(dict.fromkeys(_aliases(raw))),
                    props=_props(raw, _FIELD_RESERVED),
                )
            )

    @staticmethod
    def _enum(node: Mapping[str, Any], enum: _Named) -> None:
        symbols = node.get("symbols")
        if not isinstance(symbols, list):
            raise _fail(f"enum has no symbols: {_show(node)}")
        for symbol in symbols:
            _check_name(symbol, "enum symbol")
            if symbol in enum.symbols:
                raise _fail(f"duplicate enum symbol {symbol}")
            enum.symbols.append(symbol)
        default = node.get("default")
        if isinstance(default, str):  # Avro reads only a string (textValue)
            if default not in enum.symbols:
                raise _fail(f"enum default {default!r} is not one of the symbols {enum.symbols}")
            enum.enum_default = default


def _show(node: Any) -> str:
    text = json.dumps(node, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _props(node: Mapping[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if key not in reserved}


def _aliases(node: Mapping[str, Any]) -> list[str]:
    if "aliases" not in node:
        return []
    aliases = node["aliases"]
    if not isinstance(aliases, list):
        raise _fail(f"aliases not a list: {aliases!r}")
    for alias in aliases:
        if not isinstance(alias, str):
            raise _fail(f"alias not a string: {alias!r}")
    return aliases


def _java_double(text: str, field_name: str) -> float:
    """``Double.parseDouble``, which Avro applies to a float or double field's string default."""
    stripped = text.strip()
    if not _JAVA_DOUBLE.match(stripped):
        raise _fail(f"field {field_name}: default {text!r} is not a number")
    return float(stripped.rstrip("fFdD").replace("Infinity", "inf"))


# --- Defaults: Avro's Schema.isValidDefault and JacksonUtils.toObject --------------------


def _is_int(value: Any, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def _valid_default(schema: _Node, value: Any) -> bool:
    kind = _kind(schema)
    if kind in ("string", "bytes", "enum", "fixed"):
        return isinstance(value, str)
    if kind == "int":
        return _is_int(value, _INT32)
    if kind == "long":
        return _is_int(value, _INT64)
    if kind in ("float", "double"):
        return type(value) in (int, float)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(schema, _Array):
        return isinstance(value, list) and all(_valid_default(schema.items, v) for v in value)
    if isinstance(schema, _Map):
        return isinstance(value, Mapping) and all(
            _valid_default(schema.values, v) for v in value.values()
        )
    if isinstance(schema, _Union):
        return any(_valid_default(branch, value) for branch in schema.branches)
    if isinstance(schema, _Named) and schema.kind == "record":
        if not isinstance(value, Mapping):
            return False
        for f in schema.fields:
            given = value.get(f.name, f.default)
            if given is _ABSENT or not _valid_default(f.type, given):
                return False
        return True
    return False


def _to_object(value: Any, schema: _Node | None) -> Any:
    """``JacksonUtils.toObject(node, schema)`` and Confluent's ``genJson`` in one: the JSON
    a default becomes, or _MISSING where Java's conversion gives ``null``."""
    if isinstance(schema, _Union):
        if not schema.branches:
            raise _fail("a default for an empty union")
        return _to_object(value, schema.branches[0])
    kind = None if schema is None else _kind(schema)
    if value is None or isinstance(value, bool):
        return value
    if type(value) is int:
        if not _is_int(value, _INT64):
            return _MISSING  # a BigIntegerNode, which toObject does not convert
        if kind in (None, "int", "long"):
            return value
        if kind == "float":
            return _float32(value)
        if kind == "double":
            return float(value)
        return _MISSING
    if isinstance(value, float):
        if kind in (None, "double"):
            return value
        if kind == "float":
            return _float32(value)
        return _MISSING
    if isinstance(value, str):
        if kind in (None, "string", "enum"):
            return value
        if kind in ("bytes", "fixed"):  # through ISO-8859-1 bytes and back
            return "".join(c if ord(c) < 256 else "?" for c in value)
        return _MISSING
    if isinstance(value, list):
        if schema is not None and not isinstance(schema, _Array):
            raise _fail(f"default {_show(value)} converts as a {kind}, not an array")
        items = None if schema is None else schema.items
        return [_present(_to_object(v, items), value) for v in value]
    if isinstance(value, Mapping):
        converted = {}
        for key in sorted(value):
            sub: _Node | None = None
            if isinstance(schema, _Map):
                sub = schema.values
            elif isinstance(schema, _Named) and schema.kind == "record":
                match = [f for f in schema.fields if f.name == key]
                if not match:
                    raise _fail(f"default {_show(value)} has no field {key} in {schema.full}")
                sub = match[0].type
            converted[key] = _present(_to_object(value[key], sub), value)
        return converted
    raise _fail(f"{value!r} is not a JSON value")


def _present(converted: Any, whole: Any) -> Any:
    if converted is _MISSING:  # Confluent's genJson fails on Java's null inside a value
        raise _fail(f"default {_show(whole)} has a value that does not convert to its type")
    return converted


def _float32(value: float | int) -> float:
    """Java's ``(float)`` cast, written as ``Float.toString`` would (shortest digits)."""

    def narrow(x: float) -> float | None:
        try:
            result: float = struct.unpack("<f", struct.pack("<f", x))[0]
        except OverflowError:
            return None
        return result

    single = narrow(float(value))
    if single is None:
        return math.copysign(math.inf, value)
    if not math.isfinite(single):
        return single
    for digits in range(1, 10):
        shorter = float(f"{single:.{digits}g}")
        if narrow(shorter) == single:
            return shorter
    return single


# --- Writing: Confluent's build, then Avro's toJson ---------------------------------------


def _qualified(name: str, space: str | None, current: str | None) -> str:
    """Avro's ``Name.getQualified``: the short name within its own namespace."""
    if space is not None and space == current and name not in _TYPE_NAMES:
        return name
    return name if space is None else f"{space}.{name}"


def _logical_first(base: str, props: Mapping[str, Any], size: int = 0) -> list[str]:
    """The keys ``setLogicalProps`` writes first, when Avro (1.12.1) recognises the type."""
    logical = props.get("logicalType")
    if not isinstance(logical, str) or any(
        isinstance(props.get(key), str) for key in _LOGICAL_INCOMPATIBLE
    ):
        return []
    if logical == "decimal":
        precision: Any = props.get("precision")
        scale: Any = props.get("scale", 0)
        if not (_is_int(precision, _INT32) and _is_int(scale, _INT32)):
            return []
        if base == "bytes":
            most = _INT32[1]
        elif base == "fixed":
            most = math.floor(math.log10(2) * (8 * size - 1))
        else:
            return []
        if not (0 < precision <= most and 0 <= scale <= precision):
            return []
        return ["logicalType", "precision"] + (["scale"] if scale else [])
    if logical == "uuid":
        ok = base == "string" or (base == "fixed" and size == 16)
    elif logical == "duration":
        ok = base == "fixed" and size == 12
    else:
        ok = base in _LOGICAL_BASES.get(logical, ())
    return ["logicalType"] if ok else []


def _write_props(out: dict[str, Any], props: Mapping[str, Any], first: list[str]) -> None:
    for key in [*first, *sorted(k for k in props if k not in first)]:
        out[key] = _json(props[key])


def _json(value: Any) -> Any:
    """A property's value as Confluent writes it (``toJsonNode``: object keys sorted)."""
    if isinstance(value, Mapping):
        return {key: _json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if type(value) is int and not _is_int(value, _INT64):
        raise _fail(f"number {value} is out of range for a property")
    if isinstance(value, float) and not math.isfinite(value):
        return _java_non_finite(value)
    return value


def _java_non_finite(value: float) -> str:
    """Jackson writes NaN and the infinities as strings."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


class _Writer:
    def __init__(self, known: set[str]) -> None:
        self.known = known

    def write(self, node: _Node, current: str | None) -> Any:
        if isinstance(node, _Primitive):
            if not node.props:
                return node.type
            out: dict[str, Any] = {"type": node.type}
            _write_props(out, node.props, _logical_first(node.type, node.props))
            return out
        if isinstance(node, _Array):
            out = {"type": "array", "items": self.write(node.items, current)}
            _write_props(out, node.props, _logical_first("array", node.props))
            return out
        if isinstance(node, _Map):
            out = {"type": "map", "values": self.write(node.values, current)}
            _write_props(out, node.props, _logical_first("map", node.props))
            return out
        if isinstance(node, _Union):
            return [self.write(branch, current) for branch in node.branches]
        if node.full in self.known:
            return _qualified(node.name, node.space, current)
        self.known.add(node.full)
        return self._named(node, current)

    def _named(self, node: _Named, current: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": node.kind, "name": node.name}
        if node.space is not None and node.space != current:
            out["namespace"] = node.space
        elif node.space is None and current is not None:
            out["namespace"] = ""
        if node.doc:
            out["doc"] = node.doc
        if node.kind == "record":
            out["fields"] = [self._field(f, node.space) for f in node.fields]
        elif node.kind == "enum":
            out["symbols"] = list(node.symbols)
            if node.enum_default is not None:
                out["default"] = node.enum_default
        else:
            out["size"] = node.size
        _write_props(out, node.props, _logical_first(node.kind, node.props, node.size))
        if node.aliases:
            # TreeSet over getAliases(): full names, ".name" for the null namespace.
            def key(alias: tuple[str, str | None]) -> str:
                name, space = alias
                if space is None:
                    return f".{name}" if node.space is not None else name
                return f"{space}.{name}"

            ordered = sorted(node.aliases, key=key)
            out["aliases"] = [_qualified(name, space, node.space) for name, space in ordered]
        return out

    def _field(self, f: _Field, current: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": f.name, "type": self.write(f.type, current)}
        if f.doc is not None:
            out["doc"] = f.doc
        if f.default is not _ABSENT:
            converted = _to_object(f.default, f.type)
            if converted is not _MISSING:
                out["default"] = written = _json(converted)
                # Confluent parses the normal form again, defaults checked: a NaN or an
                # infinity, written as a string, passes only where a string or a float or
                # double field (which parses it) may stand.
                if isinstance(written, str) and _kind(f.type) in ("float", "double"):
                    written = _java_double(written, f.name)
                if not _valid_default(f.type, written):
                    raise _fail(
                        f"field {f.name}: default {_show(f.default)} normalises to an invalid one"
                    )
        if f.order != "ascending":
            out["order"] = f.order
        if f.aliases:
            out["aliases"] = sorted(f.aliases)
        _write_props(out, f.props, [])
        return out


# --- The function -----------------------------------------------------------------------


def _load(schema: Any, what: str) -> Any:
    if not isinstance(schema, str):
        return schema

    def no_constant(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    try:
        return json.loads(schema, parse_constant=no_constant)
    except ValueError as exc:
        raise _fail(f"{what} is not JSON: {exc}") from exc


def _fastavro(raw: Any, named_schemas: dict[str, Any]) -> None:
    """fastavro must read it too: the registry reads and serves schemas with fastavro."""
    try:
        parse_schema(raw, named_schemas, _ignore_default_error=True)
    except UnknownType as exc:
        raise _undefined(exc.name) from exc
    except (SchemaParseException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _fail(str(exc)) from exc


def normalized_form(
    schema: dict[str, Any] | list[Any] | str,
    named: Mapping[str, Any] | None = None,
) -> str:
    """The schema as Confluent's registry stores it when asked to ``normalize``.

    ``schema`` is a parsed Avro schema or its JSON text. ``named`` holds the schemas it
    takes named types from (schema references), parsed or as JSON text, in any order,
    by any key (the same definition under two keys is read once); every name they
    define stays a name in the result. Returns compact JSON text. Raises
    InvalidSchemaError if the schema or a definition in ``named`` is invalid, or two
    definitions in ``named`` define one name differently.
    """
    names: dict[str, _Named] = {}
    fastavro_names: dict[str, Any] = {}
    pending: list[tuple[str, Any]] = []
    texts: set[str] = set()
    for key, value in (named or {}).items():
        definition = _load(value, f"the definition of {key!r}")
        text = json.dumps(definition, sort_keys=True, default=str)
        if text not in texts:  # one definition under two names (reference name, full name)
            texts.add(text)
            pending.append((key, definition))
    while pending:  # in the order their names allow
        blocked: list[tuple[str, Any]] = []
        last: InvalidSchemaError | None = None
        for key, definition in pending:
            trial_names, trial_fastavro = dict(names), dict(fastavro_names)
            try:
                _fastavro(definition, trial_fastavro)
                _Parser(trial_names).parse(definition, None)
            except InvalidSchemaError as exc:
                if not exc.message.startswith(_UNDEFINED):
                    raise
                blocked.append((key, definition))
                last = exc
                continue
            names, fastavro_names = trial_names, trial_fastavro
        if last is not None and len(blocked) == len(pending):
            raise last
        pending = blocked
    referenced = set(names)
    raw = _load(schema, "the schema")
    _fastavro(raw, dict(fastavro_names))
    parsed = _Parser(names).parse(raw, None)
    written = _Writer(referenced).write(parsed, None)
    return json.dumps(written, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
