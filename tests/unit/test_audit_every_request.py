"""Every request leaves exactly one audit entry, whose status is the one answered, with the
key id presented (issue 17, finding 6 and finding 10's first point); every entry names
the blind-index subject of each person whose record it disclosed (finding 7).

The gateway runs in a TestClient on SQLite (the command line's database, so that
``exchange audit search --person`` reads the same log). The contract test walks
every operation of the OpenAPI document, with each role's key, no key and a revoked
key, and checks the one entry each request left by its request id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from exchange.cli.audit import app as audit_cli
from exchange.core.config import load_settings
from exchange.core.db import transaction, utcnow
from exchange.core.models import ApiKey, AuditEntry, SourceRecord
from exchange.identity import apikeys
from exchange.identity.apikeys import create_key
from exchange.security import merkle
from exchange.security.blindindex import blind_index
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.catalogue import Row, add_grant, add_purpose, insert_rows
from tests.support.cli import WIDE, cli_database, isolate
from tests.support.examples import household_definition
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

MLA = "minimum-living-allowance"
ROLES = ("caseworker", "publisher", "auditor", "admin", "department_admin", "data_steward")
# No credentials, nothing disclosed (gateway.audited.UNAUDITED).
UNAUDITED = {"/healthz", "/readyz"}
runner = CliRunner()


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


A = rid("33010619800507001")
B = rid("33010619820304002")


def _person(resident_id: str, family: str, given: str, born: str) -> dict[str, Any]:
    return {
        "resident_id": resident_id,
        "family_name": family,
        "given_name": given,
        "full_name": family + given,
        "birth_date": born,
        "sex": "FEMALE",
        "nationality": "CN",
        "residence_division_code": "330106",
    }


E1, E2 = "P" + "1" * 20, "P" + "2" * 20  # entity ids in the registry's form
# B's record is linked into A's entity (E1): by a reviewer's decision or any other link,
# what matters is that a lookup by A's ID answers with B's record too.
ROWS = [
    Row("person", "household_registry", "HR-A", _person(A, "王", "秀英", "1980-05-07"), E1),
    Row("person", "civil_affairs", "CA-B", _person(B, "王", "秀", "1982-03-04"), E1),
]


@dataclass
class Env:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]
    connector: str

    def entries_of(self, response: httpx.Response) -> list[AuditEntry]:
        request_id = response.headers["x-request-id"]
        with self.sessions() as session:
            found = list(
                session.scalars(select(AuditEntry).where(AuditEntry.request_id == request_id))
            )
            session.expunge_all()
            return found

    def one_entry(self, response: httpx.Response) -> AuditEntry:
        found = self.entries_of(response)
        assert len(found) == 1, (response.request.method, response.request.url, found)
        return found[0]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("EXCHANGE_LINKAGE_KEY", LINKAGE_KEY)
    monkeypatch.setenv("EXCHANGE_MASTER_KEY", MASTER_KEY_B64)
    # Hundreds of refused credentials from one test client: the per-address limit on
    # failed authentications (not audited by design) must not engage here.
    monkeypatch.setenv("EXCHANGE_GATEWAY__AUTH_FAILURE_BURST", "100000")
    settings = load_settings()
    connector = "push-household"
    household_definition(
        settings.connectors_path,
        name=f"{connector}.toml",
        connector_id=connector,
        department="household_registry",
        source={"type": "push", "key": "local_id"},
    )
    with cli_database() as (_, sessions):
        insert_rows(sessions, ROWS)
        add_purpose(sessions, MLA)
        add_grant(
            sessions,
            department="civil_affairs",
            dataset="person",
            fields={"resident_id": "masked", "full_name": "full", "birth_date": "full"},
            purposes=[MLA],
        )
        keys: dict[str, str] = {}
        with transaction(sessions) as session:
            for role in ROLES:
                department = "household_registry" if role == "publisher" else "civil_affairs"
                keys[role] = create_key(
                    session, actor=f"t.{role}", department=department, role=role
                )
            keys["revoked"] = create_key(
                session, actor="t.gone", department="civil_affairs", role="caseworker"
            )
            session.execute(
                update(ApiKey)
                .where(ApiKey.key_id == apikeys.key_id_of(keys["revoked"]))
                .values(revoked_at=utcnow())
            )
        with TestClient(create_app(settings)) as client:
            yield Env(client, sessions, keys, connector)


# --- the contract: every operation, every credential --------------------------------------


def _value(schema: dict[str, Any]) -> Any:
    kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    if "integer" in kinds:
        return 1
    if "boolean" in kinds:
        return "false"
    if "enum" in schema:
        return schema["enum"][0]
    return "x1"


def _requests(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """Each operation as (method, url, query, has a body), its parameters filled in."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            url, query = path, {}
            for param in operation.get("parameters", []):
                value = _value(param.get("schema", {}))
                if param["in"] == "path":
                    url = url.replace("{" + param["name"] + "}", str(value))
                elif param["in"] == "query" and param.get("required"):
                    query[param["name"]] = value
            yield method.upper(), url, query, "requestBody" in operation


