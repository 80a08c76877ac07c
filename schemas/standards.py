"""The common data standards: Avro schemas with field metadata.

Each standard is one ``.avsc`` file in ``schemas/avro``. Besides Avro's own keys,
every field carries ``sensitivity`` (public, internal, personal, sensitive),
``identifier`` (used for linkage), ``mask`` (how a grant that shows it masked shows
it: see :mod:`exchange.access.masking`), optionally ``validator`` (a name from
:mod:`schemas.validators`) and ``"optional": "declared"`` on a nullable field that a
connector must still map unless its definition declares the value may be absent
(:attr:`FieldSpec.optional_declared`). A standard publishes to the topic
``std.<dataset>.v<version>`` under the registry subject ``<topic>-value``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, to_parsing_canonical_form

from exchange.core.errors import SchemaNotFoundError


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"


@dataclass(frozen=True)
class FieldSpec:
    """A field of a standard as the rest of the exchange sees it."""

    name: str
    avro_type: Any
    doc: str
    sensitivity: Sensitivity
    identifier: bool
    validator: str | None
    required: bool
    has_default: bool
    default: Any
    encrypted: bool = False
    blind_index_of: str | None = None
    # How a grant that shows the field ``masked`` shows it (``redact``, ``keep_last:4``,
    # ``year_only``, ...; exchange.access.masking), and the field's vocabulary term
    # (``cpv:birthDate``), which the disclosure rule reads.
    mask: str | None = None
    vocabulary: str | None = None
    # Nullable in Avro, but a connector must map it unless its definition declares the
    # value optional (``"optional": "declared"``): e.g. Person.resident_id, which an
    # export without ID numbers may lack, but which a department must not forget.
    optional_declared: bool = False

    @property
    def blind_index_domain(self) -> str | None:
        """Domain of this identifier's blind index: its validator (so the same
        identifier matches across datasets), else ``<dataset>.<field>`` is used."""
        return self.validator


@dataclass(frozen=True)
class Standard:
    """One standard: its Avro schema, parsed once, and its field metadata."""

    name: str
    dataset: str
    version: int
    schema: dict[str, Any]
    parsed: Any
    fields: tuple[FieldSpec, ...]

    @property
    def topic(self) -> str:
        return f"std.{self.dataset}.v{self.version}"

    @property
    def subject(self) -> str:
        return f"{self.topic}-value"

    @property
    def canonical(self) -> str:
        return str(to_parsing_canonical_form(self.parsed))

    @property
    def wire(self) -> Standard:
        """The form records travel in (see :func:`wire_schema`)."""
        return _wire_of(self)

    def blind_index_domain(self, spec: FieldSpec) -> str:
        return spec.blind_index_domain or f"{self.dataset}.{spec.name}"

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def identifier_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.identifier)


def base_type(avro_type: Any) -> Any:
    """The non-null branch of a nullable union (``["null", "string"]`` -> ``"string"``),
    else the type itself."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return branches[0] if len(branches) == 1 else avro_type
    return avro_type


def _nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


def standard_from_schema(schema: dict[str, Any]) -> Standard:
    """Build a Standard from a schema dict; raises SchemaParseException if not valid Avro."""
    parsed = parse_schema(json.loads(json.dumps(schema)))
    fields = []
    for raw in schema["fields"]:
        has_default = "default" in raw
        fields.append(
            FieldSpec(
                name=raw["name"],
                avro_type=raw["type"],
                doc=raw.get("doc", ""),
                sensitivity=Sensitivity(raw.get("sensitivity", "internal")),
                identifier=bool(raw.get("identifier", False)),
                validator=raw.get("validator"),
                required=not has_default and not _nullable(raw["type"]),
                has_default=has_default,
                default=raw.get("default"),
                encrypted=bool(raw.get("encrypted", False)),
                blind_index_of=raw.get("blind_index_of"),
                mask=raw.get("mask"),
                vocabulary=raw.get("vocabulary"),
                optional_declared=raw.get("optional") == "declared",
            )
        )
    name = schema["name"]
    return Standard(
        name=name,
        dataset=str(schema.get("dataset", name.lower())),
        version=int(schema.get("version", 1)),
        schema=schema,
        parsed=parsed,
        fields=tuple(fields),
    )


BLIND_INDEX_SUFFIX = "_bidx"


def wire_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema records travel in: the standard with its sensitive fields as ciphertext.

    A ``sensitive`` field becomes ``bytes`` (``["null", "bytes"]`` if optional)
    holding an envelope-encrypted token, marked ``"encrypted": true``; an
    encrypted identifier is followed by ``<name>_bidx``, its blind index (a keyed
    hash of the normalised value), so the registry can link records without
    reading the identifier. Every other field is unchanged.
    """
    if schema.get("wire"):
        return schema
    fields: list[dict[str, Any]] = []
    for raw in schema["fields"]:
        if raw.get("sensitivity") != Sensitivity.SENSITIVE.value:
            fields.append(raw)
            continue
        optional = _nullable(raw["type"])
        encrypted = {
            **raw,
            "type": ["null", "bytes"] if optional else "bytes",
            "doc": raw.get("doc", "") + " Encrypted: an AES-256-GCM envelope token.",
            "encrypted": True,
        }
        encrypted.pop("default", None)
        if optional:
            encrypted["default"] = None
        fields.append(encrypted)
        if raw.get("identifier"):
            fields.append(
                {
                    "name": raw["name"] + BLIND_INDEX_SUFFIX,
                    "type": ["null", "string"] if optional else "string",
                    **({"default": None} if optional else {}),
                    "doc": f"Blind index of {raw['name']}: HMAC-SHA256 under the linkage key "
                    "of the normalised value, hex.",
                    "sensitivity": Sensitivity.INTERNAL.value,
                    "identifier": True,
                    "blind_index_of": raw["name"],
                }
            )
    return {**schema, "fields": fields, "wire": True}


@cache
def _wire_cached(text: str) -> Standard:
    return standard_from_schema(wire_schema(json.loads(text)))


def _wire_of(standard: Standard) -> Standard:
    if standard.schema.get("wire"):
        return standard
    return _wire_cached(json.dumps(standard.schema, sort_keys=True))


def available() -> list[str]:
    """Names of the shipped standards (file stems, e.g. ``person``)."""
    folder = resources.files("schemas") / "avro"
    return sorted(
        p.name.removesuffix(".avsc") for p in folder.iterdir() if p.name.endswith(".avsc")
    )


@cache
def load_standard(name: str) -> Standard:
    """Load a shipped standard by name (``person``) or Avro name (``Person``)."""
    stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    path = resources.files("schemas") / "avro" / f"{stem}.avsc"
    if not path.is_file():
        raise SchemaNotFoundError(
            f"no standard named {name!r}; known standards: {', '.join(available())}"
        )
    try:
        return standard_from_schema(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, SchemaParseException) as exc:
        raise SchemaNotFoundError(f"standard {name!r} is not a valid schema: {exc}") from exc
