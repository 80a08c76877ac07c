"""Catalogue-driven sharing through the real gateway, on SQLite and PostgreSQL.

A consuming department (civil affairs) asks the owner of the ``person`` dataset
(household registry) for fields; the owner's data steward approves, narrows or
refuses; the approval's grant serves a caseworker's lookup until it ends (the clock
is moved past it with time-machine, nothing is edited); every step is on the audit
log, in order, with its status and decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.core.config import Settings
from exchange.core.db import transaction
from exchange.core.models import AuditEntry, Grant, SharingRequest
from exchange.identity import identities
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.catalogue import Row, add_purpose, insert_rows
from tests.support.database import migrated
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration

MLA = "minimum-living-allowance"
OWNER, CONSUMER, OTHER, CENTRAL = "household_registry", "civil_affairs", "health", "exchange_office"
USERS = {
    "central": (CENTRAL, "admin"),
    "hr.admin": (OWNER, "department_admin"),
    "hr.steward": (OWNER, "data_steward"),
    "ca.admin": (CONSUMER, "department_admin"),
    "ca.steward": (CONSUMER, "data_steward"),
    "ca.worker": (CONSUMER, "caseworker"),
    "he.admin": (OTHER, "department_admin"),
    "he.steward": (OTHER, "data_steward"),
}


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


P1 = rid("33010619800507001")  # lives in Hangzhou (3301..)
P2 = rid("11010519900709002")  # lives in Beijing
PEOPLE = [
    Row(
        "person",
        OWNER,
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
        entity_id="P" + "0" * 18 + "e1",
    ),
    Row(
        "person",
        OWNER,
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
        entity_id="P" + "0" * 18 + "e2",
    ),
]
ASKED = {"resident_id": "full", "full_name": "full", "phone": "full", "birth_date": "full"}
REQUEST = {
    "dataset": "person",
    "fields": ASKED,
    "purposes": [MLA],
    "legal_basis": "Measures for minimum living allowance, art. 12",
    "justification": "verify applicants' identity and household during the review",
    "duration_days": 90,
}


@dataclass
class Exchange:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers={"X-API-Key": self.keys[user]}, **kwargs)

    def lookup(self, user: str, resident_id: str) -> Any:
        return self.call(
            user, "POST", "/v1/persons/lookup", json={"resident_id": resident_id},
            params={"purpose": MLA},
        )  # fmt: skip

    def entries(self) -> list[AuditEntry]:
        with self.sessions() as session:
            found = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
            assert audit.verify(session) is None
            session.expunge_all()
            return found


@pytest.fixture
def exchange(database_url: str) -> Iterator[Exchange]:
    with migrated(database_url) as sessions:
        with transaction(sessions) as session:
            for code in (OWNER, CONSUMER, OTHER, CENTRAL):
                identities.create_department(session, code, code.replace("_", " "))
            keys = {}
            for username, (department, role) in USERS.items():
                identities.create_user(session, username=username, department=department, role=role)
                keys[username] = identities.create_key(session, username).key
        add_purpose(sessions, MLA)
        insert_rows(sessions, PEOPLE)
        settings = Settings(
            database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
        )
        with TestClient(create_app(settings)) as client:
            ex = Exchange(client, sessions, keys)
            publish = ex.call(
                "central", "PUT", "/v1/catalogue/resources/person",
                json={"owner": OWNER, "title": "Residents", "frequency": "daily",
                      "sharing": "conditional"},
            )  # fmt: skip
            assert publish.status_code == 200, publish.text
            yield ex


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_request_approved_serves_lookups_until_the_grant_ends(exchange: Exchange) -> None:
    ex = exchange
    # The owner's department administrator describes its dataset; the consumer's cannot.
    edited = ex.call(
        "hr.admin", "PUT", "/v1/catalogue/resources/person",
        json={"description": "Registered residents", "field_notes": {"phone": "as declared"}},
    )  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert {f["name"]: f["note"] for f in edited.json()["fields"]}["phone"] == "as declared"
    assert (
        ex.call("ca.admin", "PUT", "/v1/catalogue/resources/person", json={"title": "x"})
    ).status_code == 403
    listed = ex.call("ca.worker", "GET", "/v1/catalogue/resources")
    assert [(r["dataset"], r["owner_department"], r["sharing_type"]) for r in listed.json()] == [
        ("person", OWNER, "conditional")
    ]
    assert ex.lookup("ca.worker", P1).status_code == 403  # no grant yet

    submitted = ex.call("ca.admin", "POST", "/v1/sharing/requests", json=REQUEST)
    assert submitted.status_code == 201, submitted.text
    number = submitted.json()["id"]
    assert submitted.json()["status"] == "submitted"
    base = f"/v1/sharing/requests/{number}"
    # Only the owner's steward decides: not another department's (to whom the request
    # does not exist), not the requester.
    assert ex.call("he.steward", "POST", f"{base}/approve").status_code == 404
    assert ex.call("ca.admin", "POST", f"{base}/approve").status_code == 403
    assert ex.call("ca.steward", "POST", f"{base}/approve").status_code == 403
    assert ex.call("he.admin", "GET", base).status_code == 404  # not its business
    assert ex.call("hr.steward", "GET", base).json()["status"] == "submitted"

    approved = ex.call("hr.steward", "POST", f"{base}/approve")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["decided_by"]) == ("approved", "hr.steward")
    assert [e["action"] for e in body["history"]] == ["submit", "approve"]
    with ex.sessions() as session:
        grant = session.get(Grant, body["grant_id"])
        assert grant is not None
        assert (grant.origin, grant.sharing_request_id) == ("request", number)
        assert (grant.grantee_department, grant.grantee_role) == (CONSUMER, "caseworker")
        assert grant.fields == ASKED
        assert grant.valid_until is not None
        assert grant.valid_until - grant.valid_from == timedelta(days=90)
        ends = grant.valid_until

    seen = ex.lookup("ca.worker", P1)
    assert seen.status_code == 200, seen.text
    [record] = seen.json()["records"]
    assert record["fields"]["full_name"] == "王秀英"
    assert record["fields"]["resident_id"] == P1
    # Neither new role reads records, whatever grants exist.
    assert ex.lookup("ca.admin", P1).status_code == 403
    assert ex.lookup("hr.steward", P1).status_code == 403
    # Both sides see the grant coming to its end, a month before.
    with time_machine.travel(ends - timedelta(days=10), tick=True):
        for user in ("ca.admin", "hr.steward"):
            soon = ex.call(user, "GET", "/v1/sharing/grants/expiring", params={"within_days": 30})
            assert [g["grant_id"] for g in soon.json()] == [body["grant_id"]], user
        assert ex.call("he.admin", "GET", "/v1/sharing/grants/expiring").json() == []
    with time_machine.travel(ends + timedelta(minutes=1), tick=True):
        expired = ex.lookup("ca.worker", P1)
    assert expired.status_code == 403
    assert "王秀英" not in expired.text

    entries = ex.entries()
    assert [(e.action, e.actor, e.decision, e.status) for e in entries] == [
        ("catalogue.resource.set", "central", "allow", 200),
        ("catalogue.resource.set", "hr.admin", "allow", 200),
        ("catalogue.resource.set", "ca.admin", "deny", 403),
        ("catalogue.resource.list", "ca.worker", "allow", 200),
        ("person.lookup", "ca.worker", "deny", 403),
        ("sharing.request.submit", "ca.admin", "allow", 201),
        # Answered as if the request did not exist; audited as the denial it is.
        ("sharing.request.approve", "he.steward", "deny", 404),
        ("sharing.request.approve", "ca.admin", "deny", 403),
        ("sharing.request.approve", "ca.steward", "deny", 403),
        ("sharing.request.show", "he.admin", "allow", 404),
        ("sharing.request.show", "hr.steward", "allow", 200),
        ("sharing.request.approve", "hr.steward", "allow", 200),
        ("person.lookup", "ca.worker", "allow", 200),
        ("person.lookup", "ca.admin", "deny", 403),
        ("person.lookup", "hr.steward", "deny", 403),
        ("sharing.grants.expiring", "ca.admin", "allow", 200),
        ("sharing.grants.expiring", "hr.steward", "allow", 200),
        ("sharing.grants.expiring", "he.admin", "allow", 200),
        ("person.lookup", "ca.worker", "deny", 403),
    ]
    steps = [e for e in entries if e.action.startswith("sharing.request.") and e.status < 300]
    assert [e.dataset for e in steps if e.action != "sharing.request.show"] == ["person"] * 2
    submit, approve = (e for e in steps if e.action != "sharing.request.show")
    assert f"sharing request {number}:" in submit.reason
    assert "submitted" in submit.reason
    assert f"sharing request {number}:" in approve.reason
    assert f"approved by hr.steward; grant {body['grant_id']}" in approve.reason
    for refused in entries[6:9]:
        assert refused.dataset == "person"
        assert f"request {number}" in refused.reason or "may not decide" in refused.reason
    assert entries[-1].at > ends  # the refusal came after the grant's end
    for entry in entries:
        dumped = json.dumps([entry.subjects, entry.reason, entry.fields], ensure_ascii=False)
        assert P1 not in dumped
        assert "王秀英" not in dumped


def test_refused_and_narrowed_requests(exchange: Exchange) -> None:
    ex = exchange
    first = ex.call("ca.admin", "POST", "/v1/sharing/requests", json=REQUEST).json()["id"]
    refused = ex.call(
        "hr.steward", "POST", f"/v1/sharing/requests/{first}/refuse",
        json={"reason": "the review needs no birth dates or phone numbers in full"},
    )  # fmt: skip
    assert refused.status_code == 200, refused.text
    # The requester sees the refusal and its reason; no grant was made.
    seen = ex.call("ca.admin", "GET", f"/v1/sharing/requests/{first}").json()
    assert (seen["status"], seen["grant_id"]) == ("refused", None)
    assert seen["decision_reason"] == "the review needs no birth dates or phone numbers in full"
    assert [e["action"] for e in seen["history"]] == ["submit", "refuse"]
    with ex.sessions() as session:
        assert session.scalars(select(Grant)).all() == []
    assert ex.lookup("ca.worker", P1).status_code == 403

    second = ex.call("ca.admin", "POST", "/v1/sharing/requests", json=REQUEST).json()["id"]
    narrowing: dict[str, Any] = {
        "fields": {"resident_id": "full", "full_name": "full", "phone": "masked"},
        "row_constraints": {"division_prefix": "3301"},
        "days": 30,
        "reason": "birth dates are not needed; Hangzhou residents only",
    }
    wider = ex.call(
        "hr.steward", "POST", f"/v1/sharing/requests/{second}/narrow",
        json={**narrowing, "fields": {**narrowing["fields"], "sex": "full"}},
    )  # fmt: skip
    assert wider.status_code == 400
    assert "field 'sex' was not asked for" in wider.text
    narrowed = ex.call(
        "hr.steward", "POST", f"/v1/sharing/requests/{second}/narrow", json=narrowing
    )
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["status"] == "narrowed"
    assert body["granted_fields"] == narrowing["fields"]
    assert body["granted_row_constraints"] == {"division_prefix": "3301"}
    assert body["granted_days"] == 30
    with ex.sessions() as session:
        [grant] = session.scalars(select(Grant)).all()
        assert grant.fields == narrowing["fields"]
        assert grant.row_constraints == {"division_prefix": "3301"}
        assert grant.valid_until is not None
        assert grant.valid_until - grant.valid_from == timedelta(days=30)
        assert (grant.origin, grant.sharing_request_id) == ("request", second)
        stored = session.get(SharingRequest, second)
        assert stored is not None
        assert stored.fields == ASKED  # what was asked stays on record

    shown = ex.lookup("ca.worker", P1)
    assert shown.status_code == 200, shown.text
    [record] = shown.json()["records"]
    assert record["fields"] == {
        "resident_id": P1,
        "full_name": "王秀英",
        "phone": "*******1234",  # narrowed to masked
    }  # birth_date: removed
    assert record["masked_fields"] == ["phone"]
    assert ex.lookup("ca.worker", P2).status_code == 404  # outside the narrowed rows

    entries = ex.entries()
    assert [(e.action, e.actor, e.decision, e.status) for e in entries] == [
        ("catalogue.resource.set", "central", "allow", 200),
        ("sharing.request.submit", "ca.admin", "allow", 201),
        ("sharing.request.refuse", "hr.steward", "allow", 200),
        ("sharing.request.show", "ca.admin", "allow", 200),
        ("person.lookup", "ca.worker", "deny", 403),
        ("sharing.request.submit", "ca.admin", "allow", 201),
        ("sharing.request.narrow", "hr.steward", "deny", 400),
        ("sharing.request.narrow", "hr.steward", "allow", 200),
        ("person.lookup", "ca.worker", "allow", 200),
        ("person.lookup", "ca.worker", "allow", 404),
    ]
    assert entries[2].reason.startswith(f"sharing request {first}:")
    assert "refused by hr.steward" in entries[2].reason
    assert "field 'sex' was not asked for" in entries[6].reason
    assert entries[7].reason.startswith(f"sharing request {second}:")
    assert "[full_name,phone:masked,resident_id]" in entries[7].reason
    assert "30 days where division_prefix=3301; narrowed by hr.steward" in entries[7].reason
    assert all(e.dataset == "person" for e in entries[1:3] + entries[5:8])


def test_direct_grants_remain_audited_as_bootstrapping(exchange: Exchange) -> None:
    ex = exchange
    made = ex.call(
        "central", "POST", "/v1/admin/grants",
        json={"department": CONSUMER, "role": "caseworker", "dataset": "person",
              "fields": {"full_name": "full"}, "purposes": [MLA]},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert (made.json()["origin"], made.json()["sharing_request_id"]) == ("direct", None)
    assert ex.lookup("ca.worker", P1).json()["records"][0]["fields"] == {"full_name": "王秀英"}
    # Only the central administrator makes them: not a department's administrator or steward.
    for user in ("hr.admin", "hr.steward"):
        refused = ex.call(
            user, "POST", "/v1/admin/grants",
            json={"department": CONSUMER, "role": "caseworker", "dataset": "person",
                  "fields": {"phone": "full"}, "purposes": [MLA]},
        )  # fmt: skip
        assert refused.status_code == 403
    entries = ex.entries()
    assert [(e.action, e.actor, e.status) for e in entries[1:]] == [
        ("catalogue.grant.add", "central", 201),
        ("person.lookup", "ca.worker", 200),
        ("catalogue.grant.add", "hr.admin", 403),
        ("catalogue.grant.add", "hr.steward", 403),
    ]
    assert entries[1].reason.startswith(f"direct (bootstrapping) grant {made.json()['id']}: ")
