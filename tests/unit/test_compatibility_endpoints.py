"""Registration and the compatibility check agree (issue 16, point 2), on SQLite.

``SchemaStore.check(subject, schema)`` (``POST /compatibility/subjects/{s}/versions``)
must refuse exactly what ``register`` refuses, at every level; ``latest`` checks the
latest version alone, as Confluent's registry does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import IncompatibleSchemaError, SubjectNotFoundError
from schemas.compatibility import CompatibilityLevel
from schemas.store import SchemaStore, schema_form

# Field shapes a record may hold; several differ only in type or default, so random
# sequences of them break and keep compatibility in every direction.
FIELDS: dict[str, list[dict[str, Any]]] = {
    "a": [{"name": "a", "type": "int"}, {"name": "a", "type": "long"},
          {"name": "a", "type": "int", "default": 0}],
    "b": [{"name": "b", "type": "string"}, {"name": "b", "type": ["null", "string"],
                                             "default": None}],
    "c": [{"name": "c", "type": "double", "default": 0.0}, {"name": "c", "type": "float"}],
}  # fmt: skip

schemas = st.builds(
    lambda chosen: json.dumps({
        "type": "record", "name": "R", "namespace": "gov.test",
        "fields": [FIELDS[name][i] for name, i in sorted(chosen.items())],
    }),
    st.dictionaries(st.sampled_from(sorted(FIELDS)), st.integers(0, 2)).map(
        lambda d: {k: v % len(FIELDS[k]) for k, v in d.items()}
    ),
)  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchemaStore]:
    path: Path = tmp_path_factory.mktemp("registry") / "registry.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    try:
        yield SchemaStore(session_factory(engine))
    finally:
        engine.dispose()


@settings(max_examples=150)
@given(level=st.sampled_from(list(CompatibilityLevel)), history=st.lists(schemas, max_size=6))
def test_registration_refuses_exactly_what_the_check_refuses(
    store: SchemaStore, level: CompatibilityLevel, history: list[str]
) -> None:
    subject = f"s-{uuid.uuid4().hex}"
    store.set_config(level.value, subject)
    for schema in history:
        live = {
            schema_form(store.get_version(subject, v).schema) for v in _versions(store, subject)
        }
        verdict = store.check(subject, schema)
        try:
            store.register(subject, schema)
        except IncompatibleSchemaError:
            assert verdict, f"registration refused what the check accepted at {level.value}"
        else:
            # The very schema already live under the subject is returned without a check.
            assert not verdict or schema_form(schema) in live, (
                f"registration accepted what the check refused at {level.value}: {verdict}"
            )


def _versions(store: SchemaStore, subject: str) -> list[int]:
    try:
        return store.versions(subject)
    except SubjectNotFoundError:
        return []


def test_latest_checks_the_latest_version_alone(store: SchemaStore) -> None:
    subject = f"s-{uuid.uuid4().hex}"
    store.set_config("BACKWARD_TRANSITIVE", subject)
    store.register(subject, json.dumps({"type": "record", "name": "R", "fields": []}))
    store.register(subject, json.dumps({"type": "record", "name": "R",
                   "fields": [{"name": "a", "type": "int", "default": 0}]}))  # fmt: skip
    required = json.dumps({"type": "record", "name": "R",
                           "fields": [{"name": "a", "type": "int"}]})  # fmt: skip
    # It reads the latest version's data (which has a), not version 1's (which has none).
    assert store.check(subject, required, "latest") == []
    assert [p.version for p in store.check(subject, required)] == [1]
    with pytest.raises(IncompatibleSchemaError):
        store.register(subject, required)


def test_a_subject_with_no_versions_accepts_anything(store: SchemaStore) -> None:
    anything = json.dumps({"type": "record", "name": "R", "fields": []})
    assert store.check(f"s-{uuid.uuid4().hex}", anything) == []
