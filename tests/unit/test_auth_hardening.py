"""Issue 17, findings 4, 5 and part of 10: authentication that tells nothing and costs an
attacker more than the exchange, production refusing development leftovers, security
headers, and API docs from the gateway's own assets.

Timing is checked by what runs (scrypt is counted), never by a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from exchange.audit.anomalies import UNIDENTIFIED, scan
from exchange.cli.main import app as cli_app
from exchange.core.config import DEV_DEMO_KEY, AuditSettings, Settings
from exchange.core.db import MIGRATIONS_DIR, make_engine, migrate, session_factory, transaction
from exchange.core.errors import AuthenticationError, DevelopmentCredentialError
from exchange.core.models import ApiKey, AuditEntry
from exchange.identity import apikeys
from exchange.identity.apikeys import (
    ORIGIN_DEMO,
    ORIGIN_PRODUCTION,
    VerifiedKeyCache,
    authenticate,
    create_key,
)
from gateway import create_app
from tests.support.database import migrated
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

# --- scrypt, counted ------------------------------------------------------------------------


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scrypt derivation apikeys makes from now on."""
    calls: list[str] = []
    real: Callable[[str, bytes], bytes] = apikeys._hash

    def counted(secret: str, salt: bytes) -> bytes:
        calls.append("scrypt")
        return real(secret, salt)

    monkeypatch.setattr(apikeys, "_hash", counted)
    return calls


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/t.db") as factory:
        yield factory


def _refusal(sessions: sessionmaker[Session], key: str, **kwargs: Any) -> AuthenticationError:
    with sessions() as session, pytest.raises(AuthenticationError) as caught:
        authenticate(session, key, cache=VerifiedKeyCache(), **kwargs)
    return caught.value


def test_an_unknown_key_id_takes_the_path_of_a_wrong_secret(
    sessions: sessionmaker[Session], scrypt_calls: list[str]
) -> None:
    """Finding 4: an unknown id answered without scrypt (~3 ms), a known one with a wrong
    secret after it (~41 ms). Both now run scrypt exactly once and answer alike."""
    with transaction(sessions) as session:
        key = create_key(session, actor="alice", department="civil_affairs", role="caseworker")
    known_id = apikeys.key_id_of(key)
    scrypt_calls.clear()

    wrong_secret = _refusal(sessions, f"dx_{known_id}_not-the-secret")
    assert len(scrypt_calls) == 1
    unknown_id = _refusal(sessions, "dx_0123456789ab_not-the-secret")
    assert len(scrypt_calls) == 2

    assert type(unknown_id) is type(wrong_secret)
    assert str(unknown_id) == str(wrong_secret) == "invalid API key"


# --- production refuses development leftovers ------------------------------------------------


