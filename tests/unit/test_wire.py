"""Tests for exchange.kafka.wire: the Confluent framing and the Avro serde."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.core.errors import SchemaNotFoundError, WireFormatError
from exchange.kafka.wire import HEADER_SIZE, AvroSerde, frame, unframe
from schemas import load_standard

SCHEMA_ID = 7
PERSON = load_standard("person")

RECORD: dict[str, Any] = {
    "resident_id": "11010519491231002X",
    "family_name": "王",
    "given_name": "小明",
    "full_name": "王小明",
    "birth_date": date(1949, 12, 31),
    "sex": "MALE",
    "nationality": "CHN",
    "residence_division_code": "110105",
    "phone": None,
    "address_line": None,
    "postcode": None,
    "current_division_code": None,
    "current_address_line": None,
}


class CountingLookup:
    """A schema lookup that knows only the Person standard under id 7 and counts calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, schema_id: int) -> str:
        self.calls.append(schema_id)
        if schema_id != SCHEMA_ID:
            raise SchemaNotFoundError(f"no schema with id {schema_id}")
        return json.dumps(PERSON.schema)


@pytest.fixture
def lookup() -> CountingLookup:
    return CountingLookup()


@pytest.fixture
def serde(lookup: CountingLookup) -> AvroSerde:
    return AvroSerde(lookup)


