"""The publisher's API (``/v1/connectors/...``) and pages (``/ui/publisher/...``): its own
department's runs with their reconciliation, withdrawals and the use of its data; another
department refused 403 and audited; an administrator reads any department but no
department's rejected rows. The gateway runs in a TestClient on SQLite."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.deadletters import summarize
from exchange import audit
from exchange.core.config import load_settings
from exchange.core.db import transaction, utcnow
from exchange.core.models import (
    AuditEntry,
    CatalogueResource,
    ConnectorRun,
    RecordVersion,
    SourceRecord,
)
from exchange.identity.apikeys import create_key
from exchange.identity.identities import create_department
from gateway import create_app
from tests.support.cli import cli_database, isolate
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

HI, HR, CA = "health_insurance", "human_resources", "civil_affairs"
MLA = "minimum-living-allowance"


@dataclass
class Env:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]

    def entry(self, response: httpx.Response) -> AuditEntry:
        with self.sessions() as session:
            [found] = session.scalars(
                select(AuditEntry).where(AuditEntry.request_id == response.headers["x-request-id"])
            )
            session.expunge(found)
            return found


def _seed(session: Session) -> None:
    now = utcnow()
    for code in (HI, HR, CA):
        create_department(session, code, code)
    session.add(
        CatalogueResource(
            dataset="health_insurance_enrolment",
            owner_department=HI,
            title="Enrolments",
            update_frequency="weekly",
            sharing_type="conditional",
            updated_by="t",
        )
    )
    session.add_all(
        [
            ConnectorRun(
                run_id="run-hi-1",
                connector_id="health-insurance-enrolments",
                department=HI,
                dataset="health_insurance_enrolment",
                status="complete",
                read=8,
                published=6,
                rejected=2,
                reasons={"code.unknown": 1, "resident_id.check_character": 1},
                started_at=now - timedelta(minutes=5),
                finished_at=now - timedelta(minutes=4),
            ),
            ConnectorRun(
                run_id="run-hr-1",
                connector_id="human-resources-insurance",
                department=HR,
                dataset="social_insurance",
                status="complete",
                read=3,
                published=3,
                rejected=0,
                reasons={},
                started_at=now - timedelta(minutes=3),
                finished_at=now - timedelta(minutes=2),
            ),
        ]
    )
    record = SourceRecord(
        dataset="health_insurance_enrolment",
        department=HI,
        source_id="YB-1",
        version=2,
        content_hash="withdrawn",
        schema_id=1,
        payload={},
        topic="std.health_insurance_enrolment.v1",
        partition=0,
        offset=2,
        ingested_at=now,
        deleted=True,
    )
    session.add(record)
    session.flush()
    for version, deleted in ((1, False), (2, True)):
        session.add(
            RecordVersion(
                record_id=record.id,
                version=version,
                deleted=deleted,
                content_hash="withdrawn" if deleted else "h1",
                topic=record.topic,
                partition=0,
                offset=version,
                ingested_at=now - timedelta(minutes=10 - version),
                applied_at=now,
            )
        )
    # Civil affairs used health insurance's data for the allowance review, twice; and
    # asked household data for it (not health insurance's business).
    for n, dataset in enumerate(
        ["health_insurance_enrolment,person", "health_insurance_enrolment", "person"]
    ):
        audit.append(
            session,
            audit.Decision(
                request_id=f"seed-{n}",
                action="household.lookup",
                decision="allow",
                reason="seeded",
                status=200,
                actor="demo.caseworker",
                department=CA,
                role="caseworker",
                purpose=MLA,
                dataset=dataset,
            ),
            at=now - timedelta(minutes=n),
        )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("EXCHANGE_LINKAGE_KEY", LINKAGE_KEY)
    monkeypatch.setenv("EXCHANGE_MASTER_KEY", MASTER_KEY_B64)
    settings = load_settings()
    with cli_database() as (_, sessions):
        with transaction(sessions) as session:
            _seed(session)
            keys = {
                "publisher": create_key(
                    session, actor="hi.publisher", department=HI, role="publisher"
                ),
                "admin": create_key(session, actor="central.admin", department=CA, role="admin"),
                "caseworker": create_key(session, actor="t.cw", department=CA, role="caseworker"),
            }
        with TestClient(create_app(settings)) as client:
            yield Env(client, sessions, keys)


def _api(env: Env, who: str, path: str, **params: str) -> httpx.Response:
    return env.client.get(
        f"/v1/connectors/{path}", params=params, headers={"X-API-Key": env.keys[who]}
    )


def test_a_publisher_reads_its_own_runs_with_their_reconciliation(env: Env) -> None:
    answer = _api(env, "publisher", "runs")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["department"] == HI
    [run] = body["runs"]
    assert (run["read"], run["published"], run["rejected"], run["reconciled"]) == (8, 6, 2, True)
    assert run["reasons"] == {"code.unknown": 1, "resident_id.check_character": 1}
    entry = env.entry(answer)
    assert (entry.action, entry.decision, entry.status, entry.actor) == (
        "connectors.runs",
        "allow",
        200,
        "hi.publisher",
    )


def test_another_departments_runs_are_refused_and_audited(env: Env) -> None:
    answer = _api(env, "publisher", "runs", department=HR)
    assert answer.status_code == 403
    entry = env.entry(answer)
    assert (entry.action, entry.decision, entry.status) == ("connectors.runs", "deny", 403)
    assert HR in entry.reason
    # An administrator sees every department's; a caseworker none.
    assert {r["department"] for r in _api(env, "admin", "runs").json()["runs"]} == {HI, HR}
    assert _api(env, "caseworker", "runs").status_code == 403


def test_withdrawals_and_the_use_of_the_departments_data(env: Env) -> None:
    [withdrawn] = _api(env, "publisher", "withdrawals").json()["withdrawals"]
    assert (withdrawn["source_id"], withdrawn["version"], withdrawn["still_withdrawn"]) == (
        "YB-1",
        2,
        True,
    )
    usage = _api(env, "publisher", "usage").json()
    assert usage["datasets"] == ["health_insurance_enrolment"]
    [use] = usage["uses"]
    assert (use["department"], use["purpose"], use["served"], use["refused"]) == (CA, MLA, 2, 0)
    assert use["datasets"] == ["health_insurance_enrolment"]
    assert _api(env, "publisher", "usage", department=HR).status_code == 403
    assert _api(env, "admin", "usage").status_code == 400  # which department?


def test_rejected_rows_are_the_publishers_alone(env: Env) -> None:
    answer = _api(env, "admin", "rejections", department=HI)
    assert answer.status_code == 403
    assert env.entry(answer).action == "connectors.rejections"
    assert _api(env, "publisher", "rejections", department=HR).status_code == 403


def _sign_in(env: Env, who: str) -> None:
    form = env.client.get("/ui/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    answer = env.client.post(
        "/ui/sign-in",
        data={"api_key": env.keys[who], "csrf_token": token.group(1), "next": "/ui/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def test_the_pages_in_both_languages_and_a_refusal(env: Env) -> None:
    _sign_in(env, "publisher")
    page = env.client.get("/ui/publisher/runs")
    assert page.status_code == 200, page.text
    assert "8 = 6 + 2" in page.text
    assert "对账一致" in page.text
    assert "该值不在字段的代码表中" in page.text  # code.unknown, in Chinese
    assert env.entry(page).action == "connectors.runs"
    english = env.client.get("/ui/publisher/runs", params={"lang": "en"})
    assert "The value is not in the field&#39;s code table" in english.text
    assert "reconciled" in english.text
    refused = env.client.get("/ui/publisher/runs", params={"department": HR})
    assert refused.status_code == 403
    assert (env.entry(refused).decision, env.entry(refused).status) == ("deny", 403)
    withdrawals = env.client.get("/ui/publisher/withdrawals")
    assert "YB-1" in withdrawals.text
    assert "已撤回" in withdrawals.text
    usage = env.client.get("/ui/publisher/usage")
    assert usage.status_code == 200
    assert CA in usage.text
    assert MLA in usage.text
    assert env.entry(usage).action == "connectors.usage"


def test_dead_letters_are_grouped_by_reason_with_example_rows_and_no_values() -> None:
    entries = [
        {
            "connector": "c",
            "line": 15,
            "source_id": "YB-1",
            "values": {"id_no": "secret"},
            "raw": "the whole line",
            "reasons": [{"field": "scheme", "code": "code.unknown", "message": "m1"}],
            "at": "2026-12-07T00:00:00+00:00",
        },
        {
            "connector": "c",
            "line": 16,
            "source_id": None,
            "reasons": [
                {"field": "scheme", "code": "code.unknown", "message": "m2"},
                {"field": "resident_id", "code": "resident_id.length", "message": "m3"},
            ],
        },
    ]
    found = summarize("dlq.d.x", entries, examples=1)
    assert found.total == 2
    assert [(g.code, g.field, g.count) for g in found.reasons] == [
        ("code.unknown", "scheme", 2),
        ("resident_id.length", "resident_id", 1),
    ]
    [example] = found.reasons[0].examples
    assert (example.line, example.source_id, example.message) == (15, "YB-1", "m1")
    assert "secret" not in repr(found)
    assert "the whole line" not in repr(found)
