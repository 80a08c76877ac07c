"""Identities and authentication through the real gateway app on SQLite.

Refused credentials answer 401 and leave exactly one audit entry (deny, 401);
a caseworker on the admin API gets 403, audited; the admin API manages
departments, users and keys; a disabled user or revoked key is refused at the
next request; an identity over its rate limit gets 429 with Retry-After, audited;
OIDC bearer tokens work end to end; OpenAPI documents the security schemes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
from exchange.core.models import ApiKey, AuditEntry
from exchange.identity import apikeys, identities
from gateway import create_app
from tests.support.keys import MASTER_KEY_B64
from tests.support.oidc import AUDIENCE, ISSUER, Provider, jwks_server

pytestmark = pytest.mark.integration

ADMIN_PATH = "/v1/admin/departments"


@dataclass
class Gateway:
    client: TestClient
    sessions: sessionmaker[Session]
    admin: str
    caseworker: str

    def get(self, path: str, key: str | None = None, **headers: str) -> Any:
        if key is not None:
            headers["X-API-Key"] = key
        return self.client.get(path, headers=headers)

    def entries(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))

    def count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def _seed(sessions: sessionmaker[Session]) -> tuple[str, str]:
    with transaction(sessions) as session:
        identities.create_department(session, "exchange_office", "Exchange Office")
        identities.create_department(session, "civil_affairs", "Civil Affairs")
        identities.create_user(session, username="root", department="exchange_office", role="admin")
        identities.create_user(
            session,
            username="li.na",
            department="civil_affairs",
            role="caseworker",
            oidc_subject="sub-li-na",
        )
        admin = identities.create_key(session, "root").key
        caseworker = identities.create_key(session, "li.na").key
    return admin, caseworker


def _gateway(tmp_path: Path, request: pytest.FixtureRequest, **gateway: Any) -> Iterator[Gateway]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    request.addfinalizer(engine.dispose)
    migrate(engine)
    sessions = session_factory(engine)
    admin, caseworker = _seed(sessions)
    settings = Settings(
        database_url=url,
        linkage_key="k",
        master_key=MASTER_KEY_B64,
        data_dir=tmp_path / "var",
        gateway=gateway,
    )
    with TestClient(create_app(settings)) as client:
        yield Gateway(client, sessions, admin, caseworker)


@pytest.fixture
def gw(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    yield from _gateway(tmp_path, request)


# --- refused credentials: 401, exactly one audit entry each ---------------------------------


def _expired_key(gw: Gateway) -> str:
    with transaction(gw.sessions) as session:
        return identities.create_key(session, "root", label="old").key


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "missing API key"),
        ("malformed", "malformed API key"),
        ("malformed_basic", "malformed API key"),
        ("wrong", "invalid API key"),
        ("unknown", "invalid API key"),
        ("revoked", "API key has been revoked"),
        ("expired", "API key has expired"),
        ("disabled", "disabled"),
        ("bearer_without_oidc", "bearer tokens are not accepted"),
    ],
)
def test_refused_credentials_get_401_and_one_audit_entry(
    gw: Gateway, kind: str, reason: str
) -> None:
    headers: dict[str, str] = {}
    if kind == "malformed":
        headers["X-API-Key"] = "not-a-key"
    elif kind == "malformed_basic":
        headers["Authorization"] = "Basic %%%"
    elif kind == "wrong":
        headers["X-API-Key"] = gw.admin[:-2] + "xx"
    elif kind == "unknown":
        headers["X-API-Key"] = "dx_000000000000_" + gw.admin.split("_", 2)[2]
    elif kind == "revoked":
        with transaction(gw.sessions) as session:
            identities.revoke_key(session, apikeys.key_id_of(gw.admin))
        headers["X-API-Key"] = gw.admin
    elif kind == "expired":
        key = _expired_key(gw)
        with transaction(gw.sessions) as session:
            row = session.scalars(
                select(ApiKey).where(ApiKey.key_id == apikeys.key_id_of(key))
            ).one()
            row.expires_at = utcnow() - timedelta(minutes=1)
        headers["X-API-Key"] = key
    elif kind == "disabled":
        with transaction(gw.sessions) as session:
            identities.disable_user(session, "root")
        headers["X-API-Key"] = gw.admin
    elif kind == "bearer_without_oidc":
        headers["Authorization"] = "Bearer eyJhbGciOiJub25lIn0.e30."
    before = gw.count()

    response = gw.client.get(ADMIN_PATH, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert reason in response.json()["detail"]
    entries = gw.entries()
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry.decision, entry.status, entry.action) == ("deny", 401, "admin.department.list")
    assert reason in entry.reason
    assert entry.request_id == response.headers["x-request-id"]


def test_a_key_works_until_revoked_through_the_api_then_is_refused_at_once(gw: Gateway) -> None:
    assert gw.get(ADMIN_PATH, gw.caseworker).status_code == 403  # cached by now

    revoked = gw.client.delete(
        f"/v1/admin/keys/{apikeys.key_id_of(gw.caseworker)}", headers={"X-API-Key": gw.admin}
    )

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = gw.get(ADMIN_PATH, gw.caseworker)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API key has been revoked"


def test_a_user_disabled_through_the_api_is_refused_at_the_next_request(gw: Gateway) -> None:
    assert gw.get(ADMIN_PATH, gw.caseworker).status_code == 403

    disabled = gw.client.post("/v1/admin/users/li.na/disable", headers={"X-API-Key": gw.admin})

    assert disabled.status_code == 200
    assert disabled.json()["active"] is False
    refused = gw.get(ADMIN_PATH, gw.caseworker)
    assert refused.status_code == 401
    assert "disabled" in refused.json()["detail"]


# --- authorization of the admin API ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/departments", None),
        ("POST", "/v1/admin/departments", {"code": "health", "name": "Health"}),
        ("GET", "/v1/admin/users", None),
        (
            "POST",
            "/v1/admin/users",
            {"username": "x", "department": "civil_affairs", "role": "admin"},
        ),
        ("POST", "/v1/admin/users/li.na/disable", None),
        ("POST", "/v1/admin/users/li.na/keys", {}),
        ("GET", "/v1/admin/users/li.na/keys", None),
        ("DELETE", "/v1/admin/keys/abc", None),
    ],
)
def test_a_caseworker_on_the_admin_api_gets_403_audited(
    gw: Gateway, method: str, path: str, body: dict[str, str] | None
) -> None:
    before = gw.count()

    response = gw.client.request(method, path, json=body, headers={"X-API-Key": gw.caseworker})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    entries = gw.entries()
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry.decision, entry.status, entry.actor, entry.role) == (
        "deny",
        403,
        "li.na",
        "caseworker",
    )
    assert entry.action.startswith("admin.")
    # Nothing was changed.
    with gw.sessions() as session:
        assert identities.get_user(session, "li.na").active
        assert [d.code for d in identities.list_departments(session)] == [
            "civil_affairs",
            "exchange_office",
        ]


def test_an_admin_onboards_a_department_user_and_key(gw: Gateway) -> None:
    admin = {"X-API-Key": gw.admin}

    dept = gw.client.post(
        "/v1/admin/departments", json={"code": "health", "name": "Health Commission"}, headers=admin
    )
    user = gw.client.post(
        "/v1/admin/users",
        json={
            "username": "wang.fang",
            "department": "health",
            "role": "publisher",
            "display_name": "Wang Fang",
        },
        headers=admin,
    )
    key = gw.client.post(
        "/v1/admin/users/wang.fang/keys",
        json={"label": "connector host", "expires_in_days": 30},
        headers=admin,
    )

    assert dept.status_code == 201, dept.text
    assert dept.json()["code"] == "health"
    assert user.status_code == 201, user.text
    assert user.json()["role"] == "publisher"
    assert user.json()["active"] is True
    assert key.status_code == 201, key.text
    created = key.json()
    assert created["key"].startswith(f"dx_{created['key_id']}_")
    assert created["label"] == "connector host"
    assert created["username"] == "wang.fang"

    listed = gw.client.get("/v1/admin/users/wang.fang/keys", headers=admin)
    assert listed.status_code == 200
    assert [k["key_id"] for k in listed.json()] == [created["key_id"]]
    assert "key" not in listed.json()[0]
    assert created["key"].split("_", 2)[2] not in listed.text

    # The new key works and carries the user's department and role.
    assert gw.get(ADMIN_PATH, created["key"]).status_code == 403
    last = gw.entries()[-1]
    assert (last.actor, last.department, last.role) == ("wang.fang", "health", "publisher")

    users = gw.client.get("/v1/admin/users", params={"department": "health"}, headers=admin)
    assert [u["username"] for u in users.json()] == ["wang.fang"]
    depts = gw.client.get("/v1/admin/departments", headers=admin).json()
    assert {d["code"] for d in depts} == {"health", "civil_affairs", "exchange_office"}


def test_admin_changes_are_audited_with_their_object_and_no_secret(gw: Gateway) -> None:
    admin = {"X-API-Key": gw.admin}
    before = gw.count()

    gw.client.post("/v1/admin/departments", json={"code": "health", "name": "H"}, headers=admin)
    gw.client.post(
        "/v1/admin/users",
        json={"username": "zhao", "department": "health", "role": "auditor"},
        headers=admin,
    )
    key = gw.client.post("/v1/admin/users/zhao/keys", json={}, headers=admin).json()
    gw.client.delete(f"/v1/admin/keys/{key['key_id']}", headers=admin)
    gw.client.post("/v1/admin/users/zhao/disable", headers=admin)
    # Refused changes are audited with their outcome, and change nothing.
    taken = gw.client.post(
        "/v1/admin/users",
        json={"username": "zhao", "department": "health", "role": "admin"},
        headers=admin,
    )
    assert taken.status_code == 409
    missing = gw.client.delete("/v1/admin/keys/nosuchkey", headers=admin)
    assert missing.status_code == 404
    disabled = gw.client.post("/v1/admin/users/zhao/keys", json={}, headers=admin)
    assert disabled.status_code == 409

    entries = gw.entries()[before:]
    assert [(e.action, e.decision, e.status, e.actor) for e in entries] == [
        ("admin.department.create", "allow", 201, "root"),
        ("admin.user.create", "allow", 201, "root"),
        ("admin.key.create", "allow", 201, "root"),
        ("admin.key.revoke", "allow", 200, "root"),
        ("admin.user.disable", "allow", 200, "root"),
        ("admin.user.create", "deny", 409, "root"),
        ("admin.key.revoke", "allow", 404, "root"),  # entitled to ask; nothing found
        ("admin.key.create", "deny", 409, "root"),
    ]
    assert "exists already" in entries[5].reason
    assert "no API key 'nosuchkey'" in entries[6].reason
    assert "disabled" in entries[7].reason
    users = gw.client.get("/v1/admin/users", params={"department": "health"}, headers=admin)
    assert [(u["username"], u["role"]) for u in users.json()] == [("zhao", "auditor")]
    keys = gw.client.get("/v1/admin/users/zhao/keys", headers=admin).json()
    assert [k["key_id"] for k in keys] == [key["key_id"]]
    assert "department health" in entries[0].reason
    assert "user zhao" in entries[1].reason
    assert f"key {key['key_id']} for user zhao" in entries[2].reason
    assert f"key {key['key_id']}" in entries[3].reason
    assert "user zhao" in entries[4].reason
    secret = key["key"].split("_", 2)[2]
    assert all(secret not in e.reason for e in entries)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "words"),
    [
        ("POST", "/v1/admin/departments", {"code": "civil_affairs", "name": "x"}, 409,
         "conflict", "exists already"),
        ("POST", "/v1/admin/departments", {"code": "Bad Code", "name": "x"}, 422,
         "invalid_request", "code"),
        ("POST", "/v1/admin/users", {"username": "a", "department": "nowhere",
         "role": "caseworker"}, 400, "validation_failed", "no department 'nowhere'"),
        ("POST", "/v1/admin/users", {"username": "a", "department": "civil_affairs",
         "role": "king"}, 422, "invalid_request", "role"),
        ("POST", "/v1/admin/users", {"username": "li.na", "department": "civil_affairs",
         "role": "caseworker"}, 409, "conflict", "exists already"),
        ("POST", "/v1/admin/users/ghost/disable", None, 404, "not_found", "no user 'ghost'"),
        ("POST", "/v1/admin/users/ghost/keys", {}, 404, "not_found", "no user 'ghost'"),
        ("DELETE", "/v1/admin/keys/nokey", None, 404, "not_found", "no API key 'nokey'"),
    ],
)  # fmt: skip
def test_bad_admin_requests_get_clear_problems(
    gw: Gateway,
    method: str,
    path: str,
    body: dict[str, str] | None,
    status: int,
    code: str,
    words: str,
) -> None:
    response = gw.client.request(method, path, json=body, headers={"X-API-Key": gw.admin})

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert words in response.json()["detail"]


def test_a_disabled_user_gets_no_new_key(gw: Gateway) -> None:
    admin = {"X-API-Key": gw.admin}
    gw.client.post("/v1/admin/users/li.na/disable", headers=admin)

    response = gw.client.post("/v1/admin/users/li.na/keys", json={}, headers=admin)

    assert response.status_code == 409
    assert "disabled" in response.json()["detail"]


# --- rate limits --------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    yield from _gateway(
        tmp_path,
        request,
        rate_limit_per_minute=1,
        rate_limit_burst=3,
        registry_rate_limit_per_minute=1,
        registry_rate_limit_burst=3,
    )


def test_the_request_after_the_burst_gets_429_with_retry_after_and_is_audited(
    limited: Gateway,
) -> None:
    for _ in range(3):
        assert limited.get(ADMIN_PATH, limited.admin).status_code == 200
    before = limited.count()

    response = limited.get(ADMIN_PATH, limited.admin)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    entries = limited.entries()
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry.decision, entry.status, entry.reason) == ("deny", 429, "rate limit exceeded")
    assert (entry.actor, entry.role) == ("root", "admin")
    # Another identity has its own budget.
    assert limited.get(ADMIN_PATH, limited.caseworker).status_code == 403


def test_the_schema_registry_answers_429_in_confluents_shape(limited: Gateway) -> None:
    basic = "Basic " + base64.b64encode(f"x:{limited.admin}".encode()).decode()
    for _ in range(3):
        limited.client.get("/registry/subjects", headers={"Authorization": basic})

    response = limited.client.get("/registry/subjects", headers={"Authorization": basic})

    assert response.status_code == 429
    assert response.json()["error_code"] == 42901  # Confluent's code for a spent rate limit
    assert "retry-after" in response.headers


# --- OIDC bearer tokens -------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[Provider]:
    with jwks_server() as served:
        yield served


def test_a_bearer_token_of_a_registered_subject_is_accepted_and_audited(
    tmp_path: Path, request: pytest.FixtureRequest, provider: Provider
) -> None:
    gateways = _gateway(
        tmp_path,
        request,
        oidc_jwks_url=provider.jwks_url,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
    )
    gw = next(gateways)
    try:
        ok = gw.client.get(
            "/registry/subjects", headers={"Authorization": f"Bearer {provider.token()}"}
        )
        wrong = gw.client.get(
            "/registry/subjects",
            headers={"Authorization": f"Bearer {provider.token(aud='other')}"},
        )
        # An API key in the bearer slot still works.
        as_bearer = gw.client.get(ADMIN_PATH, headers={"Authorization": f"Bearer {gw.admin}"})
    finally:
        gateways.close()

    assert ok.status_code == 200, ok.text
    assert wrong.status_code == 401
    assert wrong.json()["message"] == "bearer token is for another audience"
    assert as_bearer.status_code == 200
    entries = gw.entries()
    assert (entries[-3].actor, entries[-3].decision) == ("li.na", "allow")
    assert (entries[-2].decision, entries[-2].status) == ("deny", 401)


def test_openapi_documents_the_admin_api_and_security_schemes(gw: Gateway) -> None:
    spec = gw.client.get("/openapi.json").json()

    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["OidcBearer"]["scheme"] == "bearer"
    assert schemes["BasicApiKey"]["scheme"] == "basic"
    create_key = spec["paths"]["/v1/admin/users/{username}/keys"]["post"]
    assert {"ApiKey": []} in create_key["security"]
    assert create_key["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/KeyCreated"
    }
    listed = spec["paths"]["/v1/admin/users/{username}/keys"]["get"]["responses"]["200"]
    assert "KeyPublic" in str(listed)
    assert "key" not in spec["components"]["schemas"]["KeyPublic"]["properties"]
    role = spec["components"]["schemas"]["UserCreate"]["properties"]["role"]
    assert set(role["enum"]) == {
        "caseworker",
        "publisher",
        "auditor",
        "admin",
        "department_admin",
        "data_steward",
    }
    assert {"BasicApiKey": []} in spec["paths"]["/registry/subjects"]["get"]["security"]
