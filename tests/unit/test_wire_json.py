"""AvroSerde.decode_json: straight to the registry's JSON-safe payload.

It must give, for every record, exactly what converting each top-level value of
:meth:`AvroSerde.decode`'s record with :func:`json_value` gives (what the builder
stored before), while converting only the fields whose type needs it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from exchange.kafka.wire import AvroSerde, json_value
from schemas import available, load_standard
from tests.unit.test_wire import RECORD, persons

SCHEMA = {
    "type": "record",
    "name": "Mixed",
    "fields": [
        {"name": "text", "type": "string"},
        {"name": "count", "type": ["null", "long"]},
        {"name": "ratio", "type": "double"},
        {"name": "flag", "type": "boolean"},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "maybe_day", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "blob", "type": "bytes"},
        {"name": "four", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "BLUE"]}},
        {"name": "other_colour", "type": ["null", "Colour"]},  # a named type's reference
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {
            "name": "days",
            "type": {"type": "array", "items": {"type": "int", "logicalType": "date"}},
        },
        {
            "name": "inner",
            "type": {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]},
        },
        {"name": "amounts", "type": {"type": "map", "values": "long"}},
    ],
}

mixed = st.fixed_dictionaries(
    {
        "text": st.text(max_size=20),
        "count": st.none() | st.integers(-(2**63), 2**63 - 1),
        "ratio": st.floats(allow_nan=False),
        "flag": st.booleans(),
        "day": st.dates(),
        "maybe_day": st.none() | st.dates(),
        "at": st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
        "blob": st.binary(max_size=20),
        "four": st.binary(min_size=4, max_size=4),
        "colour": st.sampled_from(["RED", "BLUE"]),
        "other_colour": st.none() | st.sampled_from(["RED", "BLUE"]),
        "id": st.uuids().map(str),
        "days": st.lists(st.dates(), max_size=3),
        "inner": st.fixed_dictionaries({"x": st.integers(-(2**31), 2**31 - 1)}),
        "amounts": st.dictionaries(st.text(max_size=5), st.integers(0, 10**12), max_size=3),
    }
)


def serde_of(schema: dict[str, Any]) -> AvroSerde:
    text = json.dumps(schema)
    return AvroSerde(lambda _id: text)


def as_before(serde: AvroSerde, data: bytes) -> tuple[int, dict[str, Any]]:
    """What the builder made of a message: decode, then each top-level value converted."""
    schema_id, record = serde.decode(data)
    return schema_id, {k: json_value(v) for k, v in record.items()}


@given(record=mixed)
def test_decode_json_is_decode_with_every_top_level_value_made_json(
    record: dict[str, Any],
) -> None:
    serde = serde_of(SCHEMA)
    data = serde.encode(3, record)

    schema_id, decoded = serde.decode_json(data)

    assert (schema_id, decoded) == as_before(serde_of(SCHEMA), data)
    assert decoded["day"] == record["day"].isoformat()
    assert isinstance(decoded["blob"], str)
    assert isinstance(decoded["id"], uuid.UUID)  # what json_value leaves as it is


@given(record=persons)
def test_a_person_decodes_to_a_json_payload(record: dict[str, Any]) -> None:
    serde = serde_of(load_standard("person").schema)
    data = serde.encode(1, record)

    _, decoded = serde.decode_json(data)

    assert decoded == as_before(serde, data)[1]
    assert decoded == {**record, "birth_date": record["birth_date"].isoformat()}
    assert orjson.loads(orjson.dumps(decoded)) == decoded


def test_only_fields_that_can_hold_a_non_json_value_are_converted() -> None:
    serde = serde_of(SCHEMA)
    serde.decode_json(serde.encode(3, {**_mixed_example()}))
    assert serde._converted[3] == (
        "day", "maybe_day", "at", "blob", "four", "other_colour", "id", "days", "inner", "amounts",
    )  # fmt: skip
    person = serde_of(load_standard("person").schema)
    person.decode_json(person.encode(1, RECORD))
    assert person._converted[1] == ("birth_date",)


def test_every_shipped_standard_decodes_as_before() -> None:
    """Each standard's first example-like record: dates become ISO text, as before."""
    for name in available():
        schema = load_standard(name).schema
        serde = serde_of(schema)
        for field in serde.parsed(1)["fields"]:
            assert isinstance(field["name"], str)
        data = serde.encode(1, _sample(serde.parsed(1)))
        assert serde.decode_json(data) == as_before(serde, data)


def _mixed_example() -> dict[str, Any]:
    return {
        "text": "张", "count": None, "ratio": 0.5, "flag": True, "day": date(2020, 1, 2),
        "maybe_day": None, "at": datetime(2026, 12, 7, tzinfo=UTC), "blob": b"\x00\xff",
        "four": b"abcd", "colour": "RED", "other_colour": "BLUE", "id": str(uuid.uuid4()),
        "days": [date(2020, 1, 1)], "inner": {"x": 1}, "amounts": {"a": 1},
    }  # fmt: skip


def _sample(schema: dict[str, Any]) -> dict[str, Any]:
    """A valid record of a standard: the first branch or symbol of every field."""
    return {field["name"]: _value(field["type"]) for field in schema["fields"]}


def _value(kind: Any) -> Any:
    if isinstance(kind, list):
        return _value(next(k for k in kind if k != "null"))
    if isinstance(kind, dict):
        if kind.get("logicalType") == "date":
            return date(2020, 2, 29)
        if kind["type"] == "enum":
            return kind["symbols"][0]
        if kind["type"] == "array":
            return [_value(kind["items"])]
        return _value(kind["type"])
    return {"string": "文本", "long": 7, "int": 7, "boolean": True, "double": 0.25}.get(kind, "x")
