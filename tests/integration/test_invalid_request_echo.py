"""A request the API cannot parse (422) is told back without what the client typed.

A careless client may put an identity number or a name where the API expects a
free-form key (a field of ``fields``, a row constraint, a field note): the problem
detail and the audit entry (kept for ever, hash-chained) name the location with
declared names only, the key shown as ``*``. On SQLite and PostgreSQL, real gateway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration

NUMBER = "31011519720314021" + resident_id_check_character("31011519720314021")
NAME = "张建国"
REQUEST = {
    "dataset": "person",
    "purposes": ["minimum-living-allowance"],
    "legal_basis": "art. 12",
    "justification": "reviews",
    "duration_days": 30,
}


@dataclass
class World:
    client: TestClient
    sessions: sessionmaker[Session]
    key: str


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        key = create_key(session, actor="ca.admin", department="civil_affairs",
                         role="department_admin")  # fmt: skip
    settings = Settings(
        database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield World(client, sessions, key)
    finally:
        engine.dispose()


@pytest.mark.parametrize("typed", [NUMBER, NAME])
def test_a_free_form_key_is_not_echoed_in_the_problem_or_the_audit_log(
    world: World, typed: str
) -> None:
    asks: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/sharing/requests", {**REQUEST, "fields": {typed: 1}}),
        (
            "POST",
            "/v1/sharing/requests",
            {**REQUEST, "fields": {"full_name": "full"}, "row_constraints": {typed: [1]}},
        ),
        ("PUT", "/v1/catalogue/resources/person", {"field_notes": {typed: 1}}),
    ]
    answers = [
        world.client.request(method, path, json=body, headers={"X-API-Key": world.key})
        for method, path, body in asks
    ]

    assert [a.status_code for a in answers] == [422, 422, 422]
    details = [a.json()["detail"] for a in answers]
    assert details == [
        "body.fields.*: Input should be a valid string",
        "body.row_constraints.*: Input should be a valid string",
        "body.field_notes.*: Input should be a valid string",
    ]
    for answer in answers:
        assert typed not in answer.text
    with world.sessions() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert len(entries) == 3
    for entry in entries:
        assert entry.status == 422
        assert "body." in entry.reason
        stored = json.dumps(
            [entry.reason, entry.subjects, entry.fields, entry.case_ref, entry.dataset],
            ensure_ascii=False,
        )
        assert typed not in stored


def test_a_declared_name_is_still_told(world: World) -> None:
    """What helps the client stays: a misspelt value of a declared field is named."""
    answer = world.client.post(
        "/v1/sharing/requests",
        json={**REQUEST, "fields": {"full_name": "full"}, "duration_days": "soon"},
        headers={"X-API-Key": world.key},
    )

    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.duration_days: ")
