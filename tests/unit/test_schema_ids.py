"""Schema ids by the whole schema (issue 16): an id never stands for two different schemas.

Ids were given by the Avro Parsing Canonical Form, which drops logical types and
their parameters, defaults, aliases and doc: a decimal of scale 4 registered after
one of scale 2 got the scale-2 id and text, and its readers got values 100x off.
On SQLite; the Confluent client's view of the same is in
tests/integration/test_registry_api.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import MIGRATIONS_DIR, make_engine, migrate, session_factory
from exchange.core.errors import IncompatibleSchemaError
from exchange.core.models import SchemaRecord, SubjectVersion
from schemas.store import SchemaStore, canonical_form, fingerprint_of, schema_form

BASE: dict[str, Any] = {
    "type": "record",
    "name": "Payment",
    "namespace": "gov.test",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                    "precision": 10, "scale": 2}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ref", "type": "string"},
        {"name": "count", "type": "int"},
    ],
}  # fmt: skip


def _variant(change: str) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    fields = {f["name"]: f for f in schema["fields"]}
    if change == "scale":
        fields["amount"]["type"]["scale"] = 4
    elif change == "precision":
        fields["amount"]["type"]["precision"] = 12
    elif change == "timestamp unit":
        fields["at"]["type"]["logicalType"] = "timestamp-micros"
    elif change == "uuid":
        fields["ref"]["type"] = {"type": "string", "logicalType": "uuid"}
    elif change == "default":
        fields["count"]["default"] = 0
    elif change == "alias":
        schema["aliases"] = ["OldPayment"]
    elif change == "doc":
        fields["count"]["doc"] = "How many."
    else:  # pragma: no cover
        raise AssertionError(change)
    return schema


CHANGES = ["scale", "precision", "timestamp unit", "uuid", "default", "alias", "doc"]


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


@pytest.mark.parametrize("change", CHANGES)
def test_schemas_that_differ_get_ids_and_texts_of_their_own(
    store: SchemaStore, change: str
) -> None:
    variant = _variant(change)
    assert canonical_form(variant) == canonical_form(BASE)  # what used to merge them
    first = store.register("a-value", BASE)
    second = store.register("b-value", variant)
    assert first != second
    assert json.loads(store.schema_text(first)) == BASE
    assert json.loads(store.schema_text(second)) == variant
    assert store.lookup("b-value", variant).schema_id == second
    assert store.shared_ids() == {}


def test_formatting_and_key_order_do_not_make_another_schema(store: SchemaStore) -> None:
    first = store.register("a-value", BASE)
    reordered = {key: BASE[key] for key in reversed(list(BASE))}
    spaced = json.dumps(reordered, indent=4)
    assert store.register("b-value", spaced) == first
    assert store.register("a-value", spaced) == first  # idempotent: no second version
    assert store.versions("a-value") == [1]
    assert schema_form(spaced) == schema_form(BASE)
    assert store.shared_ids() == {first: ["a-value", "b-value"]}


def test_field_order_is_significant(store: SchemaStore) -> None:
    swapped = {**BASE, "fields": list(reversed(BASE["fields"]))}
    assert store.register("a-value", BASE) != store.register("b-value", swapped)


def test_adding_a_default_under_full_is_a_version_so_the_field_can_go_next(
    store: SchemaStore,
) -> None:
    store.set_config("FULL", "a-value")
    v1 = store.register("a-value", BASE)
    v2 = store.register("a-value", _variant("default"))
    assert v2 != v1
    assert store.versions("a-value") == [1, 2]
    without = {**BASE, "fields": [f for f in BASE["fields"] if f["name"] != "count"]}
    store.register("a-value", without)  # FULL: the field had a default, so it may go
    assert store.versions("a-value") == [1, 2, 3]


def test_registration_checks_what_a_changed_text_breaks(store: SchemaStore) -> None:
    # Under the old ids, this text found the first one's id and was returned without a check.
    store.set_config("BACKWARD_TRANSITIVE", "a-value")
    store.register("a-value", _variant("scale"))
    with pytest.raises(IncompatibleSchemaError):
        store.register("a-value", BASE)
    assert store.versions("a-value") == [1]


def _legacy_row(session: Session, text: str, subject: str, schema_id: int | None = None) -> int:
    # What 0007's registry stored: the fingerprint of the Parsing Canonical Form.
    if schema_id is None:
        canonical = canonical_form(text)
        result = session.execute(
            insert(SchemaRecord).values(
                fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
                canonical=canonical,
                schema_json=text,
            )
        )
        schema_id = int(result.inserted_primary_key[0])
    session.execute(insert(SubjectVersion).values(subject=subject, version=1, schema_id=schema_id))
    return schema_id


def test_migration_keeps_old_ids_and_gives_a_differing_text_its_own(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    sessions: sessionmaker[Session] = session_factory(engine)
    with sessions.begin() as session:
        shared = _legacy_row(session, json.dumps(BASE), "a-value")
        _legacy_row(session, "", "b-value", schema_id=shared)  # b meant scale 4, got this id
    migrate(engine)
    store = SchemaStore(sessions)
    with sessions() as session:
        stored = session.scalar(select(SchemaRecord.fingerprint).where(SchemaRecord.id == shared))
    assert stored == fingerprint_of(BASE)
    assert json.loads(store.schema_text(shared)) == BASE  # still read as it always was
    assert store.register("a-value", BASE) == shared  # the same text, the same id
    assert store.shared_ids() == {shared: ["a-value", "b-value"]}
    scale_4 = store.register("c-value", _variant("scale"))
    assert scale_4 != shared
    assert json.loads(store.schema_text(scale_4)) == _variant("scale")


def test_normalize_folds_only_what_confluents_normalisation_folds(store: SchemaStore) -> None:
    spelled = {
        "type": "record",
        "name": "gov.test.Payment",
        "fields": [{"name": "count", "type": {"type": "int"}}],
    }
    plain = {
        "namespace": "gov.test",
        "name": "Payment",
        "type": "record",
        "fields": [{"type": "int", "name": "count"}],
    }
    first = store.register("n-value", spelled, normalize=True)
    assert store.register("m-value", plain, normalize=True) == first
    assert store.lookup("m-value", plain, normalize=True).schema_id == first
    # Without normalize a spelling other than the normal form is another schema, as
    # Confluent's default has it; the normal form itself is the same schema.
    assert store.register("o-value", spelled) != first
    assert store.register("q-value", plain) == first
    # What normalisation keeps still makes another schema: a default.
    with_default = {**plain, "fields": [{"type": "int", "name": "count", "default": 0}]}
    assert store.register("p-value", with_default, normalize=True) != first
    # The stored text is the normal form.
    assert json.loads(store.schema_text(first))["name"] == "Payment"
