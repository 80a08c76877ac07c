"""Person's evolution for issue 18 is compatible where the registry requires it.

``tests/unit/data/person_v1_before_i18.avsc`` is Person as it was before the
address fields and the optional resident id: records already on ``std.person.v1``
were written with it (in its wire form). The registry registers the new version
under the same subject at the std subjects' level, BACKWARD (the default), and the
new schema reads every old record.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import fastavro
import pytest
from sqlalchemy import Engine

from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import IncompatibleSchemaError
from schemas import CompatibilityLevel, SchemaStore, check_level, load_standard
from schemas.standards import wire_schema

OLD = json.loads(
    (Path(__file__).parent / "data" / "person_v1_before_i18.avsc").read_text(encoding="utf-8")
)
NEW = load_standard("person").schema
NEW_FIELDS = ("address_line", "postcode", "current_division_code", "current_address_line")


def test_the_new_fields_are_optional_with_default_null() -> None:
    person = load_standard("person")
    for name in NEW_FIELDS:
        spec = person.field(name)
        assert spec.avro_type == ["null", "string"]
        assert spec.has_default
        assert spec.default is None
        assert not spec.required
        assert spec.sensitivity.value == "personal"
    assert person.field("postcode").validator == "intl.postcode"
    assert person.field("current_division_code").validator == "cn.division_code"
    resident_id = person.field("resident_id")
    assert resident_id.avro_type == ["null", "string"]
    assert resident_id.optional_declared
    assert not resident_id.required


@pytest.mark.parametrize("form", ["standard", "wire"])
def test_backward_compatible_with_the_previous_person(form: str) -> None:
    old, new = (OLD, NEW) if form == "standard" else (wire_schema(OLD), wire_schema(NEW))
    assert check_level(CompatibilityLevel.BACKWARD, new, [(1, old)]) == []
    assert check_level(CompatibilityLevel.BACKWARD_TRANSITIVE, new, [(1, old)]) == []


def test_not_forward_compatible_only_because_of_the_optional_resident_id() -> None:
    # An old reader cannot read a record whose resident id is null: the change is
    # BACKWARD (consumers first), which is what docs/standards.md says.
    problems = check_level(CompatibilityLevel.FORWARD, wire_schema(NEW), [(1, wire_schema(OLD))])
    assert problems
    fields = {p.location.split(".")[1] for p in problems}
    assert fields <= {"resident_id", "resident_id_bidx"}
    assert "resident_id" in fields


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def test_the_registry_registers_the_new_wire_schema_after_the_old(engine: Engine) -> None:
    migrate(engine)
    store = SchemaStore(session_factory(engine))
    subject = load_standard("person").wire.subject
    old_id = store.register(subject, wire_schema(OLD))
    new_id = store.register(subject, wire_schema(NEW))
    assert new_id != old_id
    assert store.versions(subject) == [1, 2]


def test_the_registry_refuses_it_under_full(engine: Engine) -> None:
    migrate(engine)
    store = SchemaStore(session_factory(engine))
    subject = load_standard("person").wire.subject
    store.register(subject, wire_schema(OLD))
    store.set_config("FULL", subject)
    with pytest.raises(IncompatibleSchemaError):
        store.register(subject, wire_schema(NEW))


def _encode(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def test_an_old_record_reads_with_the_new_schema() -> None:
    old_record = {
        "resident_id": b"sealed",
        "resident_id_bidx": "ab" * 32,
        "family_name": "王",
        "given_name": "小明",
        "full_name": "王小明",
        "birth_date": date(1990, 3, 7),
        "sex": "MALE",
        "nationality": "CHN",
        "residence_division_code": "330103",
        "phone": None,
    }
    data = _encode(wire_schema(OLD), old_record)
    read = fastavro.schemaless_reader(
        io.BytesIO(data),
        fastavro.parse_schema(wire_schema(OLD)),
        fastavro.parse_schema(wire_schema(NEW)),
    )
    assert read == {**old_record, **dict.fromkeys(NEW_FIELDS)}


def test_a_record_without_resident_id_encodes_and_has_no_blind_index() -> None:
    record = {
        "resident_id": None,
        "family_name": "王",
        "given_name": "小明",
        "full_name": "王小明",
        "birth_date": date(1990, 3, 7),
        "sex": "MALE",
    }
    schema = fastavro.parse_schema(wire_schema(NEW))
    read = fastavro.schemaless_reader(io.BytesIO(_encode(wire_schema(NEW), record)), schema)
    assert read["resident_id"] is None
    assert read["resident_id_bidx"] is None
