"""A request body over ``gateway.max_body_bytes`` is refused, 413, audited, never read whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from gateway import create_app
from tests.support.catalogue import add_purpose
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

LIMIT = 4096
MLA = "minimum-living-allowance"
LOOKUP = f"/v1/persons/lookup?purpose={MLA}"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[TestClient, sessionmaker[Session], str]]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    add_purpose(sessions, MLA)
    with transaction(sessions) as session:
        key = create_key(session, actor="alice", department="civil_affairs", role="caseworker")
    settings = Settings(
        database_url=url,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
        gateway={"max_body_bytes": LIMIT},
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield client, sessions, key
    finally:
        engine.dispose()


def _entries(sessions: sessionmaker[Session]) -> list[tuple[str, str, int, str, str | None]]:
    with sessions() as session:
        return [
            (e.action, e.decision, e.status, e.reason, e.actor)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def test_a_declared_body_over_the_limit_is_refused_and_audited(
    gateway: tuple[TestClient, sessionmaker[Session], str],
) -> None:
    client, sessions, key = gateway
    big = '{"resident_id": "' + "1" * LIMIT + '"}'
    answer = client.post(LOOKUP, content=big, headers={"X-API-Key": key,
                         "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert "gateway.max_body_bytes" in answer.json()["detail"]
    assert "1111" not in answer.text
    [entry] = _entries(sessions)
    assert (entry[1], entry[2], entry[4]) == ("deny", 413, "alice")
    assert "max_body_bytes" in entry[3]
    assert "1111" not in entry[3]


def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    gateway: tuple[TestClient, sessionmaker[Session], str],
) -> None:
    client, sessions, key = gateway
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 KiB in all, no Content-Length
            sent.append(1)
            yield b" " * 1024

    answer = client.post(
        LOOKUP, content=chunks(), headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert [(e[1], e[2]) for e in _entries(sessions)] == [("deny", 413)]


def test_a_body_within_the_limit_is_read_as_before(
    gateway: tuple[TestClient, sessionmaker[Session], str],
) -> None:
    client, sessions, key = gateway
    answer = client.post(LOOKUP, json={"resident_id": "110105198001010019"},
                         headers={"X-API-Key": key})  # fmt: skip
    assert answer.status_code in (403, 404)  # no grant: refused for that, not for its size
    assert [e[2] for e in _entries(sessions)] == [answer.status_code]
