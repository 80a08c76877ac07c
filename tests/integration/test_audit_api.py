"""The auditor API against a running gateway (SQLite): who looked at a person, search,
export, signed heads and proofs checked with exchange.security.merkle, anomalies; only auditors
get in, every call is audited, and a failed audit write discloses nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from exchange.security import crypto, merkle
from exchange.security.blindindex import blind_index
from tests.support.catalogue import add_grant, add_purpose
from tests.support.gateway import running_gateway
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration

PERSON = "11010519491231002X"
OTHER = "110105194912310037"
PROBLEM = "application/problem+json"


@dataclass
class Gateway:
    url: str
    sessions: sessionmaker[Session]
    auditor: str
    caseworker: str

    def get(self, path: str, key: str | None, **params: Any) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return httpx.get(f"{self.url}{path}", headers=headers, params=params, timeout=60)

    def post(self, path: str, key: str | None) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return httpx.post(f"{self.url}{path}", headers=headers, timeout=60)

    def lookup(self, resident_id: str, **params: Any) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/persons/lookup",
            json={"resident_id": resident_id},
            headers={"X-API-Key": self.caseworker},
            params=params,
            timeout=60,
        )

    def person_accesses(self, resident_id: str) -> httpx.Response:
        """POST /v1/audit/subjects/person: the identifier in the body."""
        return httpx.post(
            f"{self.url}/v1/audit/subjects/person",
            json={"resident_id": resident_id},
            headers={"X-API-Key": self.auditor},
            timeout=60,
        )

    def entries(self) -> list[AuditEntry]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    url = f"sqlite:///{tmp_path}/registry.db"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        auditor = create_key(s, actor="wang.audit", department="audit_office", role="auditor")
        caseworker = create_key(s, actor="li.na", department="civil_affairs", role="caseworker")
    # Deny by default: the caseworker's lookups need purposes and a grant to be looked at at all.
    for code in ("minimum_living_allowance", "child_benefit", "case-review"):
        add_purpose(sessions, code)
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="person",
        fields={"family_name": "full"},
        purposes=["minimum_living_allowance", "child_benefit", "case-review"],
    )
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
        audit={"head_interval_s": 0, "head_every_entries": 0, "mirror": False},
    )
    try:
        with running_gateway(settings) as base:
            yield Gateway(base, sessions, auditor, caseworker)
    finally:
        engine.dispose()


def _subject(resident_id: str) -> str:
    return blind_index(LINKAGE_KEY.encode(), "cn.resident_id", resident_id)


def test_who_looked_at_this_person_when_and_why(gateway: Gateway) -> None:
    gateway.lookup(PERSON, purpose="minimum_living_allowance", case_ref="MLA-2026-0042")
    gateway.lookup(OTHER, purpose="minimum_living_allowance", case_ref="MLA-2026-0043")
    gateway.lookup(PERSON, purpose="child_benefit")  # no case reference

    first = gateway.person_accesses(PERSON)
    second = gateway.person_accesses(PERSON)

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["subject"] == _subject(PERSON)
    assert [(e["actor"], e["action"], e["purpose"], e["case_ref"]) for e in body["entries"]] == [
        ("li.na", "person.lookup", "minimum_living_allowance", "MLA-2026-0042"),
        ("li.na", "person.lookup", "child_benefit", None),
    ]
    # The auditor's own look is audited, with the status it was answered, before the answer
    # is sent (so after the answer was made): the next look finds it.
    later = second.json()["entries"]
    assert [(e["actor"], e["action"], e["status"]) for e in later[2:]] == [
        ("wang.audit", "audit.person", 200),
    ]
    # No entry holds the identifier in the clear.
    assert all(PERSON not in json.dumps(e) for e in later)


def test_a_caseworker_is_refused_and_the_refusal_is_audited(gateway: Gateway) -> None:
    before = len(gateway.entries())

    response = gateway.get("/v1/audit/entries", gateway.caseworker)
    anonymous = gateway.get("/v1/audit/entries", None)

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "forbidden"
    assert anonymous.status_code == 401
    new = gateway.entries()[before:]
    assert [(e.action, e.actor, e.decision, e.status) for e in new] == [
        ("audit.search", "li.na", "deny", 403),
        ("audit.search", None, "deny", 401),
    ]


def test_search_filters_and_pages(gateway: Gateway) -> None:
    for n in range(3):
        gateway.lookup(PERSON, purpose="minimum_living_allowance", case_ref=f"C{n}")
    gateway.lookup(PERSON)  # denied: no purpose

    denied = gateway.get("/v1/audit/entries", gateway.auditor, decision="deny", actor="li.na")
    page = gateway.get(
        "/v1/audit/entries", gateway.auditor, purpose="minimum_living_allowance", limit=2
    )
    rest = gateway.get(
        "/v1/audit/entries",
        gateway.auditor,
        purpose="minimum_living_allowance",
        limit=2,
        after=page.json()["next_after"],
    )
    bad = gateway.get("/v1/audit/entries", gateway.auditor, decision="maybe")

    assert [(e["status"], e["reason"]) for e in denied.json()["entries"]] == [
        (400, "purpose: state the purpose (legal basis) of the request")
    ]
    assert [e["case_ref"] for e in page.json()["entries"] + rest.json()["entries"]] == [
        "C0",
        "C1",
        "C2",
    ]
    assert rest.json()["next_after"] is None
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM


def test_exports_stream_csv_and_json_lines(gateway: Gateway) -> None:
    gateway.lookup(PERSON, purpose="minimum_living_allowance", case_ref="C1")
    gateway.lookup(OTHER, purpose="minimum_living_allowance", case_ref="C2")

    jsonl = gateway.get("/v1/audit/export", gateway.auditor, format="jsonl", actor="li.na")
    as_csv = gateway.get("/v1/audit/export", gateway.auditor, format="csv", subject=_subject(OTHER))

    assert jsonl.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line)["case_ref"] for line in jsonl.text.splitlines()] == ["C1", "C2"]
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    # The export's own entry (audited first, naming the subject searched for) is in it too.
    assert [(r["action"], r["case_ref"], r["subjects"]) for r in rows] == [
        ("person.lookup", "C2", _subject(OTHER)),
        ("audit.export", "", _subject(OTHER)),
    ]


def test_signed_heads_and_proofs_check_out_with_the_exported_key(gateway: Gateway) -> None:
    assert gateway.get("/v1/audit/heads/latest", gateway.auditor).status_code == 404
    for n in range(4):
        gateway.lookup(PERSON, purpose="case-review", case_ref=f"C{n}")
    first = gateway.post("/v1/audit/heads", gateway.auditor).json()
    for n in range(3):
        gateway.lookup(OTHER, purpose="case-review", case_ref=f"D{n}")
    second = gateway.post("/v1/audit/heads", gateway.auditor).json()
    latest = gateway.get("/v1/audit/heads/latest", gateway.auditor).json()
    keys = gateway.get("/v1/audit/public-keys", gateway.auditor).json()

    assert latest == second
    assert second["tree_size"] > first["tree_size"]
    (key,) = keys
    public = crypto.public_key_from_pem(key["pem"])
    for head in (first, second):
        message = (
            b"exchange.audit.tree-head.v1\x00"
            + head["tree_size"].to_bytes(8, "big")
            + head["timestamp_ms"].to_bytes(8, "big")
            + bytes.fromhex(head["root"])
        )
        crypto.verify(public, message, bytes.fromhex(head["signature"]))
    for index in range(second["tree_size"]):
        proof = gateway.get(
            f"/v1/audit/proofs/inclusion/{index}", gateway.auditor, tree_size=second["tree_size"]
        ).json()
        leaf = hashlib.sha256(b"\x00" + proof["entry"].encode()).digest()
        assert json.loads(proof["entry"])["seq"] == index + 1
        merkle.verify_inclusion(
            leaf,
            index,
            second["tree_size"],
            [bytes.fromhex(p) for p in proof["path"]],
            bytes.fromhex(second["root"]),
        )
    consistency = gateway.get(
        "/v1/audit/proofs/consistency",
        gateway.auditor,
        first=first["tree_size"],
        second=second["tree_size"],
    ).json()
    merkle.verify_consistency(
        first["tree_size"],
        second["tree_size"],
        bytes.fromhex(first["root"]),
        bytes.fromhex(second["root"]),
        [bytes.fromhex(p) for p in consistency["path"]],
    )
    missing = gateway.get("/v1/audit/proofs/inclusion/0", gateway.auditor, tree_size=2)
    assert missing.status_code == 404
    assert missing.json()["code"] == "tree_head_not_found"


def test_anomalies_flag_lookups_without_a_case_reference(gateway: Gateway) -> None:
    gateway.lookup(PERSON, purpose="minimum_living_allowance")
    gateway.lookup(OTHER, purpose="minimum_living_allowance")

    response = gateway.get("/v1/audit/anomalies", gateway.auditor)

    assert response.status_code == 200
    flags = [(a["kind"], a["actor"], a["count"]) for a in response.json()]
    # A lookup of a person nobody published is answered 404 but is still an access.
    assert ("no_case_ref", "li.na", 2) in flags


def test_when_the_audit_log_cannot_be_written_nothing_is_disclosed(gateway: Gateway) -> None:
    gateway.lookup(PERSON, purpose="case-review", case_ref="C1")
    before = len(gateway.entries())
    with transaction(gateway.sessions) as s:
        s.execute(text("DELETE FROM audit_tip"))  # every append now fails

    lookup = gateway.lookup(PERSON, purpose="case-review", case_ref="C2")
    search = gateway.person_accesses(PERSON)

    for response in (lookup, search):
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "audit_write_failed"
        assert "records" not in response.json()
        assert "entries" not in response.json()
    assert len(gateway.entries()) == before


def test_the_openapi_document_describes_the_auditor_api(gateway: Gateway) -> None:
    spec = httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()

    paths = spec["paths"]
    assert {
        "/v1/audit/entries",
        "/v1/audit/subjects/person",
        "/v1/audit/export",
        "/v1/audit/heads/latest",
        "/v1/audit/heads",
        "/v1/audit/proofs/inclusion/{index}",
        "/v1/audit/proofs/consistency",
        "/v1/audit/anomalies",
    } <= set(paths)
    ok = paths["/v1/audit/entries"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/EntryPage")
    assert "403" in paths["/v1/audit/proofs/consistency"]["get"]["responses"]
