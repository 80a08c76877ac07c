"""The wire format: Avro bodies in the Confluent framing.

A message value is ``0x00`` (magic byte), the schema id as a 4-byte big-endian
unsigned integer, then the Avro binary body (fastavro's schemaless encoding).
This is the framing Confluent's serializers use, so the wider Kafka
ecosystem can read the records given the schema by its id. Parsed schemas are
cached by id, so decoding a stream costs one registry lookup per schema, not
per record.

:meth:`AvroSerde.decode_json` decodes straight to what the registry stores: the
record's top-level values JSON-safe (:func:`json_value`), converting only the
fields whose type can hold something else (dates, timestamps, bytes, ...), as
found once per schema.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Callable
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from exchange.core.errors import WireFormatError

MAGIC = 0
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size
# Avro types that fastavro decodes to str, int, float, bool or None (an enum to its symbol).
_PLAIN_TYPES = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "enum"})


def json_value(value: Any) -> Any:
    """A decoded Avro value as JSON: dates and times in ISO 8601, bytes in base64, the
    rest as it is."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _plain(schema: Any) -> bool:
    """Whether every value of ``schema`` (a parsed field type) decodes to a JSON value
    as it is. A named type's reference (a string not a primitive) counts as not plain:
    converting a plain value changes nothing, only costs a call."""
    if isinstance(schema, list):
        return all(_plain(branch) for branch in schema)
    if isinstance(schema, dict):
        return "logicalType" not in schema and schema.get("type") in _PLAIN_TYPES
    return schema in _PLAIN_TYPES and schema != "enum"


def frame(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the magic byte and schema id."""
    if not 0 <= schema_id < 2**32:
        raise WireFormatError(f"schema id {schema_id} does not fit in 4 bytes")
    return _HEADER.pack(MAGIC, schema_id) + body


def _too_short(data: bytes) -> WireFormatError:
    return WireFormatError(
        f"message of {len(data)} bytes is shorter than the 5-byte Confluent header"
    )


def _not_framed(magic: int) -> WireFormatError:
    return WireFormatError(
        f"unknown magic byte {magic} (expected 0): not a Confluent-framed record"
    )


def unframe(data: bytes) -> tuple[int, memoryview]:
    """Split a framed message into (schema id, Avro body); checks magic byte and length."""
    if len(data) < HEADER_SIZE:
        raise _too_short(data)
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise _not_framed(magic)
    return schema_id, memoryview(data)[HEADER_SIZE:]


class AvroSerde:
    """Encode and decode framed Avro records, caching parsed schemas by id.

    ``lookup`` returns the schema JSON registered under an id (e.g.
    :meth:`schemas.SchemaStore.schema_text`) and may raise SchemaNotFoundError.
    """

    def __init__(self, lookup: Callable[[int], str]) -> None:
        self._lookup = lookup
        self._parsed: dict[int, Any] = {}
        self._headers: dict[int, bytes] = {}
        self._converted: dict[int, tuple[str, ...]] = {}

    def parsed(self, schema_id: int) -> Any:
        schema = self._parsed.get(schema_id)
        if schema is None:
            schema = parse_schema(json.loads(self._lookup(schema_id)))
            self._parsed[schema_id] = schema
        return schema

    def encode(self, schema_id: int, record: dict[str, Any]) -> bytes:
        header = self._headers.get(schema_id)
        if header is None:
            header = self._headers[schema_id] = frame(schema_id, b"")
        buffer = io.BytesIO()
        buffer.write(header)
        try:
            schemaless_writer(buffer, self.parsed(schema_id), record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise WireFormatError(f"record does not match schema {schema_id}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes) -> tuple[int, dict[str, Any]]:
        """Return (schema id, record); raises WireFormatError or SchemaNotFoundError."""
        # The header is checked inline rather than through unframe(): this is the
        # hot path of every consumer, and the benchmark showed the call's cost.
        if len(data) < HEADER_SIZE:
            raise _too_short(data)
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise _not_framed(magic)
        schema = self._parsed.get(schema_id)
        if schema is None:
            schema = self.parsed(schema_id)
        stream = io.BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(stream, schema, None)
        except (
            EOFError,
            ValueError,
            IndexError,
            OverflowError,
            UnicodeDecodeError,
            struct.error,
        ) as exc:
            raise WireFormatError(
                f"Avro body of schema {schema_id} is truncated or corrupt: {exc!r}"
            ) from exc
        if stream.tell() != len(data):
            raise WireFormatError(
                f"Avro body of schema {schema_id} has {len(data) - stream.tell()} trailing bytes"
            )
        if not isinstance(record, dict):
            raise WireFormatError(f"schema {schema_id} is not a record schema")
        return schema_id, record

    def decode_json(self, data: bytes) -> tuple[int, dict[str, Any]]:
        """Like :meth:`decode`, the record's top-level values made JSON-safe by
        :func:`json_value` (nested values as decoded)."""
        schema_id, record = self.decode(data)
        fields = self._converted.get(schema_id)
        if fields is None:
            fields = self._converted[schema_id] = tuple(
                field["name"]
                for field in self._parsed[schema_id].get("fields", ())
                if not _plain(field["type"])
            )
        for name in fields:
            value = record.get(name)
            if value is not None:
                record[name] = json_value(value)
        return schema_id, record