def test_production_refuses_keys_of_the_demo_and_of_development_mode(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        demo = create_key(
            session,
            actor="demo.caseworker",
            department="civil_affairs",
            role="caseworker",
            plaintext=DEV_DEMO_KEY,
            origin=ORIGIN_DEMO,
        )
        dev = create_key(session, actor="dev", department="civil_affairs", role="caseworker")
        prod = create_key(
            session,
            actor="prod",
            department="civil_affairs",
            role="caseworker",
            origin=ORIGIN_PRODUCTION,
        )
    with sessions() as session:  # development accepts all three
        for key in (demo, dev, prod):
            authenticate(session, key, cache=VerifiedKeyCache())
        assert authenticate(session, prod, production=True).actor == "prod"

    refused_demo = _refusal(sessions, demo, production=True)
    assert isinstance(refused_demo, DevelopmentCredentialError)
    assert "created by the demo" in str(refused_demo)
    refused_dev = _refusal(sessions, dev, production=True)
    assert isinstance(refused_dev, DevelopmentCredentialError)
    assert "development mode" in str(refused_dev)
    with sessions() as session:
        assert apikeys.development_keys(session) == sorted(
            [apikeys.key_id_of(demo), apikeys.key_id_of(dev)]
        )


def test_a_database_that_ran_the_demo_before_origins_were_recorded(tmp_path: Path) -> None:
    """Finding 5: the demo's key, stored before keys had an origin, is marked by the
    migration and refused in production."""
    url = f"sqlite:///{tmp_path}/old.db"
    engine = make_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0009")
        # The demo's key as the code before this revision stored it.
        secret = DEV_DEMO_KEY.split("_", 2)[2]
        salt = b"0123456789abcdef"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_keys (key_id, salt, key_hash, actor, department, role, "
                    "created_at) VALUES ('demo', :salt, :hash, 'demo.caseworker', "
                    "'civil_affairs', 'caseworker', '2026-01-01 00:00:00')"
                ),
                {"salt": salt, "hash": apikeys._hash(secret, salt)},
            )
        migrate(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            origin = session.scalar(select(ApiKey.origin).where(ApiKey.key_id == "demo"))
            assert origin == ORIGIN_DEMO
            assert authenticate(session, DEV_DEMO_KEY).actor == "demo.caseworker"
        assert isinstance(
            _refusal(sessions, DEV_DEMO_KEY, production=True), DevelopmentCredentialError
        )
    finally:
        engine.dispose()


# --- the gateway -----------------------------------------------------------------------------


@contextmanager
def gateway(tmp_path: Path, **settings: Any) -> Iterator[tuple[TestClient, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    try:
        full = Settings(
            database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64, **settings
        )
        with TestClient(create_app(full)) as client:
            yield client, session_factory(engine)
    finally:
        engine.dispose()


def _entries(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def _throttled_metric(client: TestClient) -> float:
    body = client.get("/metrics").text
    match = re.search(r"^exchange_gateway_auth_throttled_total (\S+)$", body, re.M)
    assert match, body
    return float(match[1])


DATASETS = "/v1/catalogue/datasets"


def test_failed_authentications_are_limited_per_address_before_any_hashing(
    tmp_path: Path, scrypt_calls: list[str]
) -> None:
    """Finding 4: 180 wrong secrets cost the gateway 180 scrypts. Past the address's
    budget, a request is refused before its key is read or hashed, and is not audited."""
    limits = {"auth_failures_per_minute": 1, "auth_failure_burst": 3}
    with gateway(tmp_path, gateway=limits) as (client, sessions):
        with transaction(sessions) as session:
            good = create_key(session, actor="alice", department="civil_affairs", role="admin")
        assert client.get(DATASETS, headers={"X-API-Key": good}).status_code == 200
        scrypt_calls.clear()
        wrong = {"X-API-Key": "dx_0123456789ab_wrong-secret"}
        for _ in range(3):
            assert client.get(DATASETS, headers=wrong).status_code == 401
        assert len(scrypt_calls) == 3
        audited = _entries(sessions)

        for _ in range(5):
            refused = client.get(DATASETS, headers=wrong)
            assert refused.status_code == 429
            assert refused.json()["code"] == "auth_throttled"
            assert int(refused.headers["Retry-After"]) >= 1
        assert len(scrypt_calls) == 3  # no scrypt for a throttled request
        assert _entries(sessions) == audited  # and no audit entry
        assert _throttled_metric(client) == 5.0

        # A key this process verified before still passes, at no scrypt.
        assert client.get(DATASETS, headers={"X-API-Key": good}).status_code == 200
        assert len(scrypt_calls) == 3


def test_a_success_gives_its_token_back(tmp_path: Path) -> None:
    limits = {"auth_failures_per_minute": 1, "auth_failure_burst": 2}
    with gateway(tmp_path, gateway=limits) as (client, sessions):
        with transaction(sessions) as session:
            good = create_key(session, actor="alice", department="civil_affairs", role="admin")
        for _ in range(10):
            assert client.get(DATASETS, headers={"X-API-Key": good}).status_code == 200


def test_the_client_address_comes_from_a_trusted_proxys_header_only(tmp_path: Path) -> None:
    limits = {
        "auth_failures_per_minute": 1,
        "auth_failure_burst": 1,
        "client_address_header": "X-Forwarded-For",
        "trusted_proxies": ["testclient", "127.0.0.0/8"],
    }
    # "testclient" (Starlette's TestClient peer) is not an address: the settings refuse it.
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(gateway=limits)
    limits["trusted_proxies"] = ["127.0.0.0/8"]
    with gateway(tmp_path, gateway=limits) as (client, _):
        wrong = {"X-API-Key": "dx_0123456789ab_wrong-secret", "X-Forwarded-For": "198.51.100.7"}
        assert client.get(DATASETS, headers=wrong).status_code == 401
        # The peer (testclient) is no trusted proxy: the header is ignored, and both
        # requests count against the peer's own address.
        other = {**wrong, "X-Forwarded-For": "203.0.113.9"}
        assert client.get(DATASETS, headers=other).status_code == 429


def test_the_header_needs_trusted_proxies() -> None:
    with pytest.raises(ValueError, match="client_address_header needs trusted_proxies"):
        Settings(gateway={"client_address_header": "X-Forwarded-For"})


def test_client_address_takes_the_right_most_untrusted_hop() -> None:
    from starlette.requests import Request

    from exchange.core.config import GatewaySettings
    from gateway.access import client_address

    settings = GatewaySettings(
        client_address_header="X-Forwarded-For", trusted_proxies=["10.0.0.0/8"]
    )

    def request(peer: str, forwarded: str) -> Request:
        return Request(
            {
                "type": "http",
                "client": (peer, 1234),
                "headers": [(b"x-forwarded-for", forwarded.encode())],
            }
        )

    assert client_address(settings, request("10.0.0.2", "1.2.3.4, 198.51.100.7")) == (
        "198.51.100.7"
    )
    assert client_address(settings, request("10.0.0.2", "198.51.100.7, 10.0.0.3")) == (
        "198.51.100.7"
    )
    assert client_address(settings, request("192.0.2.1", "198.51.100.7")) == "192.0.2.1"


def test_the_demo_key_is_refused_by_a_production_gateway(tmp_path: Path) -> None:
    """Finding 5, end to end: a database that ran the demo, served with env=production."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with migrated(url) as sessions, transaction(sessions) as session:
        create_key(
            session,
            actor="demo.caseworker",
            department="civil_affairs",
            role="caseworker",
            plaintext=DEV_DEMO_KEY,
            origin=ORIGIN_DEMO,
        )
    with gateway(tmp_path, env="production") as (client, sessions):
        refused = client.get(DATASETS, headers={"X-API-Key": DEV_DEMO_KEY})
        assert refused.status_code == 401
        assert refused.json()["code"] == "development_credential"
        with sessions() as session:
            entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
            assert entry is not None
            assert (entry.decision, entry.status) == ("deny", 401)


# --- docs and headers -------------------------------------------------------------------------


def test_api_docs_load_nothing_from_outside(tmp_path: Path) -> None:
    """Finding 10: /docs loaded Swagger UI from a CDN (blank on an isolated network)."""
    with gateway(tmp_path) as (client, _):
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200
            sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html.text)
            assert sources, html.text
            assert all(s.startswith("/static/apidocs/") for s in sources), sources
            assert "http://" not in html.text
            assert "https://" not in html.text
            for source in sources:
                asset = client.get(source)
                assert asset.status_code == 200, source
                assert asset.content
                # ReDoc's bundle loads its maker's logo from a CDN unless served patched.
                assert b"cdn.redoc.ly" not in asset.content, source
        assert client.get("/openapi.json").status_code == 200


def test_production_closes_the_api_docs_unless_a_setting_opens_them(tmp_path: Path) -> None:
    with gateway(tmp_path, env="production") as (client, _):
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path
    with gateway(tmp_path, env="production", gateway={"api_docs": True}) as (client, _):
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 200, path


def test_security_headers_on_every_response(tmp_path: Path) -> None:
    """Finding 10: no Cache-Control: no-store or X-Content-Type-Options on data answers."""
    with gateway(tmp_path) as (client, sessions):
        with transaction(sessions) as session:
            key = create_key(session, actor="alice", department="civil_affairs", role="admin")
        answers = [
            client.get(DATASETS, headers={"X-API-Key": key}),  # data
            client.get(DATASETS),  # 401
            client.get("/v1/no-such-route"),  # 404
            client.get("/healthz"),
            client.get("/docs"),
        ]
        for answer in answers:
            h = answer.headers
            assert h["X-Content-Type-Options"] == "nosniff", answer.url
            assert h["Cache-Control"] == "no-store", answer.url
            assert h["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
            assert h["Referrer-Policy"] == "no-referrer"
        assert answers[0].status_code == 200
        assert "default-src 'none'" in answers[0].headers["Content-Security-Policy"]


# --- the anomaly flag -------------------------------------------------------------------------


def test_a_burst_of_failed_authentications_is_flagged(sessions: sessionmaker[Session]) -> None:
    """Finding 4: anonymous failures raised no anomaly flag."""
    from exchange import audit

    start = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    with transaction(sessions) as session:
        for i in range(12):
            audit.append(
                session,
                audit.Decision(
                    request_id=f"r{i}",
                    action="lookup",
                    decision="deny",
                    reason="invalid API key",
                    status=401,
                    actor=None if i % 2 else "mallory",
                ),
                at=start + timedelta(seconds=10 * i),
            )
    settings = AuditSettings(auth_failure_burst=5, auth_failure_window_s=300)
    with sessions() as session:
        flags = scan(session, settings, until=start + timedelta(hours=1))
    failures = {a.actor: a for a in flags if a.kind == "auth_failures"}
    assert set(failures) == {UNIDENTIFIED, "mallory"}
    assert failures[UNIDENTIFIED].count == 6
    assert "failed authentications" in failures[UNIDENTIFIED].detail


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["-1", "0"])
def test_apikeys_create_refuses_a_key_expired_at_birth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    """Finding 10: --expires-days -1 made an expired key silently."""
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(
        cli_app,
        [
            "apikeys",
            "create",
            "--actor",
            "a",
            "--department",
            "d",
            "--role",
            "caseworker",
            "--expires-days",
            days,
        ],
    )
    assert result.exit_code == 2, result.output
    assert "expired at once" in result.output
    assert "dx_" not in result.output


def test_apikeys_create_records_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EXCHANGE_ENV", "production")
    monkeypatch.setenv("EXCHANGE_LINKAGE_KEY", LINKAGE_KEY)
    monkeypatch.setenv("EXCHANGE_MASTER_KEY", MASTER_KEY_B64)
    args = ["apikeys", "create", "--actor", "a", "--department", "d", "--role", "caseworker"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli_app, [*args, "--expires-days", "0", "--never-expires"])
    assert result.exit_code == 0, result.output
    with migrated(f"sqlite:///{tmp_path}/cli.db") as sessions, sessions() as session:
        keys = session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
        assert [k.origin for k in keys] == [ORIGIN_PRODUCTION, ORIGIN_PRODUCTION]
        assert keys[0].expires_at is not None
        assert keys[1].expires_at is None
