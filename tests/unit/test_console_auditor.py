"""The auditor's console pages (gateway/console/auditor*.py) in a TestClient on SQLite: each
page is one audited request with the auditor API's action; a person is never in an
address; the export is the API's (CSV with spreadsheet formulas defused); proofs are
checked; a caseworker is refused and audited."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
from exchange.core.models import AuditEntry
from exchange.security.blindindex import blind_index
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

PERSON = "33010619800507001" + resident_id_check_character("33010619800507001")
SUBJECT = blind_index(LINKAGE_KEY.encode(), "cn.resident_id", PERSON)


@dataclass
class Console:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]

    def sign_in(self, role: str) -> None:
        self.client.cookies.clear()
        self.client.get("/ui/sign-in")
        token = self.client.cookies.get("dx_signin")
        answer = self.client.post(
            "/ui/sign-in",
            data={"api_key": self.keys[role], "csrf_token": token, "next": "/ui/"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text

    def csrf(self) -> str:
        page = self.client.get("/ui/audit/person")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return found.group(1)

    def entries(self, action: str) -> list[AuditEntry]:
        with self.sessions() as session:
            found = list(
                session.scalars(
                    select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
                )
            )
            session.expunge_all()
            return found


def _seed(sessions: sessionmaker[Session]) -> None:
    """A caseworker's lookup of PERSON, with a case reference and a reason a spreadsheet
    would run as formulas."""
    with transaction(sessions) as session:
        audit.append(
            session,
            audit.Decision(
                request_id="seeded-1",
                action="person.lookup",
                decision="allow",
                reason='=HYPERLINK("http://evil")',
                status=200,
                actor="t.caseworker",
                department="civil_affairs",
                role="caseworker",
                purpose="minimum-living-allowance",
                case_ref="+MZ-1",
                dataset="person",
                subjects=[SUBJECT],
            ),
            at=utcnow(),
        )


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    from exchange.identity.apikeys import create_key

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions)
    keys = {}
    with transaction(sessions) as session:
        for role in ("auditor", "caseworker"):
            keys[role] = create_key(
                session, actor=f"t.{role}", department="civil_affairs", role=role
            )
    settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    try:
        with TestClient(create_app(settings)) as client:
            yield Console(client, sessions, keys)
    finally:
        engine.dispose()


def test_a_caseworker_is_refused_every_auditor_page_and_each_refusal_is_audited(
    console: Console,
) -> None:
    console.sign_in("caseworker")
    for path, action in (
        ("/ui/audit/log", "audit.search"),
        ("/ui/audit/anomalies", "audit.anomalies"),
        ("/ui/audit/integrity", "audit.head"),
        ("/ui/audit/report", "console.form"),
    ):
        answer = console.client.get(path)
        assert answer.status_code == 403, path
        assert "caseworker" in answer.text
        last = console.entries(action)[-1]
        assert (last.actor, last.decision, last.status) == ("t.caseworker", "deny", 403)


def test_searching_by_person_is_a_post_audited_with_the_persons_blind_index(
    console: Console,
) -> None:
    console.sign_in("auditor")
    token = console.csrf()
    answer = console.client.post(
        "/ui/audit/log", data={"person": PERSON, "actor": "t.caseworker", "csrf_token": token}
    )
    assert answer.status_code == 200
    assert "person.lookup" in answer.text
    assert "+MZ-1" in answer.text
    assert PERSON not in str(answer.url)
    search = console.entries("audit.search")[-1]
    assert (search.decision, search.status, search.subjects) == ("allow", 200, [SUBJECT])
    # Who accessed the person: the same entry, through the API's audit.person.
    answer = console.client.post("/ui/audit/person", data={"person": PERSON, "csrf_token": token})
    assert answer.status_code == 200
    assert SUBJECT in answer.text
    assert "t.caseworker" in answer.text
    assert console.entries("audit.person")[-1].subjects == [SUBJECT]


def test_a_form_without_its_csrf_token_is_refused(console: Console) -> None:
    console.sign_in("auditor")
    answer = console.client.post("/ui/audit/person", data={"person": PERSON})
    assert answer.status_code == 403
    assert console.entries("audit.person")[-1].status == 403


def test_the_export_is_the_apis_csv_with_formulas_defused_and_is_audited(
    console: Console,
) -> None:
    console.sign_in("auditor")
    token = console.csrf()
    answer = console.client.post(
        "/ui/audit/export", data={"person": PERSON, "format": "csv", "csrf_token": token}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = {r["request_id"]: r for r in csv.DictReader(io.StringIO(answer.text))}
    seeded = rows["seeded-1"]
    assert seeded["case_ref"] == "'+MZ-1"
    assert seeded["reason"].startswith("'=HYPERLINK")
    assert seeded["subjects"] == SUBJECT
    # The export's own entry (written as its answer starts) names the person too.
    assert rows[answer.headers["x-request-id"]]["action"] == "audit.export"
    exported = console.entries("audit.export")[-1]
    assert (exported.decision, exported.status, exported.subjects) == ("allow", 200, [SUBJECT])
    lines = console.client.post(
        "/ui/audit/export", data={"actor": "t.caseworker", "format": "jsonl", "csrf_token": token}
    )
    assert [json.loads(line)["case_ref"] for line in lines.text.splitlines()] == ["+MZ-1"]


def test_bad_input_is_shown_against_its_field_and_audited_as_refused(console: Console) -> None:
    console.sign_in("auditor")
    answer = console.client.get("/ui/audit/log", params={"since": "yesterday"})
    assert answer.status_code == 400
    assert 'id="f-since-error"' in answer.text
    assert console.entries("audit.search")[-1].status == 400


def test_verification_heads_and_proofs_are_checked_and_shown(console: Console) -> None:
    console.sign_in("auditor")
    token = console.csrf()
    signed = console.client.post("/ui/audit/heads", data={"csrf_token": token})
    assert signed.status_code == 200  # followed to the integrity page
    first = int(str(signed.url).rsplit("=", 1)[1])
    console.client.get("/ui/audit/log")  # one more entry, then a second head
    second_page = console.client.post("/ui/audit/heads", data={"csrf_token": token})
    second = int(str(second_page.url).rsplit("=", 1)[1])
    assert second > first
    verified = console.client.post("/ui/audit/verify?lang=en", data={"csrf_token": token})
    assert verified.status_code == 200
    assert "The audit log is intact." in verified.text
    assert console.entries("audit.verify")[-1].decision == "allow"
    inclusion = console.client.get(
        "/ui/audit/proofs/inclusion", params={"index": 0, "tree_size": second, "lang": "en"}
    )
    assert inclusion.status_code == 200
    assert "Entry 0 is in the signed tree of" in inclusion.text
    assert "failed" not in inclusion.text
    consistency = console.client.get(
        "/ui/audit/proofs/consistency", params={"first": first, "second": second, "lang": "en"}
    )
    assert consistency.status_code == 200
    assert "without changing any entry" in consistency.text
    proofs = console.entries("audit.proof")
    assert [p.reason.endswith("verified") for p in proofs] == [True, True]
    missing = console.client.get(
        "/ui/audit/proofs/consistency", params={"first": 1, "second": 9999}
    )
    assert missing.status_code == 404


def test_a_pasted_key_that_is_not_one_is_refused_against_its_field(console: Console) -> None:
    console.sign_in("auditor")
    answer = console.client.post(
        "/ui/audit/verify", data={"csrf_token": console.csrf(), "public_key": "not a key"}
    )
    assert answer.status_code == 400
    assert 'id="f-public_key-error"' in answer.text


def test_the_citizens_report_names_who_and_why_never_the_whole_id(console: Console) -> None:
    console.sign_in("auditor")
    answer = console.client.post(
        "/ui/audit/report", data={"csrf_token": console.csrf(), "person": PERSON, "lang": "en"}
    )
    assert answer.status_code == 200
    assert PERSON not in answer.text
    assert PERSON[-4:] in answer.text
    assert "t.caseworker" in answer.text
    assert "minimum-living-allowance" in answer.text
    assert console.entries("audit.report")[-1].subjects == [SUBJECT]


def test_an_entry_opens_and_an_unknown_one_is_not_found(console: Console) -> None:
    console.sign_in("auditor")
    assert "seeded-1" in console.client.get("/ui/audit/entries/1").text
    assert console.client.get("/ui/audit/entries/999").status_code == 404


def test_an_anomaly_shows_its_evidence_and_links_to_its_entries(console: Console) -> None:
    with transaction(console.sessions) as session:
        audit.append(
            session,
            audit.Decision(
                request_id="seeded-2",
                action="person.lookup",
                decision="allow",
                reason="answered",
                status=200,
                actor="t.caseworker",
                department="civil_affairs",
                role="caseworker",
                purpose="minimum-living-allowance",
                subjects=[SUBJECT],
            ),
            at=utcnow(),
        )
    console.sign_in("auditor")
    page = console.client.get("/ui/audit/anomalies", params={"lang": "en"})
    assert page.status_code == 200
    assert "Records read without a case reference" in page.text
    assert 'href="/ui/audit/entries/2"' in page.text
    link = re.search(r'href="(/ui/audit/log\?actor=t.caseworker[^"]+)"', page.text)
    assert link is not None
    found = console.client.get(link.group(1).replace("&amp;", "&"))
    assert found.status_code == 200
    assert "seeded-2" not in found.text  # the table shows seq and time, not request ids
    assert 'href="/ui/audit/entries/2"' in found.text
    assert console.entries("audit.anomalies")[-1].decision == "allow"


def test_what_was_typed_into_a_wrong_field_never_reaches_the_audit_log(console: Console) -> None:
    console.sign_in("auditor")
    answer = console.client.post(
        "/ui/audit/log", data={"since": PERSON, "csrf_token": console.csrf()}
    )
    assert answer.status_code == 400
    refused = console.entries("audit.search")[-1]
    assert (refused.decision, refused.status) == ("deny", 400)
    assert PERSON not in refused.reason
