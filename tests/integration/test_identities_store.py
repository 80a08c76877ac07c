"""Departments, users and keys stored on SQLite and PostgreSQL: the same suite on both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction, utcnow
from exchange.core.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from exchange.identity import apikeys, identities
from exchange.identity.apikeys import VerifiedKeyCache, authenticate
from tests.support.database import migrated

pytestmark = pytest.mark.integration


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    with migrated(database_url) as factory:
        with transaction(factory) as session:
            identities.create_department(session, "civil_affairs", "Civil Affairs")
            identities.create_department(session, "health", "Health Commission")
            identities.create_user(
                session,
                username="li.na",
                department="civil_affairs",
                role="caseworker",
                display_name="Li Na",
                oidc_subject="sub-1",
            )
        yield factory


def test_departments_and_users_round_trip(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        identities.create_user(session, username="zhao", department="health", role="auditor")

    with sessions() as session:
        departments = identities.list_departments(session)
        users = identities.list_users(session)
        health = identities.list_users(session, department="health")

    assert [(d.code, d.name) for d in departments] == [
        ("civil_affairs", "Civil Affairs"),
        ("health", "Health Commission"),
    ]
    assert [(u.username, u.department, u.role, u.active) for u in users] == [
        ("li.na", "civil_affairs", "caseworker", True),
        ("zhao", "health", "auditor", True),
    ]
    assert users[0].display_name == "Li Na"
    assert users[0].oidc_subject == "sub-1"
    assert [u.username for u in health] == ["zhao"]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"username": "li.na", "department": "health", "role": "caseworker"}, ConflictError,
         "exists already"),
        ({"username": "x", "department": "nowhere", "role": "caseworker"}, ValidationError,
         "no department 'nowhere'"),
        ({"username": "x", "department": "health", "role": "superuser"}, ValidationError,
         "not one of: caseworker, publisher, auditor, admin"),
        ({"username": "x", "department": "health", "role": "auditor", "oidc_subject": "sub-1"},
         ConflictError, "belongs to user 'li.na'"),
        ({"username": " bad name", "department": "health", "role": "auditor"}, ValidationError,
         "user name"),
    ],
)  # fmt: skip
def test_bad_users_are_refused_with_clear_errors(
    sessions: sessionmaker[Session], kwargs: dict[str, str], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words), transaction(sessions) as session:
        identities.create_user(session, **kwargs)


def test_a_duplicate_or_malformed_department_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ConflictError, match="exists already"), transaction(sessions) as session:
        identities.create_department(session, "health", "Again")
    with pytest.raises(ValidationError, match="lower case"), transaction(sessions) as session:
        identities.create_department(session, "Health-2", "x")


def test_keys_are_listed_without_secrets_and_revoked_once(sessions: sessionmaker[Session]) -> None:
    expires = utcnow() + timedelta(days=7)
    with transaction(sessions) as session:
        first = identities.create_key(session, "li.na", label="desk", expires_at=expires)
        second = identities.create_key(session, "li.na")
    with transaction(sessions) as session:
        revoked = identities.revoke_key(session, second.info.key_id)
    with transaction(sessions) as session:
        again = identities.revoke_key(session, second.info.key_id)

    with sessions() as session:
        keys = identities.list_keys(session, "li.na")
        stored = session.execute(text("SELECT * FROM api_keys")).mappings().all()

    assert [(k.key_id, k.label) for k in keys] == [
        (first.info.key_id, "desk"),
        (second.info.key_id, None),
    ]
    assert keys[0].expires_at == expires
    assert keys[0].revoked_at is None
    assert revoked.revoked_at is not None
    assert again.revoked_at == revoked.revoked_at
    secret = first.key.split("_", 2)[2]
    for row in stored:
        assert all(secret not in str(v) for v in row.values())
        assert row["user_id"] is not None


def test_authentication_follows_the_stored_state(sessions: sessionmaker[Session]) -> None:
    cache = VerifiedKeyCache()
    with transaction(sessions) as session:
        key = identities.create_key(session, "li.na").key
        other = identities.create_key(session, "li.na").key

    with sessions() as session:
        identity = authenticate(session, key, cache=cache)
    assert (identity.actor, identity.department, identity.role) == (
        "li.na",
        "civil_affairs",
        "caseworker",
    )

    with transaction(sessions) as session:
        identities.revoke_key(session, apikeys.key_id_of(key))
    with sessions() as session, pytest.raises(AuthenticationError, match="revoked"):
        authenticate(session, key, cache=cache)

    with sessions() as session:
        assert authenticate(session, other, cache=cache).actor == "li.na"
    with transaction(sessions) as session:
        identities.disable_user(session, "li.na")
    with sessions() as session, pytest.raises(AuthenticationError, match="disabled"):
        authenticate(session, other, cache=cache)


def test_a_disabled_user_stays_disabled_and_gets_no_key(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        first = identities.disable_user(session, "li.na")
    with transaction(sessions) as session:
        second = identities.disable_user(session, "li.na")

    assert not first.active
    assert second.disabled_at == first.disabled_at
    with pytest.raises(ConflictError, match="disabled"), transaction(sessions) as session:
        identities.create_key(session, "li.na")


def test_unknown_users_and_keys_are_not_found(sessions: sessionmaker[Session]) -> None:
    for action in (
        lambda s: identities.disable_user(s, "ghost"),
        lambda s: identities.list_keys(s, "ghost"),
        lambda s: identities.create_key(s, "ghost"),
        lambda s: identities.revoke_key(s, "nokey"),
    ):
        with pytest.raises(NotFoundError), transaction(sessions) as session:
            action(session)


def test_legacy_keys_without_a_user_still_work(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        key = apikeys.create_key(session, actor="demo", department="civil_affairs", role="admin")

    with sessions() as session:
        identity = authenticate(session, key, cache=VerifiedKeyCache())

    assert (identity.actor, identity.user_id) == ("demo", None)
    assert identity.limit_key == f"key:{apikeys.key_id_of(key)}"
