"""Bearer JWTs checked against a real JWKS served over HTTP on a free loopback port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.orm import Session, sessionmaker

from exchange import identities
from exchange.db import make_engine, migrate, session_factory, transaction
from exchange.errors import AuthenticationError
from exchange.oidc import OidcVerifier

ISSUER = "https://idp.example.gov.cn/realms/exchange"
AUDIENCE = "data-exchange-gateway"
KID = "key-1"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Provider:
    """A local OIDC provider: its signing key and the URL of its JWKS."""

    key: rsa.RSAPrivateKey
    jwks_url: str
    fetches: list[str]

    def token(self, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "sub-li-na", "iat": now, "exp": now + 300}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    key = _rsa()
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": KID, "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()
    fetches: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(self.path)
            if self.path != "/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Provider(key, f"http://127.0.0.1:{server.server_port}/jwks.json", fetches)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    migrate(engine)
    factory = session_factory(engine)
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
    engine.dispose()


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


def test_a_token_for_another_audience_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    token = provider.token(aud="some-other-app")

    assert _refused(verifier, sessions, token) == "bearer token is for another audience"


def test_a_token_from_another_issuer_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    token = provider.token(iss="https://evil.example")

    assert _refused(verifier, sessions, token) == "bearer token is from another issuer"


def test_a_token_of_an_unknown_subject_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    token = provider.token(sub="sub-nobody")

    assert _refused(verifier, sessions, token) == "bearer token's subject is not a registered user"


def test_a_token_signed_by_another_key_is_refused(
    verifier: OidcVerifier, sessions: sessionmaker[Session], provider: Provider
) -> None:
    token = provider.token(key=_rsa())  # same kid, wrong key

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
    from exchange.broker import free_port

    dead = OidcVerifier(
        f"http://127.0.0.1:{free_port()}/jwks.json", issuer=ISSUER, audience=AUDIENCE
    )

    assert "keys are unavailable" in _refused(dead, sessions, provider.token())
