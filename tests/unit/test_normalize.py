"""Tests for schemas.normalize: Confluent's Avro normalisation (``normalize=true``).

The first two cases are Confluent's own (``AvroSchemaTest.testNormalization`` and
``testNormalizationPreservesMetadataForPrimitiveTypes`` in confluentinc/schema-registry,
avro-serializer/src/test/java/io/confluent/kafka/serializers/AvroSchemaTest.java), with
the exact text Confluent expects. The rest check which schemas fold together and which
stay apart, the properties (idempotent, the Parsing Canonical Form unchanged) over
generated record schemas, and the errors.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.errors import InvalidSchemaError
from schemas.normalize import normalized_form


def same(a: Any, b: Any) -> bool:
    return normalized_form(a) == normalized_form(b)


def pcf(schema: Any, named: dict[str, Any] | None = None) -> str:
    names: dict[str, Any] = {}
    for definition in (named or {}).values():
        parse_schema(definition, names, _ignore_default_error=True)
    raw = json.loads(schema) if isinstance(schema, str) else schema
    # fastavro refuses an integer default for {"type": "double", ...} with properties (not for
    # "double"); Avro accepts it, and the property tests generate it.
    return str(to_parsing_canonical_form(parse_schema(raw, names, _ignore_default_error=True)))


def record(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": list(fields), **extra}


# --- Confluent's own expectations --------------------------------------------------------


def test_confluent_normalization_case() -> None:
    schema = (
        '{"type":"record","name":"myrecord","doc":"hi\\"there","fields":'
        '[{"type":"string","name":"f1","doc":"bye\\"now"}]}'
    )
    expected = (
        '{"type":"record","name":"myrecord","doc":"hi\\"there","fields":'
        '[{"name":"f1","type":"string","doc":"bye\\"now"}]}'
    )
    assert normalized_form(schema) == expected


def test_confluent_preserves_metadata_for_primitive_types() -> None:
    schema = """{
      "connect.name": "some.scope.Envelope",
      "fields": [
        {"default": null, "name": "before", "type": ["null", {
          "connect.name": "some.scope.Value",
          "fields": [
            {"name": "created_at", "type": {"connect.name": "io.debezium.time.Timestamp",
                                            "connect.version": 1, "type": "long"}},
            {"name": "normal_long", "type": "long"}],
          "name": "Value", "type": "record"}]},
        {"default": null, "name": "after", "type": ["null", "Value"]}],
      "name": "Envelope", "namespace": "some.scope", "type": "record"}"""
    expected = (
        '{"type":"record","name":"Envelope","namespace":"some.scope","fields":['
        '{"name":"before","type":["null",{"type":"record","name":"Value","fields":['
        '{"name":"created_at","type":{"type":"long",'
        '"connect.name":"io.debezium.time.Timestamp","connect.version":1}},'
        '{"name":"normal_long","type":"long"}],"connect.name":"some.scope.Value"}],'
        '"default":null},'
        '{"name":"after","type":["null","Value"],"default":null}],'
        '"connect.name":"some.scope.Envelope"}'
    )
    assert normalized_form(schema) == expected
    assert normalized_form(expected) == expected


# --- What folds together -----------------------------------------------------------------

FOLD = {
    "key order and whitespace": (
        '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}',
        '{"fields":[{"type":"int","name":"a"}],"name":"R","type":"record"}',
    ),
    "primitive object without properties": (
        record({"name": "a", "type": {"type": "string"}}),
        record({"name": "a", "type": "string"}),
    ),
    "top-level primitive": ({"type": "long"}, '"long"'),
    "namespace spelled apart or in the name": (
        {"type": "record", "name": "R", "namespace": "gov.x", "fields": []},
        {"type": "record", "name": "gov.x.R", "fields": []},
    ),
    "nested name relative or fully qualified": (
        record(
            {"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A"]}},
            {"name": "b", "type": "E"},
            namespace="gov",
        ),
        record(
            {"name": "a", "type": {"type": "enum", "name": "gov.E", "symbols": ["A"]}},
            {"name": "b", "type": "gov.E"},
            name="gov.R",
        ),
    ),
    "explicit ascending order": (
        record({"name": "a", "type": "int", "order": "ascending"}),
        record({"name": "a", "type": "int"}),
    ),
    "order in capitals": (
        record({"name": "a", "type": "int", "order": "DESCENDING"}),
        record({"name": "a", "type": "int", "order": "descending"}),
    ),
    "alias order and repeats": (
        record(
            {"name": "a", "type": "int", "aliases": ["y", "x", "y"]},
            aliases=["Q", "P"],
            namespace="n",
        ),
        record(
            {"name": "a", "type": "int", "aliases": ["x", "y"]}, aliases=["n.P", "Q"], namespace="n"
        ),
    ),
    "empty aliases": (
        record({"name": "a", "type": "int", "aliases": []}, aliases=[]),
        record({"name": "a", "type": "int"}),
    ),
    "empty doc of a named type": (record(doc=""), record()),
    "doc on a primitive (a reserved key Avro does not keep there)": (
        record({"name": "a", "type": {"type": "int", "doc": "ignored"}}),
        record({"name": "a", "type": "int"}),
    ),
    "custom property order": (
        record(b=1, a={"y": 1, "x": 2}),
        record(a={"x": 2, "y": 1}, b=1),
    ),
    "a double's default as an integer": (
        record({"name": "a", "type": "double", "default": 1}),
        record({"name": "a", "type": "double", "default": 1.0}),
    ),
    "a double's default as a string (Double.parseDouble)": (
        record({"name": "a", "type": "double", "default": "1.5"}),
        record({"name": "a", "type": "double", "default": 1.5}),
    ),
    "a float's default narrowed to 32 bits": (
        record({"name": "a", "type": "float", "default": 0.1000000000001}),
        record({"name": "a", "type": "float", "default": 0.1}),
    ),
    "a union default not of the first branch is dropped": (
        record({"name": "a", "type": ["null", "int"], "default": 1}),
        record({"name": "a", "type": ["null", "int"]}),
    ),
    "a union default of the first branch converted by it": (
        record({"name": "a", "type": ["double", "null"], "default": 2}),
        record({"name": "a", "type": ["double", "null"], "default": 2.0}),
    ),
    "error is written record": (
        {"type": "error", "name": "E", "fields": []},
        {"type": "record", "name": "E", "fields": []},
    ),
    "reserved keys a type does not use": (
        record(size=4, items="int"),
        record(),
    ),
}


@pytest.mark.parametrize(("one", "other"), FOLD.values(), ids=FOLD.keys())
def test_folds_together(one: Any, other: Any) -> None:
    assert normalized_form(one) == normalized_form(other)


DIFFER = {
    "a decimal's scale": (
        {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
        {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 3},
    ),
    "a decimal's scale 0 written or not (properties are kept as given)": (
        {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 0},
        {"type": "bytes", "logicalType": "decimal", "precision": 6},
    ),
    "a logical type": ({"type": "int", "logicalType": "date"}, '"int"'),
    "an unknown logical type (kept as a property)": ({"type": "int", "logicalType": "x"}, '"int"'),
    "a default": (
        record({"name": "a", "type": "int", "default": 0}),
        record({"name": "a", "type": "int"}),
    ),
    "a default's value": (
        record({"name": "a", "type": "string", "default": "x"}),
        record({"name": "a", "type": "string", "default": "y"}),
    ),
    "a null default": (
        record({"name": "a", "type": ["null", "int"], "default": None}),
        record({"name": "a", "type": ["null", "int"]}),
    ),
    "a record's aliases": (record(aliases=["Old"]), record()),
    "a field's aliases": (
        record({"name": "a", "type": "int", "aliases": ["b"]}),
        record({"name": "a", "type": "int"}),
    ),
    "a record's doc": (record(doc="x"), record()),
    "a field's doc, even empty": (
        record({"name": "a", "type": "int", "doc": ""}),
        record({"name": "a", "type": "int"}),
    ),
    "a custom property": (
        record({"name": "a", "type": "int", "x": 1}),
        record({"name": "a", "type": "int"}),
    ),
    "an enum's default": (
        {"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "A"},
        {"type": "enum", "name": "E", "symbols": ["A", "B"]},
    ),
    "a field's order": (
        record({"name": "a", "type": "int", "order": "descending"}),
        record({"name": "a", "type": "int"}),
    ),
    "the namespace": (record(namespace="a"), record(namespace="b")),
    "a custom property on an array": (
        {"type": "array", "items": "int", "default": []},
        {"type": "array", "items": "int"},
    ),
}


@pytest.mark.parametrize(("one", "other"), DIFFER.values(), ids=DIFFER.keys())
def test_stays_apart(one: Any, other: Any) -> None:
    assert normalized_form(one) != normalized_form(other)


# --- The written form --------------------------------------------------------------------


def test_key_order_and_relative_names() -> None:
    schema = {
        "fields": [
            {"type": {"symbols": ["A"], "name": "x.E", "type": "enum", "doc": "e"}, "name": "e"},
            {"aliases": ["old"], "default": "A", "name": "f", "type": "x.E", "order": "ignore"},
            {"name": "g", "type": {"type": "fixed", "size": 16, "name": "F", "namespace": ""}},
            {"name": "h", "type": {"type": "map", "values": {"type": "array", "items": "x.E"}}},
        ],
        "doc": "r",
        "z": True,
        "name": "R",
        "namespace": "x",
        "type": "record",
    }
    assert normalized_form(schema) == (
        '{"type":"record","name":"R","namespace":"x","doc":"r","fields":['
        '{"name":"e","type":{"type":"enum","name":"E","doc":"e","symbols":["A"]}},'
        '{"name":"f","type":"E","default":"A","order":"ignore","aliases":["old"]},'
        '{"name":"g","type":{"type":"fixed","name":"F","namespace":"","size":16}},'
        '{"name":"h","type":{"type":"map","values":{"type":"array","items":"E"}}}],'
        '"z":true}'
    )


def test_logical_type_properties_first() -> None:
    schema = {
        "precision": 9,
        "type": "fixed",
        "name": "D",
        "size": 8,
        "logicalType": "decimal",
        "a": 1,
    }
    assert normalized_form(schema) == (
        '{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":9,"a":1}'
    )


def test_default_conversions() -> None:
    out = json.loads(
        normalized_form(
            record(
                {"name": "f", "type": "float", "default": 0.123456789},
                {"name": "b", "type": "bytes", "default": "é€"},
                {
                    "name": "m",
                    "type": {"type": "map", "values": "double"},
                    "default": {"z": 1, "a": 2},
                },
                {"name": "n", "type": "double", "default": "-Infinity"},
            )
        )
    )
    defaults = [f["default"] for f in out["fields"]]
    assert defaults == [0.12345679, "é?", {"a": 2.0, "z": 1.0}, "-Infinity"]
    assert list(defaults[2]) == ["a", "z"]


# --- References (named types defined elsewhere) ------------------------------------------

ADDRESS = {
    "type": "record",
    "name": "Address",
    "namespace": "gov",
    "fields": [
        {
            "name": "postcode",
            "type": {
                "type": "record",
                "name": "Postcode",
                "fields": [{"name": "c", "type": "string"}],
            },
        },
        {"name": "kind", "type": "gov.Kind"},
    ],
}
KIND = {"type": "enum", "name": "gov.Kind", "symbols": ["HOME", "WORK"]}
NAMED = {"gov.Address": ADDRESS, "gov.Kind": KIND}  # Address uses Kind: order does not matter


def test_referenced_names_stay_names() -> None:
    schema = {
        "type": "record",
        "name": "Person",
        "namespace": "gov",
        "fields": [
            {"name": "home", "type": "gov.Address"},
            {"name": "work", "type": ["null", "Address"], "default": None},
            {"name": "code", "type": "gov.Postcode"},
            {"name": "kind", "type": "Kind", "default": "HOME"},
        ],
    }
    out = normalized_form(schema, NAMED)
    assert out == (
        '{"type":"record","name":"Person","namespace":"gov","fields":['
        '{"name":"home","type":"Address"},'
        '{"name":"work","type":["null","Address"],"default":null},'
        '{"name":"code","type":"Postcode"},'
        '{"name":"kind","type":"Kind","default":"HOME"}]}'
    )
    assert normalized_form(out, NAMED) == out
    assert pcf(out, {"k": KIND, "a": ADDRESS}) == pcf(schema, {"k": KIND, "a": ADDRESS})
    assert normalized_form('"gov.Address"', NAMED) == '"gov.Address"'
    elsewhere = {"type": "record", "name": "P", "fields": [{"name": "a", "type": "gov.Address"}]}
    assert json.loads(normalized_form(elsewhere, NAMED))["fields"][0]["type"] == "gov.Address"


def test_one_definition_under_two_names_and_definitions_of_no_name() -> None:
    """As the store passes them: by reference name and by full name; a reference to a
    schema that is no named type is allowed (as in Confluent's registry) and unused."""
    schema = record({"name": "k", "type": "gov.Kind"})
    named = {"Kind": KIND, "gov.Kind": KIND, "n": {"type": "int"}, "s": '"string"'}
    assert normalized_form(schema, named) == (
        '{"type":"record","name":"R","fields":[{"name":"k","type":"gov.Kind"}]}'
    )


def test_a_default_of_a_referenced_record_converts_by_its_fields() -> None:
    schema = record(
        {"name": "a", "type": "gov.Address", "default": {"kind": "WORK", "postcode": {"c": "1"}}}
    )
    out = json.loads(normalized_form(schema, NAMED))
    assert out["fields"][0]["default"] == {"kind": "WORK", "postcode": {"c": "1"}}


# --- Errors ------------------------------------------------------------------------------

INVALID: dict[str, tuple[Any, dict[str, Any] | None]] = {
    "not JSON": ('{"type": "record"', None),
    "NaN is not JSON": (
        '{"type":"record","name":"R","fields":[{"name":"a","type":"double","default":NaN}]}',
        None,
    ),
    "not a schema": (5, None),
    "no type": ({"name": "R"}, None),
    "undefined name": (record({"name": "a", "type": "Nope"}), None),
    "a reference without its definition": (record({"name": "a", "type": "gov.Address"}), None),
    "invalid name": ({"type": "record", "name": "a-b", "fields": []}, None),
    "invalid namespace": ({"type": "record", "name": "R", "namespace": "a..b", "fields": []}, None),
    "named after a primitive": ({"type": "record", "name": "int", "fields": []}, None),
    "duplicate field": (record({"name": "a", "type": "int"}, {"name": "a", "type": "long"}), None),
    "redefinition": (
        record({"name": "a", "type": {"type": "record", "name": "R", "fields": []}}),
        None,
    ),
    "a string default for an int": (record({"name": "a", "type": "int", "default": "x"}), None),
    "a boolean default for an int": (record({"name": "a", "type": "int", "default": True}), None),
    "an int default out of range": (record({"name": "a", "type": "int", "default": 2**31}), None),
    "a float default that is no number": (
        record({"name": "a", "type": "float", "default": "one"}),
        None,
    ),
    "a union default of no branch": (
        record({"name": "a", "type": ["null", "int"], "default": "x"}),
        None,
    ),
    "a record default missing a field": (
        record(
            {
                "name": "a",
                "type": {"type": "record", "name": "S", "fields": [{"name": "x", "type": "int"}]},
                "default": {},
            }
        ),
        None,
    ),
    "a record default with an unknown field (Confluent fails converting it)": (
        record(
            {
                "name": "a",
                "type": {"type": "record", "name": "S", "fields": [{"name": "x", "type": "int"}]},
                "default": {"x": 1, "y": 2},
            }
        ),
        None,
    ),
    "an array default that the union's first branch cannot convert": (
        record({"name": "a", "type": {"type": "array", "items": ["null", "int"]}, "default": [1]}),
        None,
    ),
    "enum default not a symbol": (
        {"type": "enum", "name": "E", "symbols": ["A"], "default": "B"},
        None,
    ),
    "duplicate enum symbol": ({"type": "enum", "name": "E", "symbols": ["A", "A"]}, None),
    "invalid enum symbol": ({"type": "enum", "name": "E", "symbols": ["1A"]}, None),
    "nested union": (["null", ["int"]], None),
    # Avro's parser drops the properties; fastavro, which the registry reads with, refuses.
    "a name reference with properties": (
        record({"name": "a", "type": ["null", {"type": "R", "x": 1}]}),
        None,
    ),
    "duplicate in union": (["int", {"type": "int", "logicalType": "date"}], None),
    "two arrays in a union": (
        [{"type": "array", "items": "int"}, {"type": "array", "items": "long"}],
        None,
    ),
    "bad order": (record({"name": "a", "type": "int", "order": "sideways"}), None),
    "fixed size a string": ({"type": "fixed", "name": "F", "size": "4"}, None),
    "fixed size negative": ({"type": "fixed", "name": "F", "size": -1}, None),
    "aliases not a list": (record(aliases="Old"), None),
    "array without items": ({"type": "array"}, None),
    "two definitions of one name": (
        record({"name": "a", "type": "gov.Kind"}),
        {"k": KIND, "other": {**KIND, "symbols": ["OTHER"]}},
    ),
    "a definition in named that is not JSON": (record({"name": "a", "type": "int"}), {"x": "{"}),
    # Confluent writes the float's overflow as "Infinity" and, reading that again, fails.
    "a default that normalises to an invalid one": (
        record({"name": "a", "type": ["float", "null"], "default": 3.5e38}),
        None,
    ),
    "definitions in named that need an undefined name": (
        record({"name": "a", "type": "int"}),
        {"gov.Address": ADDRESS},
    ),
}


@pytest.mark.parametrize(("schema", "named"), INVALID.values(), ids=INVALID.keys())
def test_invalid_schema(schema: Any, named: dict[str, Any] | None) -> None:
    with pytest.raises(InvalidSchemaError, match="Invalid schema"):
        normalized_form(schema, named)


# --- Properties over generated record schemas --------------------------------------------

PRIMITIVE_DEFAULTS: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.one_of(
        st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False, width=32)
    ),
    "double": st.one_of(
        st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False)
    ),
    "bytes": st.text(max_size=5),
    "string": st.text(max_size=5),
}
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
PROPS = st.dictionaries(
    st.sampled_from(["connect.name", "x", "avro.note", "order_by"]),
    st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.booleans(), max_size=2)),
    max_size=2,
)
NAMESPACES = st.sampled_from([None, "", "gov", "gov.x", "a_1"])


