"""Tests for the shipped standards library (schemas/avro/*.avsc).

Every shipped standard is checked for what the rest of the exchange relies on:
it loads and is valid Avro, it carries the metadata the connectors, the registry
builder and the gateway read (doc, sensitivity, identifier role, validator,
vocabulary term), it follows the library's conventions (namespace, topic, dates,
money, optional fields, enum defaults), and a record built from the schema alone
round-trips through fastavro.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.validation import validate

from schemas.standards import Sensitivity, Standard, available, load_standard
from schemas.validators import VALIDATORS, get_validator, uscc_check_character

NAMESPACE = "gov.dataexchange.std"
CORE_ENTITIES = frozenset({"person", "address", "organisation", "household_membership"})
STANDARDS = available()
DEPARTMENTAL = sorted(set(STANDARDS) - CORE_ENTITIES)

# Shorthand prefixes of the vocabularies that standards map their fields to
# (docs/standards.md, "Vocabularies").
VOCABULARY_PREFIXES = frozenset({"cpv", "rov", "cbv", "locn", "schema", "cpsv"})
SENSITIVITY_ORDER = [
    Sensitivity.PUBLIC,
    Sensitivity.INTERNAL,
    Sensitivity.PERSONAL,
    Sensitivity.SENSITIVE,
]
NAMED_TYPES = ("record", "enum", "fixed")
DATE_NAME = re.compile(r"(^since$|^until$|_on$|_date$|_until$|_start$|_end$)")

# A value that each registered validator accepts, for building sample records.
VALID_TEXT: dict[str, str] = {
    "cn.resident_id": "11010519491231002X",
    "cn.uscc": "91440300MA5ABCDE1" + uscc_check_character("91440300MA5ABCDE1"),
    "cn.division_code": "110105",
    "cn.phone": "13800138000",
    "iso.date": "2024-03-01",
    "intl.postcode": "518057",
}


def raw_schema(name: str) -> dict[str, Any]:
    """The standard's .avsc file as JSON, without any defaults filled in."""
    path = resources.files("schemas") / "avro" / f"{name}.avsc"
    return json.loads(path.read_text(encoding="utf-8"))


