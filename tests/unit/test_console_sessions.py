"""Console sessions: made at sign-in, refused when idle, too old, signed out, or when their
credential stops being valid; CSRF on every form; the cookie's attributes; the sign-in
form's own token; where sign-in may send the browser; every decision audited."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import transaction
from exchange.core.errors import SessionExpiredError
from exchange.core.models import ApiKey, ConsoleSession, User
from exchange.identity import consolesessions, identities
from exchange.identity.apikeys import Identity, create_key
from gateway import create_app
from gateway.console.web import safe_next
from tests.support.database import migrated

LIFETIME = consolesessions.Lifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/t.db") as factory:
        with transaction(factory) as session:
            identities.create_department(session, "civil_affairs", "Civil Affairs")
            identities.create_user(
                session, username="li.na", department="civil_affairs", role="caseworker"
            )
        yield factory


def _user_id(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        found = session.scalar(select(User.id).where(User.username == "li.na"))
    assert found is not None
    return found


def _start(sessions: sessionmaker[Session], key_id: str = "k1") -> str:
    identity = Identity(
        actor="li.na",
        department="civil_affairs",
        role="caseworker",
        key_id=key_id,
        user_id=_user_id(sessions),
        method="oidc",
    )
    with transaction(sessions) as session:
        return consolesessions.start(session, identity, now=T0)


def test_a_session_is_found_by_its_token_and_only_its_hash_is_stored(
    sessions: sessionmaker[Session],
) -> None:
    token = _start(sessions)
    found = consolesessions.resolve(sessions, token, LIFETIME, now=T0 + timedelta(minutes=5))
    assert (found.identity.actor, found.identity.role) == ("li.na", "caseworker")
    with sessions() as session:
        stored = session.scalars(select(ConsoleSession.id)).all()
    assert stored == [consolesessions.digest(token)]
    assert token not in stored


def test_idle_for_the_limit_ends_the_session_for_good(sessions: sessionmaker[Session]) -> None:
    token = _start(sessions)
    with pytest.raises(SessionExpiredError, match="30 minutes without use"):
        consolesessions.resolve(sessions, token, LIFETIME, now=T0 + timedelta(minutes=30))
    # Ended: even a request "in time" afterwards is refused.
    with pytest.raises(SessionExpiredError, match="signed out"):
        consolesessions.resolve(sessions, token, LIFETIME, now=T0 + timedelta(minutes=1))


def test_use_keeps_a_session_alive_until_its_absolute_end(
    sessions: sessionmaker[Session],
) -> None:
    token = _start(sessions)
    for step in range(1, 36):  # every 20 minutes, up to 11 h 40 min after sign-in
        consolesessions.resolve(sessions, token, LIFETIME, now=T0 + step * timedelta(minutes=20))
    with pytest.raises(SessionExpiredError, match="after 12 hours"):
        consolesessions.resolve(sessions, token, LIFETIME, now=T0 + timedelta(hours=12))


def test_a_disabled_user_or_a_revoked_key_ends_the_session(
    sessions: sessionmaker[Session],
) -> None:
    token = _start(sessions)
    with transaction(sessions) as session:
        session.execute(update(User).values(active=False))
    with pytest.raises(SessionExpiredError, match="user has been disabled"):
        consolesessions.resolve(sessions, token, LIFETIME, now=T0)

    with transaction(sessions) as session:
        session.execute(update(User).values(active=True))
        key = create_key(session, actor="li.na", department="civil_affairs", role="caseworker")
    key_id = key.split("_")[1]
    identity = Identity("li.na", "civil_affairs", "caseworker", key_id, None, "api_key")
    with transaction(sessions) as session:
        keyed = consolesessions.start(session, identity, now=T0)
    consolesessions.resolve(sessions, keyed, LIFETIME, now=T0)
    with transaction(sessions) as session:
        session.execute(update(ApiKey).values(revoked_at=T0))
    with pytest.raises(SessionExpiredError, match="has been revoked"):
        consolesessions.resolve(sessions, keyed, LIFETIME, now=T0 + timedelta(minutes=1))


def test_an_unknown_token_and_a_signed_out_one_are_refused(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(SessionExpiredError):
        consolesessions.resolve(sessions, "made-up", LIFETIME, now=T0)
    token = _start(sessions)
    with transaction(sessions) as session:
        consolesessions.end(session, token, now=T0)
    with pytest.raises(SessionExpiredError, match="signed out"):
        consolesessions.resolve(sessions, token, LIFETIME, now=T0)


def test_a_single_sign_on_state_works_once_and_for_ten_minutes(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        login = consolesessions.begin_login(session, "/ui/", now=T0)
        late = consolesessions.begin_login(session, "/ui/", now=T0)
    with transaction(sessions) as session:
        row = consolesessions.finish_login(session, login["state"], now=T0 + timedelta(minutes=1))
        assert row.nonce == login["nonce"]
    with transaction(sessions) as session, pytest.raises(SessionExpiredError):
        consolesessions.finish_login(session, login["state"], now=T0 + timedelta(minutes=2))
    with transaction(sessions) as session, pytest.raises(SessionExpiredError):
        consolesessions.finish_login(session, late["state"], now=T0 + timedelta(minutes=11))


@given(st.text(max_size=60))
def test_sign_in_only_ever_returns_to_a_console_path(target: str) -> None:
    chosen = safe_next(target)
    assert chosen.startswith("/ui/")
    assert not chosen.startswith("//")
    assert "\\" not in chosen
    assert "\n" not in chosen


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/ui/", "//evil.example/ui/", "/ui/\\\\evil.example", "javascript:x"],
)
def test_sign_in_never_returns_to_another_site(target: str) -> None:
    assert safe_next(target) == "/ui/"


# ---- the gateway's console routes, over HTTP (TestClient) --------------------------------


@dataclass
class Console:
    client: TestClient
    key: str
    db: Path


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    settings = Settings(data_dir=tmp_path)
    with migrated(settings.db_url) as factory, transaction(factory) as session:
        key = create_key(session, actor="li.na", department="civil_affairs", role="caseworker")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Console(client, key, tmp_path / "registry.db")


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _sign_in(console: Console, key: str | None = None) -> str:
    form = console.client.get("/ui/sign-in")
    answer = console.client.post(
        "/ui/sign-in",
        data={"api_key": key or console.key, "csrf_token": _token(form.text), "next": "/ui/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    home = console.client.get("/ui/")
    assert home.status_code == 200
    return _token(home.text)


def _audit(console: Console) -> list[tuple[str, str, int]]:
    with sqlite3.connect(console.db) as conn:
        return conn.execute(
            "SELECT action, decision, status FROM audit_log ORDER BY seq"
        ).fetchall()


def test_the_session_cookie_is_httponly_strict_and_limited_to_the_console(
    console: Console,
) -> None:
    form = console.client.get("/ui/sign-in")
    answer = console.client.post(
        "/ui/sign-in",
        data={"api_key": console.key, "csrf_token": _token(form.text), "next": "/ui/"},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/ui" in cookie
    assert console.key not in answer.headers["location"]


def test_sign_in_without_the_forms_own_token_is_refused(console: Console) -> None:
    console.client.get("/ui/sign-in")
    answer = console.client.post(
        "/ui/sign-in", data={"api_key": console.key, "csrf_token": "forged"}
    )
    assert answer.status_code == 403
    assert "dx_session" not in answer.headers.get("set-cookie", "")
    assert _audit(console)[-1] == ("console.sign_in", "deny", 403)


def test_a_form_from_another_origin_is_refused_even_with_the_right_token(
    console: Console,
) -> None:
    token = _sign_in(console)
    answer = console.client.post(
        "/ui/sign-out",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "another site" in answer.text
    assert console.client.get("/ui/").status_code == 200  # still signed in


def test_the_api_never_takes_the_console_cookie(console: Console) -> None:
    _sign_in(console)
    # The browser holds the cookie, but only /ui/ paths accept it: an API route answers 401.
    answer = console.client.get("/v1/admin/departments")
    assert answer.status_code == 401


def test_pages_answer_html_errors_and_are_never_cached(console: Console) -> None:
    missing = console.client.get("/ui/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    home = console.client.get("/ui/")
    assert home.status_code == 401
    assert home.headers["cache-control"] == "no-store"
    policy = home.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert home.headers["referrer-policy"] == "same-origin"


def test_every_sign_in_decision_is_audited_with_the_status_answered(console: Console) -> None:
    form = console.client.get("/ui/sign-in")
    console.client.post(
        "/ui/sign-in",
        data={"api_key": "dx_nothere_wrongsecret", "csrf_token": _token(form.text)},
    )
    _sign_in(console)
    entries = _audit(console)
    assert ("console.sign_in", "deny", 401) in entries
    assert ("console.sign_in", "allow", 303) in entries
    assert ("console.home", "allow", 200) in entries


def test_over_tls_the_cookies_are_secure(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with migrated(settings.db_url) as factory, transaction(factory) as session:
        key = create_key(session, actor="li.na", department="civil_affairs", role="caseworker")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        form = client.get("/ui/sign-in")
        assert "secure" in form.headers["set-cookie"].lower()
        answer = client.post(
            "/ui/sign-in",
            data={"api_key": key, "csrf_token": _token(form.text)},
            headers={"Origin": "https://testserver"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert "secure" in answer.headers["set-cookie"].lower()


def test_signing_in_again_ends_the_session_the_browser_had(console: Console) -> None:
    _sign_in(console)
    first = console.client.cookies.get("dx_session")
    _sign_in(console)
    second = console.client.cookies.get("dx_session")
    assert first != second
    console.client.cookies.clear()
    old = console.client.get("/ui/", headers={"Cookie": f"dx_session={first}"})
    assert old.status_code == 401
    new = console.client.get("/ui/", headers={"Cookie": f"dx_session={second}"})
    assert new.status_code == 200
