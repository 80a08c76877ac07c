"""``POST /v1/audit/verify`` and ``POST /v1/audit/reports/person``: the API routes the
console's verification and citizen's report pages mirror, for auditors only, audited."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exchange.core.config import Settings
from exchange.core.db import transaction
from exchange.identity.apikeys import create_key
from gateway import create_app
from tests.support.database import migrated

RESIDENT = "11010519491231002X"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    settings = Settings(data_dir=tmp_path, audit={"mirror": False, "head_interval_s": 0})
    with migrated(settings.db_url) as factory, transaction(factory) as session:
        keys = {
            role: create_key(session, actor=f"a.{role}", department="civil_affairs", role=role)
            for role in ("auditor", "caseworker")
        }
    with TestClient(create_app(settings)) as client:
        yield client, keys, tmp_path / "registry.db"


def test_an_auditor_verifies_the_log_and_a_caseworker_may_not(
    gateway: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, keys, db = gateway
    client.post("/v1/audit/heads", headers={"X-API-Key": keys["auditor"]})
    answer = client.post("/v1/audit/verify", headers={"X-API-Key": keys["auditor"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["intact"] is True
    assert body["size"] >= 1
    refused = client.post("/v1/audit/verify", headers={"X-API-Key": keys["caseworker"]})
    assert refused.status_code == 403
    bad_key = client.post(
        "/v1/audit/verify",
        json={"public_key": "# key id: k\nnot a key"},
        headers={"X-API-Key": keys["auditor"]},
    )
    assert bad_key.status_code == 400
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT actor, decision, status FROM audit_log WHERE action = 'audit.verify'"
        ).fetchall()
    assert rows == [("a.auditor", "allow", 200), ("a.caseworker", "deny", 403),
                    ("a.auditor", "deny", 400)]  # fmt: skip


def test_the_citizens_report_names_the_person_by_blind_index_only(
    gateway: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, keys, db = gateway
    # A caseworker's request about the person (nothing found, still audited with the subject).
    client.post(
        "/v1/persons/lookup",
        params={"purpose": "minimum-living-allowance"},
        json={"resident_id": RESIDENT},
        headers={"X-API-Key": keys["caseworker"]},
    )
    answer = client.post(
        "/v1/audit/reports/person",
        json={"resident_id": RESIDENT},
        headers={"X-API-Key": keys["auditor"]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["person"] == RESIDENT[-4:]
    assert RESIDENT not in answer.text
    assert [line["actor"] for line in body["lines"]] == ["a.caseworker"]
    refused = client.post(
        "/v1/audit/reports/person",
        json={"resident_id": RESIDENT},
        headers={"X-API-Key": keys["caseworker"]},
    )
    assert refused.status_code == 403
    with sqlite3.connect(db) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM audit_log")]
    assert all(RESIDENT not in reason for reason in reasons)
