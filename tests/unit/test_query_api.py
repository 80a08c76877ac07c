"""The caseworkers' query API and the catalogue admin API, on SQLite, without Kafka.

Registry rows are stored as the builder stores them (ciphertext, blind indexes,
link keys); grants decide what each response holds, and every request leaves
exactly one audit entry.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.access import disclosure
from exchange.audit import search as audit_search
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, SourceRecord
from exchange.identity.apikeys import create_key
from exchange.local.broker import free_port
from exchange.security.keystore import LocalKeyStore
from gateway import create_app
from schemas.standards import load_standard, standard_from_schema
from schemas.validators import resident_id_check_character
from tests.support.catalogue import Row, add_grant, add_purpose, insert_rows
from tests.support.keys import LINKAGE_KEY, MASTER_KEY, MASTER_KEY_B64

MLA = "minimum-living-allowance"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


P1 = rid("33010619800507001")
P2 = rid("11010519900709002")
USCC = "91330106MA2XXXXX1X"
# Entity ids of the form the registry makes (P or O and 20 hexadecimal digits).
E1 = "P" + "0" * 18 + "e1"
E2 = "P" + "0" * 18 + "e2"
O1 = "O" + "0" * 18 + "01"
ROWS = [
    Row(
        "person",
        "household_registry",
        "HR-1",
        {
            "resident_id": P1,
            "family_name": "王",
            "given_name": "秀英",
            "full_name": "王秀英",
            "birth_date": "1980-05-07",
            "sex": "FEMALE",
            "nationality": "CN",
            "residence_division_code": "330106",
            "phone": "13800001234",
        },
        entity_id=E1,
    ),
    Row(
        "person",
        "household_registry",
        "HR-2",
        {
            "resident_id": P2,
            "family_name": "李",
            "given_name": "伟",
            "full_name": "李伟",
            "birth_date": "1990-07-09",
            "sex": "MALE",
            "nationality": "CN",
            "residence_division_code": "110105",
            "phone": "13900005678",
        },
        entity_id=E2,
    ),
    Row(
        "benefit_payment",
        "civil_affairs",
        "BP-1",
        {
            "resident_id": P1,
            "payment_id": "BP-1",
            "benefit_type": "MINIMUM_LIVING_ALLOWANCE",
            "amount_fen": 50000,
            "period_start": "2026-01-01",
            "period_end": "2026-01-31",
            "paid_on": "2026-02-01",
            "case_reference": "C-9",
            "division_code": "330106",
        },
        entity_id=E1,
    ),
    Row(
        "social_insurance",
        "hrss",
        "SI-1",
        {
            "resident_id": P1,
            "insurance_record_id": "SI-1",
            "employment_status": "UNEMPLOYED",
            "contribution_base_fen": 300000,
            "insured_division_code": "330106",
            "period_start": "2025-01-01",
        },
        entity_id=E1,
    ),
    Row(
        "organisation",
        "market_regulation",
        "MR-1",
        {
            "uscc": USCC,
            "legal_name": "杭州秀英商贸有限公司",
            "legal_form": "LIMITED_LIABILITY_COMPANY",
            "registration_date": "2019-03-01",
            "legal_representative_name": "王秀英",
            "legal_representative_resident_id": P1,
            "registered_address": "浙江省杭州市西湖区文三路1号",
            "registered_division_code": "330106",
            "status": "ACTIVE",
        },
        entity_id=O1,
    ),
]


@dataclass
class Env:
    client: TestClient
    sessions: sessionmaker[Session]
    caseworker: str
    other: str
    admin: str

    def get(self, url: str, key: str | None = None, **params: Any) -> Any:
        headers = {"X-API-Key": key or self.caseworker}
        return self.client.get(url, params=params, headers=headers)

    def lookup(self, resident_id: str, key: str | None = None, **params: Any) -> Any:
        """POST /v1/persons/lookup: the identifier in the body."""
        headers = {"X-API-Key": key or self.caseworker}
        return self.client.post(
            "/v1/persons/lookup",
            json={"resident_id": resident_id},
            params=params,
            headers=headers,
        )

    def org_lookup(self, credit_code: str, key: str | None = None, **params: Any) -> Any:
        headers = {"X-API-Key": key or self.caseworker}
        return self.client.post(
            "/v1/organisations/lookup",
            json={"credit_code": credit_code},
            params=params,
            headers=headers,
        )

    def search(
        self, name: str, birth_date: str | None = None, key: str | None = None, **params: Any
    ) -> Any:
        """POST /v1/search/persons: the name and birth date in the body."""
        headers = {"X-API-Key": key or self.caseworker}
        body = {"name": name} if birth_date is None else {"name": name, "birth_date": birth_date}
        return self.client.post("/v1/search/persons", json=body, params=params, headers=headers)

    def audit_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0

    def last_entry(self) -> AuditEntry:
        with self.sessions() as session:
            entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
            assert entry is not None
            session.expunge(entry)
            return entry


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, ROWS)
    add_purpose(sessions, MLA)
    add_purpose(sessions, "tax-audit")
    add_purpose(sessions, "old-purpose", active=False)
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="person",
        fields={
            "resident_id": "masked",
            "full_name": "full",
            "family_name": "full",
            "given_name": "full",
            "birth_date": "full",
            "phone": "masked",
        },
        purposes=[MLA],
        constraints={"division_prefix": "33"},
    )
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="benefit_payment",
        fields={"resident_id": "masked", "amount_fen": "full", "benefit_type": "masked"},
        purposes=[MLA],
    )
    with transaction(sessions) as session:
        caseworker = create_key(
            session, actor="alice", department="civil_affairs", role="caseworker"
        )
        other = create_key(session, actor="bob", department="tax_bureau", role="caseworker")
        admin = create_key(session, actor="root", department="exchange_office", role="admin")
    settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    try:
        with TestClient(create_app(settings)) as client:
            yield Env(client, sessions, caseworker, other, admin)
    finally:
        engine.dispose()


def test_lookup_shows_exactly_what_the_grants_allow(env: Env) -> None:
    before = env.audit_count()
    response = env.lookup(P1, purpose=MLA, case_ref="C-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert P1 not in response.text
    assert body["total"] == 2
    assert body["next"] is None
    by_dataset = {r["dataset"]: r for r in body["records"]}
    # No grant on social insurance or organisations: those records are absent.
    assert set(by_dataset) == {"person", "benefit_payment"}
    person = by_dataset["person"]["fields"]
    # The identifier's style is a token (birth date is shown, so any partial mask of the
    # identifier would give it away): the same for one purpose in every dataset.
    token = person["resident_id"]
    assert token.startswith("tk_")
    assert len(token) == 29
    assert person == {
        "resident_id": token,
        "full_name": "王秀英",
        "family_name": "王",
        "given_name": "秀英",
        "birth_date": "1980-05-07",
        "phone": "*******1234",
    }
    assert by_dataset["person"]["masked_fields"] == ["phone", "resident_id"]
    payment = by_dataset["benefit_payment"]
    assert payment["fields"] == {
        "resident_id": token,
        "amount_fen": 50000,  # sensitive, granted in full: decrypted
        "benefit_type": "***",  # sensitive, granted masked: decrypted then hidden
    }
    assert body["entity_ids"] == [E1]
    assert env.audit_count() == before + 1
    entry = env.last_entry()
    assert (entry.decision, entry.status, entry.purpose, entry.case_ref) == (
        "allow",
        200,
        MLA,
        "C-1",
    )
    assert entry.dataset == "benefit_payment,person"
    assert E1 in entry.subjects
    assert P1 not in json.dumps([entry.subjects, entry.reason, entry.fields])
    assert "person.full_name" in entry.fields
    assert "person.nationality" not in entry.fields


def test_row_constraint_hides_a_row_as_if_it_did_not_exist(env: Env) -> None:
    response = env.lookup(P2, purpose=MLA)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "李伟" not in response.text
    entry = env.last_entry()
    assert (entry.decision, entry.status, entry.fields) == ("allow", 404, [])


@pytest.mark.parametrize(
    ("purpose", "status", "code"),
    [
        (None, 400, "validation_failed"),
        ("  ", 400, "validation_failed"),
        ("no-such-purpose", 400, "validation_failed"),
        ("old-purpose", 400, "validation_failed"),
        ("tax-audit", 403, "forbidden"),
    ],
)
def test_purpose_is_required_known_active_and_granted(
    env: Env, purpose: str | None, status: int, code: str
) -> None:
    before = env.audit_count()
    params = {} if purpose is None else {"purpose": purpose}
    for ask in (
        lambda: env.lookup(P1, **params),
        lambda: env.get(f"/v1/entities/{E1}", **params),
        lambda: env.org_lookup(USCC, **params),
    ):
        response = ask()
        assert response.status_code == status, response.text
        assert response.json()["code"] == code
        assert "Traceback" not in response.text
        entry = env.last_entry()
        assert (entry.decision, entry.status, entry.fields) == ("deny", status, [])
    assert env.audit_count() == before + 3


def test_a_department_without_grants_is_denied(env: Env) -> None:
    response = env.lookup(P1, key=env.other, purpose=MLA)
    assert response.status_code == 403
    assert "tax_bureau/caseworker" in response.json()["detail"]
    assert env.last_entry().decision == "deny"


def test_full_beats_masked_across_grants(env: Env) -> None:
    add_grant(
        env.sessions,
        department="civil_affairs",
        dataset="person",
        fields={"resident_id": "full"},
        purposes=[MLA],
        constraints={"department": "household_registry"},
    )
    response = env.lookup(P1, purpose=MLA)
    person = next(r for r in response.json()["records"] if r["dataset"] == "person")
    assert person["fields"]["resident_id"] == P1
    assert person["fields"]["phone"] == "*******1234"


def test_pagination(env: Env) -> None:
    first = env.lookup(P1, purpose=MLA, limit=1).json()
    assert (first["total"], first["limit"], first["offset"]) == (2, 1, 0)
    assert len(first["records"]) == 1
    assert first["next"]
    # The next page: the same request (the identifier in the body) to the next URL.
    assert P1 not in first["next"]
    second = env.client.post(
        first["next"], json={"resident_id": P1}, headers={"X-API-Key": env.caseworker}
    ).json()
    assert second["offset"] == 1
    assert second["next"] is None
    assert {first["records"][0]["dataset"], second["records"][0]["dataset"]} == {
        "person",
        "benefit_payment",
    }
    assert env.lookup(P1, purpose=MLA, limit=101).status_code == 422


def test_crypto_shredded_fields_are_null_and_listed(env: Env) -> None:
    LocalKeyStore(env.sessions, MASTER_KEY, cache_ttl=0).destroy("benefit_payment")
    response = env.lookup(P1, purpose=MLA)
    payment = next(r for r in response.json()["records"] if r["dataset"] == "benefit_payment")
    assert payment["fields"] == {"resident_id": None, "amount_fen": None, "benefit_type": None}
    assert payment["unreadable_fields"] == ["amount_fen", "benefit_type", "resident_id"]


def test_organisation_lookup_and_the_representatives_businesses(env: Env) -> None:
    assert env.org_lookup(USCC, purpose=MLA).status_code == 404
    add_grant(
        env.sessions,
        department="civil_affairs",
        dataset="organisation",
        fields={"legal_name": "full", "legal_representative_resident_id": "masked"},
        purposes=[MLA],
    )
    org = env.org_lookup(USCC.lower(), purpose=MLA).json()
    assert [r["fields"] for r in org["records"]] == [
        {
            "legal_name": "杭州秀英商贸有限公司",
            "legal_representative_resident_id": org["records"][0]["fields"][
                "legal_representative_resident_id"
            ],
        }
    ]
    token = org["records"][0]["fields"]["legal_representative_resident_id"]
    assert token.startswith("tk_")
    assert P1 not in json.dumps(org)
    # The person's lookup now also shows the business she represents (journey 1).
    person = env.lookup(P1, purpose=MLA).json()
    assert {r["dataset"] for r in person["records"]} == {
        "person",
        "benefit_payment",
        "organisation",
    }


def test_search_is_fuzzy_ranked_and_limited_to_admitted_rows(env: Env) -> None:
    # A homophone of the given name and the day and month swapped still find her.
    response = env.search(name="王秀鹰", birth_date="1980-07-05", purpose=MLA)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    [hit] = body["results"]
    assert hit["score"] > 0
    assert hit["record"]["source_id"] == "HR-1"
    assert set(hit["match"]) == {"family_name", "given_name", "birth_date"}
    # 李伟 exists, but outside the grant's division: never found.
    assert env.search(name="李伟", purpose=MLA).json()["total"] == 0
    entry = env.last_entry()
    assert (entry.action, entry.decision, entry.subjects) == ("person.search", "allow", [])


def test_search_needs_the_searched_fields_in_full(env: Env) -> None:
    add_grant(
        env.sessions,
        department="tax_bureau",
        dataset="person",
        fields={"full_name": "full", "birth_date": "masked"},
        purposes=["tax-audit"],
    )
    ok = env.search(key=env.other, name="王秀英", purpose="tax-audit")
    assert ok.status_code == 200
    assert ok.json()["total"] == 1
    denied = env.search(key=env.other, name="王秀英", birth_date="1980-05-07", purpose="tax-audit")
    assert denied.status_code == 403
    assert "birth_date" in denied.json()["detail"]
    bad = env.search(name="王", birth_date="1980-13-45", purpose=MLA)
    assert bad.status_code == 400
    assert env.last_entry().status == 400


def test_entity_view_is_restricted_to_visible_fields_and_records(env: Env) -> None:
    body = env.get(f"/v1/entities/{E1}", purpose=MLA).json()
    assert body["kind"] == "person"
    assert {r["dataset"] for r in body["records"]} == {"person", "benefit_payment"}
    golden = body["golden_record"]
    assert set(golden) == {
        "resident_id",
        "full_name",
        "family_name",
        "given_name",
        "birth_date",
        "phone",
    }
    assert golden["full_name"]["value"] == "王秀英"
    assert golden["resident_id"]["value"] != P1
    assert env.get(f"/v1/entities/{E2}", purpose=MLA).status_code == 404
    assert env.get(f"/v1/entities/{E1[:-1]}f", purpose=MLA).status_code == 404


def test_catalogue_admin_api_is_audited(env: Env) -> None:
    admin = {"X-API-Key": env.admin}
    before = env.audit_count()
    created = env.client.post(
        "/v1/admin/purposes",
        json={"code": "child-benefit", "title": "Child benefit"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    again = env.client.post(
        "/v1/admin/purposes", json={"code": "child-benefit", "title": "x"}, headers=admin
    )
    assert again.status_code == 409
    bad = env.client.post(
        "/v1/admin/grants",
        json={
            "department": "health",
            "role": "caseworker",
            "dataset": "person",
            "fields": {"shoe_size": "full", "full_name": "blurred"},
            "purposes": ["child-benefit", "nope"],
            "row_constraints": {"planet": "earth"},
        },
        headers=admin,
    )
    assert bad.status_code == 400
    detail = bad.json()["detail"]
    for word in ("shoe_size", "blurred", "nope", "planet"):
        assert word in detail
    grant = env.client.post(
        "/v1/admin/grants",
        json={
            "department": "health",
            "role": "caseworker",
            "dataset": "person",
            "fields": {"full_name": "full"},
            "purposes": ["child-benefit"],
            "valid_until": "2099-01-01T00:00:00Z",
        },
        headers=admin,
    )
    assert grant.status_code == 201, grant.text
    grant_id = grant.json()["id"]
    entry = env.last_entry()
    assert entry.action == "catalogue.grant.add"
    assert f"grant {grant_id}" in entry.reason
    listed = env.client.get("/v1/admin/grants", headers=admin).json()
    assert grant_id in [g["id"] for g in listed]
    assert env.client.delete(f"/v1/admin/grants/{grant_id}", headers=admin).status_code == 200
    assert env.last_entry().action == "catalogue.grant.revoke"
    assert env.client.delete(f"/v1/admin/grants/{grant_id}", headers=admin).status_code == 409
    assert env.client.delete("/v1/admin/purposes/child-benefit", headers=admin).status_code == 200
    forbidden = env.client.post(
        "/v1/admin/purposes",
        json={"code": "sneaky", "title": "x"},
        headers={"X-API-Key": env.caseworker},
    )
    assert forbidden.status_code == 403
    datasets = env.client.get(
        "/v1/catalogue/datasets", headers={"X-API-Key": env.caseworker}
    ).json()
    person = next(d for d in datasets if d["name"] == "person")
    assert {
        "name": "resident_id",
        "encrypted": True,
        "kind": "identifier",
        "mask": "token",
    }.items() <= next(f for f in person["fields"] if f["name"] == "resident_id").items()
    # Ten requests, each exactly one entry.
    assert env.audit_count() == before + 10
    with env.sessions() as session:
        assert audit.verify(session) is None


@pytest.mark.parametrize(
    "url",
    [
        "/v1/admin/grants/9223372036854775808",
        "/v1/admin/grants/-251997929984167999038291968",
        "/v1/audit/proofs/inclusion/9223372036854775808",
        "/v1/audit/proofs/consistency?first=1&second=9223372036854775808",
        "/v1/audit/entries?after=9223372036854775808",
        "/v1/persons/lookup?purpose=minimum-living-allowance&offset=9223372036854775808",
    ],
)
def test_a_number_no_database_column_holds_is_refused_as_invalid(env: Env, url: str) -> None:
    # Found by the OpenAPI contract test: such an id reached SQLite, which overflowed (500).
    headers = {"X-API-Key": env.admin}
    if "/grants/" in url:
        answer = env.client.delete(url, headers=headers)
    elif url.startswith("/v1/persons/lookup"):
        answer = env.client.post(url, json={"resident_id": P1}, headers=headers)
    else:
        answer = env.client.get(url, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_an_unexpected_failure_is_audited_and_answered_500_without_a_trace(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = env.client.app.state.exchange  # type: ignore[attr-defined]

    def broken(session: Session, *stated: str | None) -> None:
        raise OperationalError("SELECT code FROM purposes", {}, Exception("disk I/O error"))

    monkeypatch.setattr(state.catalogue, "active_purpose", broken)
    before = env.audit_count()
    response = env.lookup(P1, purpose=MLA, case_ref="C-9")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "Traceback" not in response.text
    assert "disk I/O" not in response.text
    assert env.audit_count() == before + 1  # the request still leaves its one entry
    entry = env.last_entry()
    assert (entry.actor, entry.decision, entry.status, entry.fields, entry.case_ref) == (
        "alice",
        "deny",
        500,
        [],
        "C-9",
    )


def test_lookup_includes_the_entitys_records_not_keyed_by_the_identifier(env: Env) -> None:
    """A record linked to the person's entity by the model (its identifier mistyped) is
    part of the lookup; a withdrawn one, and other entities' records, are not."""
    mistyped = rid("33010619800507009")
    person = dict(ROWS[0].plain, resident_id=mistyped)
    insert_rows(
        env.sessions,
        [
            Row("person", "civil_affairs", "CA-7", person, entity_id=E1),
            Row("person", "civil_affairs", "CA-8", person, entity_id=E1),
        ],
    )
    with transaction(env.sessions) as session:
        session.execute(
            update(SourceRecord).where(SourceRecord.source_id == "CA-8").values(deleted=True)
        )
    body = env.lookup(P1, purpose=MLA).json()
    shown = sorted((r["dataset"], r["department"], r["source_id"]) for r in body["records"])
    assert shown == [
        ("benefit_payment", "civil_affairs", "BP-1"),
        ("person", "civil_affairs", "CA-7"),
        ("person", "household_registry", "HR-1"),
    ]
    assert body["total"] == 3
    # The mistyped identifier finds its own record and, through the entity, the rest.
    other = env.lookup(mistyped, purpose=MLA).json()
    assert other["total"] == 3
    assert other["entity_ids"] == [E1]


