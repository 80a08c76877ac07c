"""The schema registry's modes, explicit ids and versions, and schema references (issue 16).

On the store, over SQLite; the same through Confluent's client, on SQLite and
PostgreSQL, is in tests/integration/test_registry_modes_references.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import (
    IncompatibleSchemaError,
    InvalidModeError,
    InvalidSchemaError,
    ModeNotFoundError,
    OperationNotPermittedError,
    ReferenceExistsError,
    SchemaNotInSubjectError,
    SubjectNotFoundError,
)
from schemas.importer import SourceVersion, import_versions, in_dependency_order
from schemas.references import Reference, expand, parse_references
from schemas.store import SchemaStore

ADDRESS: dict[str, Any] = {
    "type": "record",
    "name": "Address",
    "namespace": "gov.test",
    "fields": [{"name": "street", "type": "string"}],
}
PERSON: dict[str, Any] = {
    "type": "record",
    "name": "Person",
    "namespace": "gov.test",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "home", "type": "gov.test.Address"},
        {"name": "work", "type": ["null", "Address"], "default": None},
    ],
}
TO_ADDRESS = [Reference("gov.test.Address", "address", 1)]


def _record(name: str, *fields: str) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "gov.test",
        "fields": [{"name": f, "type": "string"} for f in fields],
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(engine: Engine) -> SchemaStore:
    migrate(engine)
    return SchemaStore(session_factory(engine))


# -- modes -------------------------------------------------------------------------


def test_modes_default_to_readwrite_and_a_subject_mode_overrides_the_global(
    store: SchemaStore,
) -> None:
    assert store.get_mode() == "READWRITE"
    with pytest.raises(ModeNotFoundError):
        store.get_mode("s")
    assert store.get_mode("s", default_to_global=True) == "READWRITE"
    assert store.set_mode("readonly") == "READONLY"
    assert store.get_mode("s", default_to_global=True) == "READONLY"
    store.set_mode("READWRITE", "s")
    assert store.get_mode("s") == "READWRITE"
    store.register("s", _record("A", "a"))  # the subject's own mode wins
    with pytest.raises(OperationNotPermittedError, match="t is in read-only mode"):
        store.register("t", _record("A", "a"))
    assert store.delete_mode("s") == "READWRITE"
    with pytest.raises(SubjectNotFoundError):
        store.delete_mode("s")
    assert store.delete_mode() == "READONLY"
    assert store.get_mode() == "READWRITE"
    with pytest.raises(InvalidModeError):
        store.set_mode("READWRITE_PLEASE")


def test_readonly_refuses_registration_deletes_and_configuration(store: SchemaStore) -> None:
    store.register("s", _record("A", "a"))
    store.set_mode("READONLY", "s")
    for attempt in (
        lambda: store.register("s", _record("A", "a", "b")),
        lambda: store.delete_version("s", 1),
        lambda: store.delete_subject("s"),
        lambda: store.set_config("NONE", "s"),
    ):
        with pytest.raises(OperationNotPermittedError, match="read-only"):
            attempt()
    assert store.versions("s") == [1]
    # Reading and registering what is there already still work.
    assert store.register("s", _record("A", "a")) == store.get_version("s", 1).schema_id


def test_import_needs_an_empty_scope_or_force(store: SchemaStore) -> None:
    store.register("s", _record("A", "a"))
    with pytest.raises(OperationNotPermittedError, match="Cannot import"):
        store.set_mode("IMPORT")
    with pytest.raises(OperationNotPermittedError, match="Cannot import"):
        store.set_mode("IMPORT", "s")
    assert store.set_mode("IMPORT", "empty") == "IMPORT"
    assert store.set_mode("IMPORT", "s", force=True) == "IMPORT"


def test_import_keeps_ids_and_versions_and_skips_compatibility(store: SchemaStore) -> None:
    store.set_mode("IMPORT", "s")
    assert store.register("s", _record("A", "a"), schema_id=1000, version=3) == 1000
    # Incompatible (a new required field) but imported: IMPORT does not check.
    assert store.register("s", _record("A", "a", "b"), schema_id=7, version=9) == 7
    assert store.versions("s") == [3, 9]
    assert store.get_version("s", 3).schema_id == 1000
    # Replays are idempotent; no id is refused; another schema under a used id is.
    assert store.register("s", _record("A", "a"), schema_id=1000, version=3) == 1000
    with pytest.raises(OperationNotPermittedError, match="not in read-write mode"):
        store.register("s", _record("A", "c"))
    with pytest.raises(OperationNotPermittedError, match="Overwrite new schema with id 1000"):
        store.register("s", _record("A", "other"), schema_id=1000, version=10)
    # The same schema may come under a second id (Confluent allows it in IMPORT).
    store.set_mode("IMPORT", "t")
    assert store.register("t", _record("A", "a"), schema_id=1001) == 1001
    assert json.loads(store.schema_text(1001)) == _record("A", "a")
    store.delete_mode("s")
    store.delete_mode("t")
    # Back in READWRITE, a new schema gets a fresh id, not one an import took.
    fresh = store.register("u", _record("U", "u"))
    assert fresh not in (7, 1000, 1001)
    assert store.get_version("s", 3).schema_id == 1000


def test_explicit_ids_and_versions_outside_import(store: SchemaStore) -> None:
    first = store.register("s", _record("A", "a"))
    assert store.register("s", _record("A", "a"), schema_id=first, version=1) == first
    with pytest.raises(OperationNotPermittedError, match="not in import mode"):
        store.register("s", _record("A", "a", "b"), schema_id=first + 50)
    with pytest.raises(InvalidSchemaError, match="not one more"):
        store.register("s", {**_record("A", "a"), "doc": "x"}, version=5)
    assert store.register("s", {**_record("A", "a"), "doc": "x"}, version=2) != first
    assert store.register("s", {**_record("A", "a"), "doc": "y"}, version=-1) > 0
    assert store.versions("s") == [1, 2, 3]


# -- references ---------------------------------------------------------------------


def test_references_register_look_up_and_are_part_of_the_identity(store: SchemaStore) -> None:
    store.register("address", ADDRESS)
    person = store.register("person", PERSON, references=TO_ADDRESS)
    found = store.lookup("person", PERSON, references=TO_ADDRESS)
    assert (found.schema_id, found.references) == (person, tuple(TO_ADDRESS))
    with pytest.raises((SchemaNotInSubjectError, InvalidSchemaError)):
        store.lookup("person", PERSON)  # the same text without its reference
    assert store.schema_of(person) == (json.dumps(PERSON), tuple(TO_ADDRESS))
    # The registry reads it with the Address definition in place.
    expanded = json.loads(store.schema_text(person))
    assert expanded["fields"][1]["type"]["name"] == "gov.test.Address"
    fastavro.parse_schema(expanded)
    # The same text referring to another version of address is another schema.
    store.register("address", {**ADDRESS, "doc": "v2"})
    to_v2 = [Reference("gov.test.Address", "address", 2)]
    assert store.register("person", PERSON, references=to_v2) != person


def test_a_reference_to_a_missing_version_is_an_invalid_schema(store: SchemaStore) -> None:
    with pytest.raises(InvalidSchemaError, match="address version 1, which is not registered"):
        store.register("person", PERSON, references=TO_ADDRESS)
    with pytest.raises(InvalidSchemaError):
        store.register("person", PERSON)  # an unknown name without its reference


def test_compatibility_with_references(store: SchemaStore) -> None:
    store.register("address", ADDRESS)
    store.register("person", PERSON, references=TO_ADDRESS)
    added = {**PERSON, "fields": [*PERSON["fields"], {"name": "age", "type": "int"}]}
    assert store.check("person", added, references=TO_ADDRESS)  # a new field, no default
    with pytest.raises(IncompatibleSchemaError):
        store.register("person", added, references=TO_ADDRESS)
    optional = {
        **PERSON,
        "fields": [*PERSON["fields"], {"name": "age", "type": "int", "default": 0}],
    }
    assert store.check("person", optional, references=TO_ADDRESS) == []
    # A referenced type that changes incompatibly breaks the referencing subject's check.
    store.set_config("NONE", "address")
    store.register("address", _record("Address", "street", "city"))
    to_v2 = [Reference("gov.test.Address", "address", 2)]
    problems = store.check("person", PERSON, references=to_v2)
    assert any("city" in p.message or "city" in p.location for p in problems)


def test_referenced_versions_cannot_be_deleted(store: SchemaStore) -> None:
    address = store.register("address", ADDRESS)
    person = store.register("person", PERSON, references=TO_ADDRESS)
    assert store.referenced_by("address", 1) == [person]
    assert store.referenced_by("address", "latest") == [person]
    with pytest.raises(ReferenceExistsError):
        store.delete_version("address", 1)
    with pytest.raises(ReferenceExistsError):
        store.delete_subject("address")
    store.delete_subject("person")
    # Soft-deleted, person may still be read by id, so address stays.
    with pytest.raises(ReferenceExistsError):
        store.delete_version("address", 1)
    store.delete_subject("person", permanent=True)
    assert store.referenced_by("address", 1) == []
    assert store.delete_version("address", 1) == 1
    assert json.loads(store.schema_text(address)) == ADDRESS


def test_references_of_references_and_a_diamond(store: SchemaStore) -> None:
    country = _record("Country", "code")
    address = {
        **ADDRESS,
        "fields": [*ADDRESS["fields"], {"name": "country", "type": "gov.test.Country"}],
    }
    store.register("country", country)
    store.register("address", address, references=[Reference("gov.test.Country", "country", 1)])
    # Uses Country first, then Address (which brings Country again): one definition each.
    trip = {
        "type": "record",
        "name": "Trip",
        "namespace": "gov.test",
        "fields": [
            {"name": "origin", "type": "Country"},
            {"name": "to", "type": "Address"},
        ],
    }
    refs = [
        Reference("gov.test.Country", "country", 1),
        Reference("gov.test.Address", "address", 1),
    ]
    trip_id = store.register("trip", trip, references=refs)
    parsed = fastavro.parse_schema(json.loads(store.schema_text(trip_id)))
    record = {"origin": {"code": "CN"}, "to": {"street": "x", "country": {"code": "FR"}}}
    assert fastavro.validate(record, parsed)


def test_expand_keeps_a_definition_without_namespace_in_its_own_name() -> None:
    bare = {"type": "enum", "name": "Colour", "symbols": ["RED"]}
    schema: dict[str, Any] = {
        "type": "record",
        "name": "Car",
        "namespace": "gov.test",
        "fields": [{"name": "colour", "type": "Colour"}, {"name": "spare", "type": "Colour"}],
    }
    # "Colour" inside gov.test means gov.test.Colour, unless defined elsewhere as Colour.
    expanded = expand(schema, {"Colour": bare})
    assert expanded["fields"][0]["type"]["name"] == "Colour"
    assert expanded["fields"][0]["type"]["namespace"] == ""
    assert expanded["fields"][1]["type"] == "Colour"
    assert schema["fields"][0]["type"] == "Colour"  # the input is not changed


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        [{"name": "A"}],
        [{"name": "A", "subject": "s", "version": 0}],
        [{"name": "A", "subject": "s", "version": True}],
        [{"name": "A", "subject": "s", "version": 1}, {"name": "A", "subject": "t", "version": 1}],
    ],
)
def test_malformed_references_are_invalid_schemas(raw: Any) -> None:
    with pytest.raises(InvalidSchemaError):
        parse_references(raw)


# -- import -------------------------------------------------------------------------


def _source(subject: str, version: int, schema_id: int, schema: Any, **kw: Any) -> SourceVersion:
    return SourceVersion(
        subject=subject,
        version=version,
        schema_id=schema_id,
        schema=json.dumps(schema),
        references=tuple(kw.get("references", ())),
        deleted=kw.get("deleted", False),
    )


def test_import_keeps_ids_orders_references_first_and_is_safe_to_rerun(
    store: SchemaStore,
) -> None:
    versions = [
        _source("person", 1, 3, PERSON, references=TO_ADDRESS),
        _source("address", 1, 40, ADDRESS),
        _source("other", 2, 1000, _record("O", "o"), deleted=True),
        _source("other", 4, 1001, _record("O", "o", "p")),
    ]
    assert [v.schema_id for v in in_dependency_order(versions)] == [40, 3, 1000, 1001]
    report = import_versions(store, versions)
    assert (len(report.imported), len(report.present), report.refused) == (4, 0, [])
    assert store.get_version("person", 1).schema_id == 3
    assert store.versions("other") == [4]
    assert store.versions("other", include_deleted=True) == [2, 4]
    assert json.loads(store.schema_text(1000)) == _record("O", "o")
    for subject in ("person", "address", "other"):  # back to the mode they had
        with pytest.raises(ModeNotFoundError):
            store.get_mode(subject)
    again = import_versions(store, versions)
    assert (len(again.imported), len(again.present), again.refused) == (0, 4, [])


def test_import_reports_an_id_taken_by_another_schema_and_goes_on(store: SchemaStore) -> None:
    taken = store.register("mine", _record("Mine", "m"))
    versions = [
        _source("theirs", 1, taken, _record("Theirs", "t")),
        _source("theirs", 2, taken + 1, _record("Theirs", "t", "u")),
    ]
    report = import_versions(store, versions)
    [(refused, why)] = report.refused
    assert refused.version == 1
    assert "Overwrite new schema" in why
    assert [v.version for v in report.imported] == [2]
    assert json.loads(store.schema_text(taken)) == _record("Mine", "m")


def test_import_leaves_a_readonly_subject_alone(store: SchemaStore) -> None:
    store.set_mode("READONLY", "frozen")
    report = import_versions(store, [_source("frozen", 1, 5, _record("F", "f"))])
    assert [why for _, why in report.refused] == ["refused: subject frozen is READONLY here"]
    assert store.get_mode("frozen") == "READONLY"
    with pytest.raises(SubjectNotFoundError):
        store.versions("frozen")


# -- the rule for all inputs --------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=40, deadline=None)
@given(
    fields=st.lists(NAMES, min_size=1, max_size=4, unique=True),
    ids=st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=1, max_size=4,
                 unique=True),
)  # fmt: skip
def test_an_imported_id_always_reads_back_its_own_schema(
    tmp_path_factory: pytest.TempPathFactory, fields: list[str], ids: list[int]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('p') / 'r.db'}")
    try:
        migrate(engine)
        store = SchemaStore(session_factory(engine))
        store.set_mode("IMPORT")
        schemas = {i: _record("R", *fields[: n + 1]) for n, i in enumerate(ids)}
        for n, (schema_id, schema) in enumerate(schemas.items(), start=1):
            store.register(f"s{n}", schema, schema_id=schema_id)
        store.delete_mode()
        fresh = store.register("new", _record("New", "x"))
        assert fresh not in schemas
        for schema_id, schema in schemas.items():
            assert json.loads(store.schema_text(schema_id)) == schema
    finally:
        engine.dispose()