def _zigzag_varint(n: int) -> bytes:
    """Avro's encoding of a long, to hand-craft bodies."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# --- framing -------------------------------------------------------------------------------


@given(schema_id=st.integers(min_value=0, max_value=2**32 - 1), body=st.binary())
def test_frame_unframe_round_trip(schema_id: int, body: bytes) -> None:
    framed = frame(schema_id, body)

    assert len(framed) == HEADER_SIZE + len(body)
    assert framed[:1] == b"\x00"
    assert framed[1:5] == schema_id.to_bytes(4, "big")
    got_id, got_body = unframe(framed)
    assert got_id == schema_id
    assert bytes(got_body) == body


@given(magic=st.integers(min_value=1, max_value=255), rest=st.binary(min_size=4))
def test_unframe_rejects_a_nonzero_magic_byte(magic: int, rest: bytes) -> None:
    with pytest.raises(WireFormatError, match="magic byte"):
        unframe(bytes([magic]) + rest)


@given(data=st.binary(max_size=HEADER_SIZE - 1))
def test_unframe_rejects_a_message_shorter_than_the_header(data: bytes) -> None:
    with pytest.raises(WireFormatError, match="shorter than the 5-byte"):
        unframe(data)


def test_unframe_accepts_a_header_with_an_empty_body() -> None:
    schema_id, body = unframe(b"\x00\x00\x00\x01\x00")

    assert schema_id == 256
    assert bytes(body) == b""


@pytest.mark.parametrize("schema_id", [-1, 2**32, 2**40])
def test_frame_rejects_a_schema_id_that_does_not_fit_in_4_bytes(schema_id: int) -> None:
    with pytest.raises(WireFormatError, match="does not fit in 4 bytes"):
        frame(schema_id, b"")


# --- AvroSerde -----------------------------------------------------------------------------


def test_encode_decode_round_trip(serde: AvroSerde) -> None:
    data = serde.encode(SCHEMA_ID, RECORD)

    assert serde.decode(data) == (SCHEMA_ID, RECORD)


def test_encoded_bytes_start_with_magic_byte_and_big_endian_schema_id(serde: AvroSerde) -> None:
    data = serde.encode(SCHEMA_ID, RECORD)

    assert data[:HEADER_SIZE] == b"\x00" + (7).to_bytes(4, "big")


def test_body_is_fastavro_schemaless_encoding(serde: AvroSerde) -> None:
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, fastavro.parse_schema(PERSON.schema), RECORD)

    data = serde.encode(SCHEMA_ID, RECORD)

    assert data[HEADER_SIZE:] == expected.getvalue()


def test_encode_rejects_a_record_that_does_not_match_the_schema(serde: AvroSerde) -> None:
    with pytest.raises(WireFormatError, match="does not match schema 7"):
        serde.encode(SCHEMA_ID, {**RECORD, "sex": "NOT_A_SYMBOL"})


def test_every_truncation_of_the_body_raises_wire_format_error(serde: AvroSerde) -> None:
    data = serde.encode(SCHEMA_ID, RECORD)

    for end in range(HEADER_SIZE, len(data)):
        with pytest.raises(WireFormatError, match="truncated or corrupt"):
            serde.decode(data[:end])


@given(trailing=st.binary(min_size=1, max_size=32))
def test_trailing_bytes_raise_wire_format_error(trailing: bytes) -> None:
    serde = AvroSerde(CountingLookup())
    data = serde.encode(SCHEMA_ID, RECORD)

    with pytest.raises(WireFormatError, match=f"{len(trailing)} trailing bytes"):
        serde.decode(data + trailing)


def test_invalid_utf8_in_a_string_raises_wire_format_error(serde: AvroSerde) -> None:
    body = b"\x02\xff" + b"\x00" * 8  # resident_id is one byte, 0xFF, not UTF-8

    with pytest.raises(WireFormatError, match="truncated or corrupt"):
        serde.decode(frame(SCHEMA_ID, body))


def test_out_of_range_enum_index_raises_wire_format_error(serde: AvroSerde) -> None:
    # Four empty strings, birth_date 0, then sex index 3 (only 0..2 exist).
    body = b"\x00" * 4 + b"\x00" + _zigzag_varint(3) + b"\x00\x00\x00"

    with pytest.raises(WireFormatError, match="truncated or corrupt"):
        serde.decode(frame(SCHEMA_ID, body))


def test_out_of_range_date_in_a_corrupt_body_raises_wire_format_error(serde: AvroSerde) -> None:
    # Four empty strings, then birth_date = 2**31 - 1 days after the epoch.
    body = b"\x00" * 4 + _zigzag_varint(2**31 - 1) + b"\x00" * 4

    with pytest.raises(WireFormatError):
        serde.decode(frame(SCHEMA_ID, body))


def test_unknown_schema_id_propagates_schema_not_found(serde: AvroSerde) -> None:
    data = frame(8, b"\x00")

    with pytest.raises(SchemaNotFoundError, match="no schema with id 8"):
        serde.decode(data)


def test_unknown_schema_id_on_encode_propagates_schema_not_found(serde: AvroSerde) -> None:
    with pytest.raises(SchemaNotFoundError):
        serde.encode(8, RECORD)


def test_the_schema_is_looked_up_once_for_many_decodes(
    serde: AvroSerde, lookup: CountingLookup
) -> None:
    data = serde.encode(SCHEMA_ID, RECORD)

    for _ in range(50):
        assert serde.decode(data) == (SCHEMA_ID, RECORD)

    assert lookup.calls == [SCHEMA_ID]


def test_a_failed_lookup_is_not_cached(serde: AvroSerde, lookup: CountingLookup) -> None:
    for _ in range(2):
        with pytest.raises(SchemaNotFoundError):
            serde.decode(frame(9, b""))

    assert lookup.calls == [9, 9]


# --- property: every valid Person round-trips exactly ---------------------------------------

_text = st.text(max_size=40)
_optional_text = st.none() | _text

persons = st.fixed_dictionaries(
    {
        "resident_id": _text,
        "family_name": _text,
        "given_name": _text,
        "full_name": _text,
        # Avro's date is days since 1970-01-01 as an int; every Python date fits.
        "birth_date": st.dates(),
        "sex": st.sampled_from(["MALE", "FEMALE", "UNKNOWN"]),
        "nationality": _text,
        "residence_division_code": _optional_text,
        "phone": _optional_text,
        "address_line": _optional_text,
        "postcode": _optional_text,
        "current_division_code": _optional_text,
        "current_address_line": _optional_text,
    }
)


@given(record=persons)
def test_any_valid_person_round_trips_exactly(record: dict[str, Any]) -> None:
    serde = AvroSerde(CountingLookup())

    data = serde.encode(SCHEMA_ID, record)

    assert serde.decode(data) == (SCHEMA_ID, record)
