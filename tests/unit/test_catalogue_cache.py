"""The gateway's catalogue cache: a change committed in this process applies at once,
one made behind its back (raw SQL, another process) within the TTL, and a rolled
back change never counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue
from exchange.access.catalogue_cache import CatalogueCache, version
from exchange.access.policy import GrantRule
from exchange.core.db import transaction
from exchange.core.errors import ValidationError
from exchange.core.models import Department, Grant
from tests.support.database import migrated

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/t.db") as factory:
        with transaction(factory) as session:
            session.add(Department(code="health", name="health"))
            catalogue.add_purpose(session, "review", "Review")
        yield factory


def grants(cache: CatalogueCache, sessions: sessionmaker[Session]) -> list[GrantRule]:
    with sessions() as session:  # each call a request of its own
        return cache.grants_of(session, "health", "caseworker")


def purpose(cache: CatalogueCache, sessions: sessionmaker[Session], code: str | None) -> str:
    with sessions() as session:
        return cache.active_purpose(session, code)


def _grant(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        grant = catalogue.add_grant(
            session,
            catalogue.GrantSpec(
                department="health",
                role="caseworker",
                dataset="person",
                fields={"full_name": "full"},
                purposes=["review"],
                row_constraints={},
            ),
            created_by="test",
            at=NOW,
        )
        return grant.id


def test_a_revocation_committed_here_applies_at_the_next_call(
    sessions: sessionmaker[Session],
) -> None:
    grant_id = _grant(sessions)
    cache = CatalogueCache(ttl_s=3600, clock=Clock())
    assert [g.id for g in grants(cache, sessions)] == [grant_id]
    with transaction(sessions) as session:
        catalogue.revoke_grant(session, grant_id, by="test", at=NOW)
    assert grants(cache, sessions) == []
    # A new grant, and a bulk delete, are seen at once too.
    second = _grant(sessions)
    assert [g.id for g in grants(cache, sessions)] == [second]
    with transaction(sessions) as session:
        session.execute(delete(Grant))
    assert grants(cache, sessions) == []


def test_a_deactivated_purpose_is_refused_at_once(sessions: sessionmaker[Session]) -> None:
    cache = CatalogueCache(ttl_s=3600, clock=Clock())
    assert purpose(cache, sessions, "review") == "review"
    # Exactly the code, never a tidied one (issue 17, finding 3).
    with pytest.raises(ValidationError) as caught:
        purpose(cache, sessions, " review ")
    assert caught.value.reasons[0][1] == "purpose.not_canonical"
    with transaction(sessions) as session:
        catalogue.deactivate_purpose(session, "review")
    with pytest.raises(ValidationError) as caught:
        purpose(cache, sessions, "review")
    assert caught.value.reasons[0][1] == "purpose.inactive"
    for code, reason in ((None, "purpose.missing"), ("nope", "purpose.unknown")):
        with pytest.raises(ValidationError) as caught:
            purpose(cache, sessions, code)
        assert caught.value.reasons[0][1] == reason


def test_a_change_behind_its_back_applies_after_the_ttl(sessions: sessionmaker[Session]) -> None:
    grant_id = _grant(sessions)
    clock = Clock()
    cache = CatalogueCache(ttl_s=2.0, clock=clock)
    assert len(grants(cache, sessions)) == 1
    before = version.value
    with sessions() as session:  # raw SQL: no session event sees it
        session.execute(
            text("UPDATE grants SET revoked_at = '2026-01-01' WHERE id = :i"), {"i": grant_id}
        )
        session.commit()
    assert version.value == before
    clock.now = 1.9
    assert len(grants(cache, sessions)) == 1  # within the documented bound
    clock.now = 2.0
    assert grants(cache, sessions) == []


def test_a_change_committed_after_a_request_began_is_not_cached_as_current(
    sessions: sessionmaker[Session],
) -> None:
    grant_id = _grant(sessions)
    cache = CatalogueCache(ttl_s=3600, clock=Clock())
    with sessions() as request:
        request.connection()  # the request's transaction has begun
        with transaction(sessions) as admin:
            catalogue.revoke_grant(admin, grant_id, by="test", at=NOW)
        cache.grants_of(request, "health", "caseworker")  # whatever its snapshot shows
    assert grants(cache, sessions) == []  # the next request reloads


def test_a_rolled_back_change_does_not_count(sessions: sessionmaker[Session]) -> None:
    grant_id = _grant(sessions)
    before = version.value
    with sessions() as session:
        catalogue.revoke_grant(session, grant_id, by="test", at=NOW)
        session.rollback()
    assert version.value == before