def non_null(avro_type: Any) -> Any:
    """The non-null branch of a ``["null", T]`` union, else the type itself."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        assert len(branches) == 1, f"union {avro_type} must be [null, T]"
        return branches[0]
    return avro_type


def named_types(avro_type: Any) -> list[dict[str, Any]]:
    """Every named type (record, enum, fixed) defined inside ``avro_type``, outermost first."""
    found: list[dict[str, Any]] = []
    if isinstance(avro_type, list):
        for branch in avro_type:
            found += named_types(branch)
    elif isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind in NAMED_TYPES:
            found.append(avro_type)
        if kind == "record":
            for field in avro_type["fields"]:
                found += named_types(field["type"])
        elif kind == "array":
            found += named_types(avro_type["items"])
        elif kind == "map":
            found += named_types(avro_type["values"])
        elif isinstance(kind, dict | list):
            found += named_types(kind)
    return found


def sample_value(avro_type: Any, validator: str | None = None, *, fill: bool = True) -> Any:
    """A valid value of ``avro_type``; optional fields get a value if ``fill``, else null.

    Strings checked by a validator get a value that validator accepts, so the
    sample is a record a connector could really publish.
    """
    if isinstance(avro_type, list):
        if not fill and "null" in avro_type:
            return None
        return sample_value(non_null(avro_type), validator, fill=fill)
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        logical = avro_type.get("logicalType")
        if logical == "date":
            return date(2024, 3, 1)
        if logical in ("timestamp-millis", "timestamp-micros"):
            return datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
        if logical == "decimal":
            return Decimal("1234.56").quantize(Decimal(1).scaleb(-avro_type.get("scale", 0)))
        if kind == "record":
            return {
                f["name"]: sample_value(f["type"], f.get("validator"), fill=fill)
                for f in avro_type["fields"]
            }
        if kind == "enum":
            return avro_type["symbols"][0]
        if kind == "array":
            return [sample_value(avro_type["items"], validator, fill=fill)]
        if kind == "map":
            return {"key": sample_value(avro_type["values"], validator, fill=fill)}
        if kind == "fixed":
            return b"\x01" * avro_type["size"]
        return sample_value(kind, validator, fill=fill)
    primitives: dict[str, Any] = {
        "null": None,
        "boolean": True,
        "int": 7,
        "long": 123456,
        "float": 1.5,
        "double": 2.25,
        "bytes": b"\x00\x01",
        "string": VALID_TEXT[validator] if validator else "示例 sample",
    }
    return primitives[avro_type]


@pytest.fixture(params=STANDARDS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def standard(name: str) -> Standard:
    return load_standard(name)


@pytest.fixture
def schema(name: str) -> dict[str, Any]:
    return raw_schema(name)


# --------------------------------------------------------------------------
# The library as a whole
# --------------------------------------------------------------------------


def test_library_has_the_core_entities_and_five_departmental_datasets() -> None:
    assert set(STANDARDS) >= CORE_ENTITIES
    assert len(DEPARTMENTAL) >= 5, DEPARTMENTAL


def test_valid_text_samples_pass_their_validators() -> None:
    assert set(VALID_TEXT) == set(VALIDATORS)
    for validator, text in VALID_TEXT.items():
        assert get_validator(validator)(text) is None, validator


def test_record_names_are_unique_across_the_library() -> None:
    names = [t["name"] for n in STANDARDS for t in named_types(raw_schema(n))]
    assert len(names) == len(set(names)), sorted(names)


# --------------------------------------------------------------------------
# Each standard: loading, naming, topic
# --------------------------------------------------------------------------


def test_loads_and_fastavro_parses(name: str, standard: Standard, schema: dict[str, Any]) -> None:
    assert standard.name == schema["name"]
    assert parse_schema(json.loads(json.dumps(schema))) is not None
    assert len(standard.fields) == len(schema["fields"]) > 0


def test_dataset_is_the_file_stem_and_snake_case_of_the_record_name(
    name: str, standard: Standard, schema: dict[str, Any]
) -> None:
    assert schema["dataset"] == name == standard.dataset
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name)
    assert re.sub(r"(?<!^)(?=[A-Z])", "_", schema["name"]).lower() == name
    assert isinstance(schema["version"], int)
    assert schema["version"] >= 1


def test_topic_and_subject(standard: Standard, schema: dict[str, Any]) -> None:
    assert standard.topic == f"std.{schema['dataset']}.v{schema['version']}"
    assert standard.subject == f"{standard.topic}-value"


def test_namespace_is_set_and_not_overridden(schema: dict[str, Any]) -> None:
    assert schema["namespace"] == NAMESPACE
    for named in named_types(schema)[1:]:
        assert named.get("namespace", NAMESPACE) == NAMESPACE, named["name"]
        assert "." not in named["name"], named["name"]


# --------------------------------------------------------------------------
# Each standard: metadata
# --------------------------------------------------------------------------


def test_record_and_nested_named_types_have_docs(schema: dict[str, Any]) -> None:
    for named in named_types(schema):
        doc = named.get("doc")
        assert isinstance(doc, str), named["name"]
        assert doc.strip(), named["name"]


def test_record_metadata(schema: dict[str, Any]) -> None:
    fields = schema["fields"]
    assert schema["sensitivity"] in {s.value for s in Sensitivity}
    assert isinstance(schema["identifier"], bool)
    assert "vocabulary" in schema
    # The record's sensitivity is that of its most sensitive field, and it is an
    # identifier-bearing (linkable) record exactly when one of its fields is.
    highest = max(SENSITIVITY_ORDER.index(Sensitivity(f["sensitivity"])) for f in fields)
    assert schema["sensitivity"] == SENSITIVITY_ORDER[highest].value
    assert schema["identifier"] == any(f["identifier"] for f in fields)


def test_every_field_has_doc_sensitivity_identifier_and_vocabulary(
    schema: dict[str, Any],
) -> None:
    for field in schema["fields"]:
        where = f"{schema['name']}.{field['name']}"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field["name"]), where
        assert isinstance(field.get("doc"), str), where
        assert field["doc"].strip(), where
        assert field.get("sensitivity") in {s.value for s in Sensitivity}, where
        assert isinstance(field.get("identifier"), bool), where
        assert "vocabulary" in field, f"{where}: vocabulary key (null if none fits)"


def test_vocabulary_terms_name_a_known_vocabulary(schema: dict[str, Any]) -> None:
    terms = [schema["vocabulary"], *(f["vocabulary"] for f in schema["fields"])]
    for term in terms:
        if term is None:
            continue
        assert isinstance(term, str)
        prefix, _, local = term.partition(":")
        assert prefix in VOCABULARY_PREFIXES, term
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", local), term


def test_validators_are_registered_and_on_string_fields(schema: dict[str, Any]) -> None:
    for field in schema["fields"]:
        if "validator" not in field:
            continue
        assert field["validator"] in VALIDATORS, f"{field['name']}: {field['validator']}"
        assert non_null(field["type"]) == "string", field["name"]


def test_spec_matches_the_file(standard: Standard, schema: dict[str, Any]) -> None:
    for raw, spec in zip(schema["fields"], standard.fields, strict=True):
        assert spec.name == raw["name"]
        assert spec.sensitivity == Sensitivity(raw["sensitivity"])
        assert spec.identifier is raw["identifier"]
        assert spec.validator == raw.get("validator")
        assert spec.doc == raw["doc"]


# --------------------------------------------------------------------------
# Each standard: identifiers
# --------------------------------------------------------------------------


def test_linkage_identifiers_are_classified_consistently(schema: dict[str, Any]) -> None:
    for field in schema["fields"]:
        validator = field.get("validator")
        if validator == "cn.resident_id":
            assert field["identifier"] is True, field["name"]
            assert field["sensitivity"] == "sensitive", field["name"]
        if validator == "cn.uscc":
            assert field["identifier"] is True, field["name"]
            assert field["sensitivity"] == "public", field["name"]


def test_first_identifier_is_the_subjects_linkage_identifier(name: str, standard: Standard) -> None:
    # The registry builder indexes a record by its first identifier field.
    ids = standard.identifier_fields
    linkage = {"cn.resident_id", "cn.uscc"}
    if any(f.validator in linkage for f in ids):
        assert ids[0].validator in linkage, name
        # Required, or (Person) nullable only where a connector declares it may be absent.
        assert ids[0].required or ids[0].optional_declared, name


@pytest.mark.parametrize("dataset", DEPARTMENTAL)
def test_departmental_dataset_carries_subject_identifier_and_record_id(dataset: str) -> None:
    standard = load_standard(dataset)
    schema = raw_schema(dataset)
    assert standard.identifier_fields, dataset
    subject = standard.identifier_fields[0]
    assert subject.validator in {"cn.resident_id", "cn.uscc"}, dataset
    record_ids = [
        f
        for f in schema["fields"]
        if f["vocabulary"] == "schema:identifier" and not f["identifier"] and f["type"] == "string"
    ]
    assert len(record_ids) == 1, f"{dataset}: exactly one own record id"


# --------------------------------------------------------------------------
# Each standard: type conventions
# --------------------------------------------------------------------------


def test_optional_fields_are_null_first_with_null_default(schema: dict[str, Any]) -> None:
    for field in schema["fields"]:
        if isinstance(field["type"], list):
            assert field["type"][0] == "null", field["name"]
            assert len(field["type"]) == 2, field["name"]
            assert "default" in field, field["name"]
            assert field["default"] is None, field["name"]


def test_enums_have_a_default_symbol(schema: dict[str, Any]) -> None:
    for named in named_types(schema):
        if named["type"] == "enum":
            assert named.get("default") in named["symbols"], named["name"]


def test_dates_use_the_date_logical_type(schema: dict[str, Any]) -> None:
    for field in schema["fields"]:
        base = non_null(field["type"])
        if DATE_NAME.search(field["name"]):
            assert base == {"type": "int", "logicalType": "date"}, field["name"]
        if isinstance(base, dict) and base.get("logicalType") == "date":
            assert base["type"] == "int", field["name"]
        if isinstance(base, dict) and base.get("logicalType") == "timestamp-millis":
            assert base["type"] == "long", field["name"]


def test_money_is_long_fen(schema: dict[str, Any]) -> None:
    for field in schema["fields"]:
        base = non_null(field["type"])
        is_money = field["name"].endswith("_fen") or "unit" in field
        if is_money:
            assert field.get("unit") == "fen", field["name"]
            assert field["name"].endswith("_fen"), field["name"]
            assert base == "long", field["name"]
            assert field["sensitivity"] == "sensitive", field["name"]
        assert not (isinstance(base, dict) and base.get("logicalType") == "decimal"), (
            f"{field['name']}: money is long fen in this library, not decimal"
        )


# --------------------------------------------------------------------------
# Each standard: a sample record round-trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fill", [True, False], ids=["all-fields", "optional-null"])
def test_sample_record_round_trips(standard: Standard, schema: dict[str, Any], fill: bool) -> None:
    record = sample_value(schema, fill=fill)
    assert set(record) == {f.name for f in standard.fields}
    assert validate(record, standard.parsed, raise_errors=True)
    buffer = io.BytesIO()
    schemaless_writer(buffer, standard.parsed, record)
    buffer.seek(0)
    assert schemaless_reader(buffer, standard.parsed, None) == record


def test_sample_record_passes_the_field_validators(schema: dict[str, Any]) -> None:
    record = sample_value(schema)
    for field in schema["fields"]:
        if "validator" in field:
            assert get_validator(field["validator"])(record[field["name"]]) is None