@st.composite
def record_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """A record schema (and its nested types), some with defaults, docs, aliases, order,
    logical types and custom properties; each name is unique."""
    counter = itertools.count()

    def unique(base: str) -> str:
        return f"{base}_{next(counter)}"

    def named_head(kind: str) -> dict[str, Any]:
        name, namespace = unique(draw(NAME)), draw(NAMESPACES)
        head: dict[str, Any] = {"type": kind}
        if namespace is not None and namespace and draw(st.booleans()):
            head["name"] = f"{namespace}.{name}"
        else:
            head["name"] = name
            if namespace is not None:
                head["namespace"] = namespace
        if draw(st.booleans()):
            head["doc"] = draw(st.text(max_size=3))
        if draw(st.booleans()):
            head["aliases"] = draw(st.lists(NAME, max_size=3))
        head.update(draw(PROPS))
        return head

    def type_and_default(depth: int) -> tuple[Any, st.SearchStrategy[Any] | None]:
        choice = draw(st.integers(0, 7 if depth < 2 else 2))
        if choice <= 1:
            primitive = draw(st.sampled_from(sorted(PRIMITIVE_DEFAULTS)))
            props = draw(PROPS)
            spelled: Any = primitive
            as_object = draw(st.booleans())
            if props or as_object:
                spelled = {"type": primitive, **props}
            return spelled, PRIMITIVE_DEFAULTS[primitive]
        if choice == 2:
            logical: dict[str, Any] = draw(
                st.sampled_from(
                    [
                        {"type": "int", "logicalType": "date"},
                        {"type": "long", "logicalType": "timestamp-millis"},
                        {"type": "string", "logicalType": "uuid"},
                        {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
                        {"type": "bytes", "logicalType": "decimal", "precision": 4},
                    ]
                )
            )
            return logical, PRIMITIVE_DEFAULTS[logical["type"]]
        if choice == 3:
            symbols = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
            enum = {**named_head("enum"), "symbols": symbols}
            if draw(st.booleans()):
                enum["default"] = draw(st.sampled_from(symbols))
            return enum, st.sampled_from(symbols)
        if choice == 4:
            size = draw(st.integers(1, 16))
            return {**named_head("fixed"), "size": size}, st.text(min_size=size, max_size=size)
        if choice == 5:
            items, items_default = type_and_default(depth + 1)
            array = {"type": "array", "items": items, **draw(PROPS)}
            return array, None if items_default is None else st.lists(items_default, max_size=2)
        if choice == 6:
            first = draw(st.sampled_from(["null", "string", "long"]))
            others = [p for p in ("null", "int", "string", "double") if p != first]
            union = [first, *draw(st.lists(st.sampled_from(others), max_size=2, unique=True))]
            return union, PRIMITIVE_DEFAULTS[first]
        return make_record(depth + 1), None

    def make_record(depth: int) -> dict[str, Any]:
        head = named_head("record")
        fields = []
        for index in range(draw(st.integers(0, 4))):
            field_type, default = type_and_default(depth)
            field: dict[str, Any] = {"name": f"{draw(NAME)}_{index}", "type": field_type}
            if default is not None and draw(st.booleans()):
                field["default"] = draw(default)
            if draw(st.booleans()):
                field["doc"] = draw(st.text(max_size=3))
            if draw(st.booleans()):
                field["order"] = draw(st.sampled_from(["ascending", "descending", "ignore"]))
            if draw(st.booleans()):
                field["aliases"] = draw(st.lists(NAME, max_size=3))
            field.update(draw(PROPS))
            fields.append(field)
        return {**head, "fields": fields}

    return make_record(0)


def respell(schema: Any, rng: random.Random) -> Any:
    """The same schema spelled otherwise: keys shuffled, primitives as objects, aliases
    reordered and repeated."""
    if isinstance(schema, list):
        return [respell(branch, rng) for branch in schema]
    if isinstance(schema, str):
        return {"type": schema} if schema in PRIMITIVE_DEFAULTS else schema
    return shuffled(schema, rng)


def shuffled(node: dict[str, Any], rng: random.Random, *, field: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = list(node)
    rng.shuffle(keys)
    for key in keys:
        value = node[key]
        if key in ("items", "values") or (key == "type" and field):
            value = respell(value, rng)
        elif key == "fields":
            value = [shuffled(f, rng, field=True) for f in value]
        elif key == "aliases" and value:
            value = list(reversed(value)) + value[:1]
        out[key] = value
    return out


@settings(max_examples=150)
@given(record_schemas())
def test_idempotent(schema: dict[str, Any]) -> None:
    once = normalized_form(schema)
    assert normalized_form(once) == once
    assert normalized_form(json.loads(once)) == once


@settings(max_examples=150)
@given(record_schemas())
def test_wire_meaning_unchanged(schema: dict[str, Any]) -> None:
    """fastavro reads the normal form, with the input's Parsing Canonical Form."""
    assert pcf(normalized_form(schema)) == pcf(schema)


@settings(max_examples=100)
@given(record_schemas(), st.randoms(use_true_random=False))
def test_spelling_does_not_matter(schema: dict[str, Any], rng: random.Random) -> None:
    assert normalized_form(respell(schema, rng)) == normalized_form(schema)