CREDENTIALS = (*ROLES, "revoked", None)


def test_every_operation_leaves_one_entry_with_the_status_answered(env: Env) -> None:
    doc = env.client.get("/openapi.json").json()
    checked = 0
    statuses: set[int] = set()
    for method, url, query, has_body in _requests(doc):
        for who in CREDENTIALS:
            headers = {"X-API-Key": env.keys[who]} if who else {}
            kwargs: dict[str, Any] = {"params": query, "headers": headers}
            if has_body:
                kwargs["json"] = {}
            response = env.client.request(method, url, **kwargs)
            statuses.add(response.status_code)
            path = url.split("?")[0]
            if path in UNAUDITED:
                assert env.entries_of(response) == []
                continue
            entry = env.one_entry(response)
            assert entry.status == response.status_code, (method, url, who, entry.reason)
            assert (entry.decision == "allow") == (
                response.status_code < 400 or response.status_code == 404
            ), (method, url, who, entry.decision, response.status_code)
            if who is not None:
                # The key id, never the secret, on every entry: refused ones too.
                assert entry.key_id == apikeys.key_id_of(env.keys[who]), (method, url, who)
                secret = env.keys[who].split("_", 2)[2]  # dx_<key id>_<secret>; "_" may be in it
                assert secret not in repr(
                    [entry.reason, entry.subjects, entry.fields, entry.key_id]
                )
            checked += 1
    assert checked > 200
    # The walk met refusals of every kind, validation's included, and successes.
    assert {200, 401, 403, 404, 422} <= statuses


def test_a_request_refused_by_validation_names_the_caller_and_the_route(env: Env) -> None:
    """A 422 FastAPI answers before the route runs (limit out of range, a body missing)."""
    response = env.client.get(
        f"/v1/persons/{A}",
        params={"purpose": MLA, "limit": 1000},
        headers={"X-API-Key": env.keys["caseworker"]},
    )
    assert response.status_code == 422
    entry = env.one_entry(response)
    assert (entry.decision, entry.status, entry.actor, entry.role) == (
        "deny",
        422,
        "t.caseworker",
        "caseworker",
    )
    assert entry.key_id == apikeys.key_id_of(env.keys["caseworker"])
    assert "/v1/persons/{resident_id}" in entry.reason
    assert A not in entry.reason  # the template, never the path


# --- finding 6: the four cases --------------------------------------------------------------


def test_an_unknown_connector_is_audited_404(env: Env) -> None:
    response = env.client.post(
        "/v1/publish/no-such-connector",
        json={"records": [{"local_id": "1"}]},
        headers={"X-API-Key": env.keys["publisher"]},
    )
    assert response.status_code == 404
    entry = env.one_entry(response)
    assert (entry.action, entry.decision, entry.status) == ("publish.batch", "allow", 404)
    assert "no-such-connector" in entry.reason


def test_an_empty_batch_is_audited_422(env: Env) -> None:
    response = env.client.post(
        f"/v1/publish/{env.connector}",
        json={"records": []},
        headers={"X-API-Key": env.keys["publisher"]},
    )
    assert response.status_code == 422
    entry = env.one_entry(response)
    assert (entry.action, entry.decision, entry.status) == ("publish.batch", "deny", 422)
    assert "records" in entry.reason


def test_an_unknown_proof_index_is_audited_404(env: Env) -> None:
    auditor = {"X-API-Key": env.keys["auditor"]}
    env.client.get("/v1/audit/public-keys", headers=auditor)  # an entry to sign
    assert env.client.post("/v1/audit/heads", headers=auditor).status_code == 200
    response = env.client.get("/v1/audit/proofs/inclusion/999999", headers=auditor)
    assert response.status_code == 404
    entry = env.one_entry(response)
    assert (entry.action, entry.decision, entry.status) == ("audit.proof", "allow", 404)


def test_first_larger_than_second_is_audited_400(env: Env) -> None:
    auditor = {"X-API-Key": env.keys["auditor"]}
    response = env.client.get(
        "/v1/audit/proofs/consistency", params={"first": 5, "second": 2}, headers=auditor
    )
    assert response.status_code == 400
    entry = env.one_entry(response)
    assert (entry.action, entry.decision, entry.status) == ("audit.proof", "deny", 400)


# --- finding 10, first point: refused credentials carry the key id ---------------------------


