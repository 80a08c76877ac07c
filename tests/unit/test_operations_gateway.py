"""The gateway for operators, on SQLite without Kafka: its metrics and their credential,
/readyz, and an access log and metric labels that never hold personal data."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, AuditTip
from exchange.identity.apikeys import create_key
from gateway import create_app
from gateway.accesslog import LOGGER
from schemas.validators import resident_id_check_character
from tests.support.catalogue import Row, add_grant, add_purpose, insert_rows
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

MLA = "minimum-living-allowance"
TOKEN = "scrape-token-for-tests-0123456789"
PERSON = "33010619800507001" + resident_id_check_character("33010619800507001")
NAME, BIRTH = "欧阳秀英", "1980-05-07"


@dataclass
class Gateway:
    client: TestClient
    sessions: sessionmaker[Session]
    caseworker: str
    publisher: str

    def scrape(self, token: str | None = TOKEN) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.client.get("/metrics", headers=headers)
        assert answer.status_code == 200, answer.text
        return {f.name: f for f in text_string_to_metric_families(answer.text)}

    def entries(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    options: dict[str, Any] = getattr(request, "param", {"gateway": {"metrics_token": TOKEN}})
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(
        sessions,
        [
            Row(
                "person",
                "household_registry",
                "HR-1",
                {
                    "resident_id": PERSON,
                    "family_name": "欧阳",
                    "given_name": "秀英",
                    "full_name": NAME,
                    "birth_date": BIRTH,
                    "sex": "FEMALE",
                    "nationality": "CN",
                    "residence_division_code": "330106",
                },
                entity_id="P" + "0" * 18 + "e1",
            )
        ],
    )
    add_purpose(sessions, MLA)
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="person",
        fields={"resident_id": "masked", "full_name": "full", "birth_date": "full"},
        purposes=[MLA],
    )
    with transaction(sessions) as session:
        caseworker = create_key(
            session, actor="alice", department="civil_affairs", role="caseworker"
        )
        publisher = create_key(session, actor="bob", department="civil_affairs", role="publisher")
    full = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64, **options)
    try:
        with TestClient(create_app(full)) as client:
            yield Gateway(client, sessions, caseworker, publisher)
    finally:
        engine.dispose()


def _requests(families: dict[str, Any]) -> dict[tuple[str, str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"], s.labels["decision"]): s.value
        for s in families["exchange_gateway_requests"].samples
        if s.name == "exchange_gateway_requests_total"
    }


def test_metrics_need_the_scrape_credential_and_are_not_audited(gateway: Gateway) -> None:
    before = gateway.entries()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = gateway.client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "unauthenticated"
        assert TOKEN not in refused.text
    assert (
        "exchange_gateway_requests_total"
        in gateway.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    )
    assert gateway.entries() == before  # scrapes, allowed or refused, leave no entry


@pytest.mark.parametrize("gateway", [{"env": "production"}], indirect=True)
def test_production_without_a_token_refuses_metrics_naming_the_setting(gateway: Gateway) -> None:
    refused = gateway.client.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert "gateway.metrics_token" in refused.json()["detail"]


@pytest.mark.parametrize("gateway", [{}], indirect=True)
def test_development_without_a_token_serves_metrics(gateway: Gateway) -> None:
    assert "exchange_gateway_requests" in gateway.scrape(token=None)


def test_requests_are_counted_by_route_template_status_and_decision(gateway: Gateway) -> None:
    key = {"X-API-Key": gateway.caseworker}
    params = {"purpose": MLA, "case_ref": "C-1"}
    body = {"resident_id": PERSON}
    allowed = gateway.client.post("/v1/persons/lookup", json=body, params=params, headers=key)
    assert allowed.status_code == 200, allowed.text
    refused = gateway.client.post(
        "/v1/persons/lookup", json=body, params=params, headers={"X-API-Key": gateway.publisher}
    )
    assert refused.status_code == 403
    assert gateway.client.get("/v1/no-such-route").status_code == 404
    counted = _requests(gateway.scrape())
    assert counted[("/v1/persons/lookup", "POST", "200", "allow")] == 1
    assert counted[("/v1/persons/lookup", "POST", "403", "deny")] == 1
    assert counted[("unmatched", "GET", "404", "none")] == 1
    families = gateway.scrape()
    latency = {
        s.labels["route"]: s.value
        for s in families["exchange_gateway_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert latency["/v1/persons/lookup"] == 2
    appended = families["exchange_gateway_audit_appends"].samples[0].value
    assert appended == gateway.entries() == 2  # the two lookups; an unmatched path has none


def test_readyz_answers_ready_then_names_what_is_not(gateway: Gateway) -> None:
    before = gateway.entries()
    ready = gateway.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}
    with transaction(gateway.sessions) as session:
        session.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
    stale = gateway.client.get("/readyz")
    assert stale.status_code == 503
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["code"] == "not_ready"
    assert "schema: the database is at zzzz" in stale.json()["detail"]
    with transaction(gateway.sessions) as session:
        session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": _head()})
        session.execute(AuditTip.__table__.delete())
    no_tip = gateway.client.get("/readyz")
    assert no_tip.status_code == 503
    assert "audit log" in no_tip.json()["detail"]
    assert gateway.entries() == before  # probes are not audited
    counted = _requests(gateway.scrape())
    assert counted[("/readyz", "GET", "503", "none")] == 2


def _head() -> str:
    from exchange.core.db import schema_heads

    [head] = schema_heads()
    return head


# Resident IDs, names and birth dates a caller might send, anywhere in a request.
_digits = st.text(alphabet="0123456789", min_size=17, max_size=17)
_ids = _digits.map(lambda d: d + resident_id_check_character(d))
_HAN = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗秀英伟芳娜敏静丽强磊军洋"
_names = st.text(alphabet=_HAN, min_size=2)
_dates = st.dates().map(lambda d: d.isoformat())


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resident_id=_ids, name=_names, birth_date=_dates)
def test_no_identifier_name_or_birth_date_in_the_access_log_or_a_label(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, resident_id: str, name: str, birth_date: str
) -> None:
    key = {"X-API-Key": gateway.caseworker}
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        # In the body (as the API wants), and in the query string and path (refused forms).
        gateway.client.post(
            "/v1/persons/lookup",
            json={"resident_id": resident_id},
            params={"purpose": MLA, "case_ref": "C-1", "resident_id": resident_id},
            headers=key,
        )
        gateway.client.post(
            "/v1/search/persons",
            json={"name": name, "birth_date": birth_date},
            params={"purpose": MLA, "name": name, "birth_date": birth_date},
            headers=key,
        )
        gateway.client.get(f"/v1/persons/{resident_id}", params={"purpose": MLA}, headers=key)
        gateway.client.get(
            "/v1/persons", params={"name": name, "birth_date": birth_date}, headers=key
        )
        gateway.client.get(f"/no/such/{resident_id}", params={"name": name})
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    access = [r for r in ours if r.name == LOGGER]
    assert len(access) == 5  # one line per request
    assert all(getattr(r, "request_id", None) for r in access)
    written = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')} {r.args!r}" for r in ours)
    metrics = gateway.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    labels = "\n".join(
        value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        for value in sample.labels.values()
    )
    for secret in (resident_id, resident_id[:17], name, birth_date, "alice"):
        assert secret not in written
        assert secret not in labels


@pytest.mark.parametrize(
    "gateway", [{"gateway": {"metrics_token": TOKEN, "access_log": False}}], indirect=True
)
def test_the_access_log_can_be_turned_off_and_requests_are_still_counted(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert gateway.client.get("/healthz").status_code == 200
    assert not [r for r in caplog.records if r.name == LOGGER]
    assert _requests(gateway.scrape())[("/healthz", "GET", "200", "none")] == 1
