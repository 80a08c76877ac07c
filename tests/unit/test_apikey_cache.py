"""The verified-key cache: only a key's first use pays scrypt; revocation, expiry and a
disabled user still take effect on the very next request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction, utcnow
from exchange.core.errors import AuthenticationError
from exchange.core.models import ApiKey
from exchange.identity import apikeys, identities
from exchange.identity.apikeys import VerifiedKeyCache, authenticate
from tests.support.database import migrated


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/t.db") as factory:
        yield factory


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scrypt derivation apikeys makes from now on (the secret is not kept)."""
    calls: list[str] = []
    real: Callable[[str, bytes], bytes] = apikeys._hash

    def counted(secret: str, salt: bytes) -> bytes:
        calls.append("scrypt")
        return real(secret, salt)

    monkeypatch.setattr(apikeys, "_hash", counted)
    return calls


@pytest.fixture
def user_key(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as session:
        identities.create_department(session, "civil_affairs", "Civil Affairs")
        identities.create_user(
            session, username="li.na", department="civil_affairs", role="caseworker"
        )
        return identities.create_key(session, "li.na").key


def _auth(sessions: sessionmaker[Session], key: str, cache: VerifiedKeyCache) -> str:
    with sessions() as session:
        return authenticate(session, key, cache=cache).actor


def _refused(sessions: sessionmaker[Session], key: str, cache: VerifiedKeyCache) -> str:
    with pytest.raises(AuthenticationError) as caught:
        _auth(sessions, key, cache)
    return caught.value.message


def test_only_the_first_use_of_a_key_runs_scrypt(
    sessions: sessionmaker[Session], user_key: str, scrypt_calls: list[str]
) -> None:
    cache = VerifiedKeyCache()

    assert _auth(sessions, user_key, cache) == "li.na"
    assert len(scrypt_calls) == 1
    for _ in range(5):
        assert _auth(sessions, user_key, cache) == "li.na"

    assert len(scrypt_calls) == 1
    assert len(cache) == 1


def test_the_cache_does_not_hold_the_secret(user_key: str, sessions: sessionmaker[Session]) -> None:
    cache = VerifiedKeyCache()
    _auth(sessions, user_key, cache)
    secret = user_key.split("_", 2)[2].encode()

    (stored_hash, mac) = next(iter(cache._entries.values()))

    assert secret not in mac
    assert secret not in stored_hash
    assert len(mac) == 32


def test_a_wrong_secret_for_a_cached_key_is_refused_and_checked_by_scrypt(
    sessions: sessionmaker[Session], user_key: str, scrypt_calls: list[str]
) -> None:
    cache = VerifiedKeyCache()
    _auth(sessions, user_key, cache)

    assert _refused(sessions, user_key + "x", cache) == "invalid API key"
    assert len(scrypt_calls) == 2
    # A failure is not remembered: the right key still passes from the cache.
    assert _auth(sessions, user_key, cache) == "li.na"
    assert len(scrypt_calls) == 2


def test_a_key_revoked_after_it_was_cached_is_refused_at_once(
    sessions: sessionmaker[Session], user_key: str
) -> None:
    cache = VerifiedKeyCache()
    assert _auth(sessions, user_key, cache) == "li.na"

    with transaction(sessions) as session:
        identities.revoke_key(session, apikeys.key_id_of(user_key))

    assert _refused(sessions, user_key, cache) == "API key has been revoked"


def test_a_key_that_expires_after_it_was_cached_is_refused(
    sessions: sessionmaker[Session], user_key: str
) -> None:
    cache = VerifiedKeyCache()
    assert _auth(sessions, user_key, cache) == "li.na"

    with transaction(sessions) as session:
        session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))

    assert _refused(sessions, user_key, cache) == "API key has expired"


def test_the_key_of_a_user_disabled_after_it_was_cached_is_refused(
    sessions: sessionmaker[Session], user_key: str
) -> None:
    cache = VerifiedKeyCache()
    assert _auth(sessions, user_key, cache) == "li.na"

    with transaction(sessions) as session:
        identities.disable_user(session, "li.na")

    message = _refused(sessions, user_key, cache)
    assert "disabled" in message
    assert "li.na" in message


def test_a_key_id_re_created_with_another_secret_is_not_served_from_the_cache(
    sessions: sessionmaker[Session], scrypt_calls: list[str]
) -> None:
    cache = VerifiedKeyCache()
    with transaction(sessions) as session:
        apikeys.create_key(session, actor="a", department="d", role="r", plaintext="dx_demo_one")
    assert _auth(sessions, "dx_demo_one", cache) == "a"

    with transaction(sessions) as session:
        apikeys.create_key(session, actor="b", department="d", role="r", plaintext="dx_demo_two")

    assert _refused(sessions, "dx_demo_one", cache) == "invalid API key"
    assert _auth(sessions, "dx_demo_two", cache) == "b"


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = VerifiedKeyCache(size=2)
    for key_id in ("a", "b"):
        cache.remember(key_id, "s", b"h")
    assert cache.matches("a", "s", b"h")  # a is now more recent than b

    cache.remember("c", "s", b"h")

    assert len(cache) == 2
    assert cache.matches("a", "s", b"h")
    assert not cache.matches("b", "s", b"h")
    assert cache.matches("c", "s", b"h")
    assert not cache.matches("c", "other", b"h")
    assert not cache.matches("c", "s", b"another hash")


def test_a_user_key_carries_the_users_identity(
    sessions: sessionmaker[Session], user_key: str
) -> None:
    with sessions() as session:
        identity = authenticate(session, user_key, cache=VerifiedKeyCache())

    assert (identity.actor, identity.department, identity.role) == (
        "li.na",
        "civil_affairs",
        "caseworker",
    )
    assert identity.user_id is not None
    assert identity.limit_key == f"user:{identity.user_id}"
    assert identity.method == "api_key"