def test_a_revoked_key_is_traced_by_its_id_and_an_unknown_id_is_not_recorded(env: Env) -> None:
    revoked = env.client.get("/v1/catalogue/datasets", headers={"X-API-Key": env.keys["revoked"]})
    assert revoked.status_code == 401
    entry = env.one_entry(revoked)
    assert entry.key_id == apikeys.key_id_of(env.keys["revoked"])
    assert "revoked" in entry.reason
    # An id the exchange never issued might be anything a caller typed (an ID number).
    typed = env.client.get("/v1/catalogue/datasets", headers={"X-API-Key": f"dx_{A}_secret"})
    assert typed.status_code == 401
    unknown = env.one_entry(typed)
    assert unknown.key_id is None
    assert A not in repr([unknown.reason, unknown.subjects])
    # The replayed key's entries are found by its id, from the command line and the API.
    key_id = apikeys.key_id_of(env.keys["revoked"])
    found = runner.invoke(audit_cli, ["search", "--key-id", key_id], env=WIDE)
    assert found.exit_code == 0, found.output
    assert "deny 401" in found.output
    page = env.client.get(
        "/v1/audit/entries", params={"key_id": key_id}, headers={"X-API-Key": env.keys["auditor"]}
    ).json()
    assert [(e["seq"], e["key_id"]) for e in page["entries"]] == [(entry.seq, key_id)]


# --- finding 7: whose records were disclosed ---------------------------------------------------


def _subject(resident_id: str) -> str:
    return blind_index(LINKAGE_KEY.encode(), "cn.resident_id", resident_id)


def test_a_lookup_of_a_that_returns_bs_linked_record_is_in_bs_history(env: Env) -> None:
    response = env.client.get(
        f"/v1/persons/{A}",
        params={"purpose": MLA, "case_ref": "C-7"},
        headers={"X-API-Key": env.keys["caseworker"]},
    )
    assert response.status_code == 200, response.text
    assert {r["source_id"] for r in response.json()["records"]} == {"HR-A", "CA-B"}
    entry = env.one_entry(response)
    assert {_subject(A), _subject(B), E1} <= set(entry.subjects)
    assert B not in repr(entry.subjects)

    # Later, B is split off A's entity: B's history still shows the disclosure.
    with transaction(env.sessions) as session:
        session.execute(
            update(SourceRecord).where(SourceRecord.source_id == "CA-B").values(entity_id=E2)
        )

    found = runner.invoke(audit_cli, ["search", "--person", B], env=WIDE)
    assert found.exit_code == 0, found.output
    assert "person.lookup" in found.output
    assert "C-7" in found.output  # the lookup's case reference

    auditor = {"X-API-Key": env.keys["auditor"]}
    history = env.client.get(f"/v1/audit/subjects/person/{B}", headers=auditor).json()
    assert entry.seq in [e["seq"] for e in history["entries"]]


def test_entity_views_and_searches_name_every_person_disclosed(env: Env) -> None:
    caseworker = {"X-API-Key": env.keys["caseworker"]}
    view = env.client.get(f"/v1/entities/{E1}", params={"purpose": MLA}, headers=caseworker)
    assert view.status_code == 200, view.text
    assert {_subject(A), _subject(B)} <= set(env.one_entry(view).subjects)

    search = env.client.get(
        "/v1/persons", params={"purpose": MLA, "name": "王秀"}, headers=caseworker
    )
    assert search.status_code == 200, search.text
    shown = {r["record"]["source_id"] for r in search.json()["results"]}
    subjects = set(env.one_entry(search).subjects)
    for source_id, resident_id in (("HR-A", A), ("CA-B", B)):
        assert (source_id in shown) == (_subject(resident_id) in subjects)
    assert shown


# --- a citizen's access report ---------------------------------------------------------------


def test_a_citizens_access_report_lists_each_access_with_a_proof(env: Env, tmp_path: Path) -> None:
    lookup = env.client.get(
        f"/v1/persons/{A}",
        params={"purpose": MLA, "case_ref": "C-8"},
        headers={"X-API-Key": env.keys["caseworker"]},
    )
    assert lookup.status_code == 200, lookup.text
    entry = env.one_entry(lookup)
    auditor = {"X-API-Key": env.keys["auditor"]}
    head = env.client.post("/v1/audit/heads", headers=auditor).json()
    out = tmp_path / "report.html"

    made = runner.invoke(audit_cli, ["report", "--person", B, "-o", str(out)], env=WIDE)

    assert made.exit_code == 0, made.output
    page = out.read_text(encoding="utf-8")
    for shown in ("civil_affairs", MLA, "C-8", B[-4:], head["root"], head["signature"]):
        assert shown in page
    for hidden in (A, B):  # only the last four characters
        assert hidden not in page
    # The printed proof leads from the printed entry to the signed root.
    section = page.split(f"<h3>Entry {entry.seq - 1}</h3>", 1)[1].split("</section>", 1)[0]
    encoding = unescape(section.split("<pre>", 1)[1].split("</pre>", 1)[0])
    path = [p.split("</code>")[0] for p in section.split("<li><code>")[1:]]
    leaf = merkle.leaf_hash(encoding.encode())
    assert leaf.hex() == entry.leaf_hash
    merkle.verify_inclusion(
        leaf,
        entry.seq - 1,
        head["tree_size"],
        [bytes.fromhex(p) for p in path],
        bytes.fromhex(head["root"]),
    )
