"""Bearer JWTs checked against a real JWKS served over HTTP on a free loopback port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction
from exchange.core.errors import AuthenticationError
from exchange.identity import identities
from exchange.identity.oidc import OidcVerifier
from tests.support.database import migrated
from tests.support.oidc import AUDIENCE, ISSUER, KID, Provider, jwks_server, new_rsa_key


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with jwks_server() as served:
        yield served


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/t.db") as factory:
        with transaction(factory) as session:
            identities.create_department(session, "civil_affairs", "Civil Affairs")
            identities.create_user(
                session,
                username="li.na",
                department="civil_affairs",
                role="caseworker",
                oidc_subject="sub-li-na",
            )
        yield factory


@pytest.fixture
def verifier(provider: Provider) -> OidcVerifier:
    return OidcVerifier(provider.jwks_url, issuer=ISSUER, audience=AUDIENCE, leeway_s=0)


def _refused(verifier: OidcVerifier, sessions: sessionmaker[Session], token: str) -> str:
    with sessions() as session, pytest.raises(AuthenticationError) as caught:
        verifier.authenticate(session, token)
    return caught.value.message


def test_a_valid_token_maps_to_the_users_department_and_role(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    with sessions() as session:
        identity = verifier.authenticate(session, provider.token())

    assert (identity.actor, identity.department, identity.role) == (
        "li.na",
        "civil_affairs",
        "caseworker",
    )
    assert identity.method == "oidc"
    assert identity.user_id is not None
    assert "/jwks.json" in provider.fetches


def test_an_expired_token_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    old = int(time.time()) - 3600
    token = provider.token(iat=old, exp=old + 300)

    assert _refused(verifier, sessions, token) == "bearer token has expired"


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("aud", "some-other-app", "bearer token is for another audience"),
        ("iss", "https://evil.example", "bearer token is from another issuer"),
        ("sub", "sub-nobody", "the identity provider's subject is not a registered user"),
    ],
    ids=["for-another-audience", "from-another-issuer", "of-an-unknown-subject"],
)
def test_a_token_whose_claim_does_not_fit_is_refused(
    verifier: OidcVerifier,
    sessions: sessionmaker[Session],
    provider: Provider,
    claim: str,
    value: str,
    reason: str,
) -> None:
    token = provider.token(**{claim: value})

    assert _refused(verifier, sessions, token) == reason


def test_a_token_signed_by_another_key_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    token = provider.token(key=new_rsa_key())  # same kid, wrong key

    assert _refused(verifier, sessions, token) == "bearer token signature is invalid"


def test_a_token_with_an_unpublished_key_id_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "sub-li-na", "exp": now + 300}
    token = jwt.encode(claims, provider.key, algorithm="RS256", headers={"kid": "other"})

    assert "does not publish" in _refused(verifier, sessions, token)


def test_an_hmac_token_keyed_with_public_data_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "sub-li-na", "exp": now + 300}
    token = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": KID})

    assert _refused(verifier, sessions, token).startswith("bearer token")


def test_a_token_without_an_expiry_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    token = provider.token(exp=None)

    assert "exp" in _refused(verifier, sessions, token)


def test_garbage_is_refused_as_malformed(
    verifier: OidcVerifier, sessions: sessionmaker[Session]
) -> None:
    assert _refused(verifier, sessions, "not-a-jwt") == "malformed bearer token: not a JWT"


def test_a_disabled_users_token_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    with transaction(sessions) as session:
        identities.disable_user(session, "li.na")

    assert _refused(verifier, sessions, provider.token()) == "user 'li.na' is disabled"


def test_an_unreachable_key_set_is_refused_with_its_own_reason(
    sessions: sessionmaker[Session], provider: Provider
) -> None:
    from exchange.local.broker import free_port

    dead = OidcVerifier(
        f"http://127.0.0.1:{free_port()}/jwks.json", issuer=ISSUER, audience=AUDIENCE
    )

    assert "keys are unavailable" in _refused(dead, sessions, provider.token())