def test_a_lookup_is_answered_only_once_its_audit_entry_is_committed(env: Env) -> None:
    state = env.client.app.state.exchange  # type: ignore[attr-defined]
    before = env.audit_count()
    answers: list[Any] = []
    lookup = threading.Thread(
        target=lambda: answers.append(env.lookup(P1, purpose=MLA, case_ref="C-7"))
    )
    with state.audit_lock:  # the writer cannot append: the entry waits, and so must the answer
        lookup.start()
        deadline = time.monotonic() + 10
        while not state.audit_writer._queue and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(state.audit_writer._queue) == 1  # the work is done, its entry queued
        time.sleep(0.3)
        assert answers == []
        assert env.audit_count() == before
    lookup.join(10)
    assert [a.status_code for a in answers] == [200]
    assert env.audit_count() == before + 1
    assert env.last_entry().case_ref == "C-7"


def test_the_routes_work_runs_in_as_many_threads_as_configured(env: Env) -> None:
    portal = env.client.portal
    assert portal is not None

    def limit() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert portal.call(limit) == 2  # gateway.worker_threads' default, not AnyIO's 40


def test_the_heap_built_at_start_up_is_frozen_while_serving_and_let_go_after(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as client:
        # Start-up's objects are out of the collector's reach: full collections stay short.
        assert gc.get_freeze_count() > 10_000
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0  # a process that builds apps in turn lets each one go


def test_the_audit_writer_gathers_for_the_configured_delay(env: Env) -> None:
    assert env.client.app.state.exchange.audit_writer._delay == 0.01  # audit.commit_delay_ms


# ---- issue 17: purposes, case references, entity ids, personal data out of URLs -------------

FULL_WIDTH_DIGITS = {ord("0") + i: 0xFF10 + i for i in range(10)}
PADDED = [
    MLA + "  ",
    MLA + "\t",
    MLA + "\n",
    " " + MLA,
    MLA + "\u00a0",  # no-break space
    MLA + "\u3000",  # ideographic space
    "\u3000" + MLA,
    "minimum-living\u00a0allowance",
]


@pytest.mark.parametrize("padded", PADDED)
def test_a_padded_purpose_is_refused_and_audited_without_it(env: Env, padded: str) -> None:
    """Finding 3: a padded purpose was served with data, and the entry stored the padded
    string, so the auditor's search by purpose did not find the access."""
    asks = (
        lambda: env.lookup(P1, purpose=padded, case_ref="C-1"),
        lambda: env.search("王秀英", purpose=padded),
        lambda: env.get(f"/v1/entities/{E1}", purpose=padded),
        lambda: env.org_lookup(USCC, purpose=padded),
    )
    for ask in asks:
        before = env.audit_count()
        response = ask()
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == "validation_failed"
        assert "not exactly a code of the catalogue" in body["detail"]
        assert "王秀英" not in response.text
        assert env.audit_count() == before + 1
        entry = env.last_entry()
        assert (entry.decision, entry.status, entry.fields, entry.purpose) == (
            "deny",
            400,
            [],
            None,  # never the padded string: an entry names a catalogue code or none
        )
        assert "not exactly a code" in entry.reason
    # What was served, was served for a purpose exactly as catalogued: the auditor's search
    # by the code finds every allowed access.
    assert env.lookup(P1, purpose=MLA).status_code == 200
    with env.sessions() as session:
        entries = list(session.scalars(select(AuditEntry)))
        found = audit_search.search(session, audit_search.Filters(purpose=MLA), limit=1000)
    allowed = [e.seq for e in entries if e.decision == "allow"]
    assert allowed
    assert [e.seq for e in found if e.decision == "allow"] == allowed
    assert {e.purpose for e in entries} <= {MLA, None}


def test_a_purpose_code_with_padding_cannot_be_added(env: Env) -> None:
    for code in (MLA + "\n", "child-benefit\n", " child-benefit", "110105194912310017"):
        answer = env.client.post(
            "/v1/admin/purposes",
            json={"code": code, "title": "x"},
            headers={"X-API-Key": env.admin},
        )
        assert answer.status_code == 400, (code, answer.text)


@pytest.mark.parametrize(
    "case_ref",
    [
        P1,
        "C-" + P1,
        f"{P1[:6]} {P1[6:14]} {P1[14:]}",
        P1[:15],  # the old 15-digit number
        "13800001234",
        "+86 138 0000 1234",
        "call 138-0000-1234",
        "0571-87654321",
        "13800001234".translate(FULL_WIDTH_DIGITS),
        "C-1\t",
        " C-1",
    ],
)
def test_a_case_ref_holding_an_identity_or_phone_number_is_refused(env: Env, case_ref: str) -> None:
    """Finding 10: anything typed in case_ref was stored in the audit entry in plain text."""
    before = env.audit_count()
    response = env.lookup(P1, purpose=MLA, case_ref=case_ref)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_failed"
    assert case_ref.strip() not in response.text
    assert env.audit_count() == before + 1
    entry = env.last_entry()
    assert (entry.decision, entry.status, entry.case_ref, entry.purpose) == (
        "deny",
        400,
        None,
        MLA,
    )
    assert case_ref.strip() not in (entry.reason or "")


def test_ordinary_case_references_are_accepted(env: Env) -> None:
    for case_ref in ("C-1", "MLA-2026-00001", "DEMO-2026-0001", "2026/杭民救/0417"):
        response = env.lookup(P1, purpose=MLA, case_ref=case_ref)
        assert response.status_code == 200, (case_ref, response.text)
        assert env.last_entry().case_ref == case_ref


def test_a_purpose_says_whether_a_case_reference_is_required_and_its_pattern(
    env: Env,
) -> None:
    admin = {"X-API-Key": env.admin}
    bad = env.client.put(
        f"/v1/admin/purposes/{MLA}/case-ref",
        json={"case_ref_required": True, "case_ref_pattern": "MLA-[0-9"},
        headers=admin,
    )
    assert bad.status_code == 400
    assert "case_ref_pattern" in bad.json()["detail"]
    rule = env.client.put(
        f"/v1/admin/purposes/{MLA}/case-ref",
        json={"case_ref_required": True, "case_ref_pattern": r"MLA-[0-9]{4}-[0-9]{5}"},
        headers=admin,
    )
    assert rule.status_code == 200, rule.text
    assert (rule.json()["case_ref_required"], rule.json()["case_ref_pattern"]) == (
        True,
        r"MLA-[0-9]{4}-[0-9]{5}",
    )
    assert env.last_entry().action == "catalogue.purpose.case_ref"
    listed = env.client.get("/v1/admin/purposes", headers=admin).json()
    assert next(p for p in listed if p["code"] == MLA)["case_ref_required"] is True

    missing = env.lookup(P1, purpose=MLA)
    assert missing.status_code == 400
    assert "requires a case reference" in missing.json()["detail"]
    assert env.last_entry().status == 400
    wrong = env.lookup(P1, purpose=MLA, case_ref="C-1")
    assert wrong.status_code == 400
    assert "does not match the pattern" in wrong.json()["detail"]
    entry = env.last_entry()
    assert (entry.decision, entry.status, entry.case_ref) == ("deny", 400, "C-1")
    assert env.search("王秀英", purpose=MLA).status_code == 400
    ok = env.lookup(P1, purpose=MLA, case_ref="MLA-2026-00017")
    assert ok.status_code == 200, ok.text
    assert env.last_entry().case_ref == "MLA-2026-00017"
    # Other purposes keep their own rule (none here).
    assert env.lookup(P1, key=env.other, purpose="tax-audit").status_code == 403


@pytest.mark.parametrize("typed", [P1, "E1", "p" + "0" * 18 + "e1", E1 + "0", "../x"])
def test_a_malformed_entity_id_is_refused_and_never_stored(env: Env, typed: str) -> None:
    """Finding 10: /v1/entities/{id} stored any 1-32 characters as the audit subject."""
    before = env.audit_count()
    response = env.get(f"/v1/entities/{typed}", purpose=MLA)
    assert response.status_code in (400, 404), response.text
    if response.status_code == 404:  # "../x" never reaches the route
        assert env.audit_count() == before
        return
    assert "entity_id" in response.json()["detail"]
    assert env.audit_count() == before + 1
    entry = env.last_entry()
    assert (entry.decision, entry.status, entry.subjects) == ("deny", 400, [])
    assert typed not in json.dumps([entry.reason, entry.case_ref, entry.purpose])


def test_lookups_and_searches_carry_no_personal_data_in_the_url(env: Env) -> None:
    """Finding 9: identifiers, names and birth dates travelled in paths and query strings."""
    asks = [
        env.lookup(P1, purpose=MLA, case_ref="C-1"),
        env.org_lookup(USCC, purpose=MLA),
        env.search("王秀英", birth_date="1980-05-07", purpose=MLA),
        env.client.post(
            "/v1/search/organisations",
            json={"name": "杭州秀英商贸"},
            params={"purpose": MLA},
            headers={"X-API-Key": env.caseworker},
        ),
    ]
    for response in asks:
        assert response.status_code in (200, 403, 404), response.text
        url = str(response.request.url)
        for secret in (P1, USCC, "王秀英", "1980-05-07", "杭州秀英商贸", "%E7%8E%8B"):
            assert secret not in url, url
    assert asks[0].status_code == 200
    assert asks[2].json()["total"] == 1
    # The documented operations take none of them in a path or query parameter.
    doc = env.client.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        if not path.startswith(("/v1/persons", "/v1/organisations", "/v1/search")):
            continue
        for method, operation in item.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            assert not names & {"resident_id", "credit_code", "name", "birth_date"}, (
                method,
                path,
            )
    assert "/v1/persons/{resident_id}" not in doc["paths"]


def test_a_bad_birth_date_is_not_repeated_in_the_answer_or_the_log(env: Env) -> None:
    response = env.search("王秀英", birth_date="1980-13-45", purpose=MLA)
    assert response.status_code == 400
    assert "1980-13-45" not in response.text
    assert "1980-13-45" not in (env.last_entry().reason or "")


def test_the_access_log_never_holds_an_identifier(tmp_path: Path) -> None:
    """Finding 9, as a server writes it: uvicorn's access log, with the GET form (served in
    development) and the POST form, keeps neither the identifier nor the query string."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, ROWS)
    add_purpose(sessions, MLA)
    engine.dispose()
    settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="info", access_log=True
    )
    server = uvicorn.Server(config)
    collect = Collect()
    access = logging.getLogger("uvicorn.access")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        access.addHandler(collect)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            client.post("/v1/persons/lookup", json={"resident_id": P1}, params={"purpose": MLA})
            client.get(f"/v1/persons/{P1}", params={"purpose": MLA, "case_ref": "C-1"})
            client.get("/v1/persons", params={"name": "王秀英", "birth_date": "1980-05-07"})
            client.get(f"/v1/organisations/{USCC}")
    finally:
        access.removeHandler(collect)
        server.should_exit = True
        thread.join(timeout=15)
    assert len(lines) == 4, lines
    text = "\n".join(lines)
    for secret in (P1, USCC, "1980-05-07", "%E7%8E%8B", "C-1"):
        assert secret not in text, text
    assert '"POST /v1/persons/lookup?{redacted} HTTP/1.1" 401' in text
    assert '"GET /v1/persons/{redacted}?{redacted} HTTP/1.1" 401' in text


def test_the_get_forms_are_refused_in_production(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, ROWS)
    add_purpose(sessions, MLA)
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="person",
        fields={"full_name": "full", "birth_date": "full"},
        purposes=[MLA],
    )
    with transaction(sessions) as session:
        key = create_key(
            session,
            actor="alice",
            department="civil_affairs",
            role="caseworker",
            origin="production",  # production refuses keys made in development
        )
    settings = Settings(
        env="production",
        database_url=url,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
    )
    headers = {"X-API-Key": key}
    try:
        with TestClient(create_app(settings)) as client:
            with sessions() as session:
                before = session.scalar(select(func.count()).select_from(AuditEntry))
            for path, params in (
                (f"/v1/persons/{P1}", {"purpose": MLA}),
                (f"/v1/organisations/{USCC}", {"purpose": MLA}),
                ("/v1/persons", {"name": "王秀英", "purpose": MLA}),
                ("/v1/organisations", {"name": "杭州", "purpose": MLA}),
                (f"/v1/audit/subjects/person/{P1}", {}),
            ):
                refused = client.get(path, params=params, headers=headers)
                assert refused.status_code == 404, refused.text
                assert "POST /v1/" in refused.json()["detail"]
                for secret in (P1, USCC, "王秀英", "1980-05-07"):
                    assert secret not in refused.text
            with sessions() as session:  # nothing was looked up, nothing disclosed
                after = session.scalar(select(func.count()).select_from(AuditEntry))
            assert after == before
            served = client.post(
                "/v1/persons/lookup",
                json={"resident_id": P1},
                params={"purpose": MLA},
                headers=headers,
            )
            assert served.status_code == 200, served.text
            assert served.json()["records"][0]["fields"]["full_name"] == "王秀英"
    finally:
        engine.dispose()


def test_a_grant_that_breaks_the_disclosure_rule_is_refused_422(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped standards mask every identifier as a token, so no shipped grant breaks the
    # rule; a person standard that masked the identifier as its first 6 characters (the
    # division) would, beside a birth date shown in full.
    schema = json.loads(json.dumps(load_standard("person").schema))
    for f in schema["fields"]:
        if f["name"] == "resident_id":
            f["mask"] = "keep_first:6"
    person = standard_from_schema(schema)
    monkeypatch.setattr(
        disclosure,
        "load_standard",
        lambda name: person if name == "person" else load_standard(name),
    )
    before = env.audit_count()
    refused = env.client.post(
        "/v1/admin/grants",
        json={
            "department": "health",
            "role": "caseworker",
            "dataset": "person",
            "fields": {"resident_id": "masked", "birth_date": "full"},
            "purposes": [MLA],
        },
        headers={"X-API-Key": env.admin},
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "disclosure_rule"
    assert "fields.resident_id" in problem["detail"]
    assert "person.birth_date" in problem["detail"]
    assert "fewer than 1,000,000" in problem["detail"]
    assert env.audit_count() == before + 1
    assert env.last_entry().decision == "deny"
