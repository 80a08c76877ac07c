"""The caseworker's console pages with TestClient on SQLite: the case form's validation (the
API's purpose and case reference rules, errors against the fields), and the lookups as one
audited request each, with the API's action, purpose, case reference and status."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from gateway import create_app
from gateway.console.caseworker import Presenter
from gateway.views import JoinView, RecordView
from tests.support.catalogue import add_grant, add_purpose, insert_rows
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64
from tests.unit.test_query_api import E1, MLA, P1, P2, ROWS

CASE_REF = "MZ-2026-0417"
STRICT = "housing-subsidy"  # requires a case reference matching HS-<digits>


@dataclass
class Console:
    client: TestClient
    sessions: sessionmaker[Session]
    api_key: str

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    def post(
        self, path: str, data: dict[str, str], form_page: str = "/ui/search"
    ) -> httpx.Response:
        token = self.csrf(form_page)
        return self.client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)

    def choose(self, purpose: str, case_ref: str = "") -> httpx.Response:
        return self.post("/ui/case", {"purpose": purpose, "case_ref": case_ref}, "/ui/case")

    def entries(self) -> list[AuditEntry]:
        with self.sessions() as session:
            found = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
            session.expunge_all()
            return found

    def count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, ROWS)
    add_purpose(sessions, MLA)
    add_purpose(sessions, "tax-audit")
    with transaction(sessions) as session:
        catalogue.add_purpose(
            session,
            STRICT,
            "Housing subsidy",
            case_ref_required=True,
            case_ref_pattern=r"HS-[0-9]+",
        )
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
        purposes=[MLA, STRICT],
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
        key = create_key(session, actor="alice", department="civil_affairs", role="caseworker")
    settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    try:
        with TestClient(create_app(settings), base_url="http://testserver") as client:
            made = Console(client, sessions, key)
            form = client.get("/ui/sign-in")
            token = client.cookies.get("dx_signin")
            assert form.status_code == 200
            assert token
            signed = client.post(
                "/ui/sign-in",
                data={"api_key": key, "csrf_token": token, "next": "/ui/"},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            yield made
    finally:
        engine.dispose()


def test_the_case_form_lists_granted_purposes_first_with_their_titles(console: Console) -> None:
    page = console.client.get("/ui/case?lang=en")
    assert page.status_code == 200
    granted, other = page.text.split("No grant for your department")
    assert "Housing subsidy (housing-subsidy)" in granted
    assert "minimum living allowance (minimum-living-allowance)" in granted
    assert "tax audit (tax-audit)" in other
    assert console.entries()[-1].action == "console.case"


def test_without_a_case_a_search_sends_the_user_to_choose_one(console: Console) -> None:
    answer = console.client.get("/ui/search", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/case?next=/ui/search")
    answer = console.post("/ui/search/id", {"resident_id": P1}, "/ui/case")
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/case?next=/ui/search")
    entry = console.entries()[-1]
    assert (entry.action, entry.status, entry.fields) == ("person.lookup", 303, [])


@pytest.mark.parametrize(
    ("purpose", "case_ref", "field", "message"),
    [
        ("", "", "purpose", "state the purpose"),
        ("no-such-purpose", "", "purpose", "not a code of the catalogue"),
        (STRICT, "", "case_ref", "requires a case reference"),
        (STRICT, "MZ-1", "case_ref", "does not match the pattern"),
        (MLA, P1, "case_ref", "looks like or holds"),
    ],
)
def test_the_case_is_checked_by_the_api_rule_with_the_error_against_its_field(
    console: Console, purpose: str, case_ref: str, field: str, message: str
) -> None:
    before = console.count()
    answer = console.choose(purpose, case_ref)
    assert answer.status_code == 400
    text = answer.text
    # The error is shown against its field (the input refers to it), in the form again.
    assert f'id="f-{field}-error"' in text
    assert message in text
    assert 'aria-invalid="true"' in text
    entries = console.entries()
    assert len(entries) == before + 2  # the form read for the csrf token, the refusal
    entry = entries[-1]
    assert (entry.action, entry.decision, entry.status) == ("console.choose_case", "deny", 400)
    assert P1 not in (entry.case_ref or "")
    # Nothing chosen: the search still asks for the case first.
    assert console.client.get("/ui/search", follow_redirects=False).status_code == 303


def test_a_chosen_case_is_used_by_each_lookup_as_the_api_would(console: Console) -> None:
    chosen = console.choose(MLA, CASE_REF)
    assert (chosen.status_code, chosen.headers["location"]) == (303, "/ui/search")
    assert console.entries()[-1].action == "console.choose_case"
    assert (console.entries()[-1].purpose, console.entries()[-1].case_ref) == (MLA, CASE_REF)

    found = console.post("/ui/search/id", {"resident_id": P1})
    assert found.status_code == 200, found.text
    assert f"/ui/persons/{E1}" in found.text
    entry = console.entries()[-1]
    assert (entry.action, entry.decision, entry.status, entry.purpose, entry.case_ref) == (
        "person.lookup",
        "allow",
        200,
        MLA,
        CASE_REF,
    )
    assert "person.full_name" in entry.fields

    person = console.client.get(f"/ui/persons/{E1}?lang=en")
    assert person.status_code == 200
    assert "王秀英" in person.text
    assert 'class="masked"' in person.text
    assert "Same identifier" in person.text
    entry = console.entries()[-1]
    assert (entry.action, entry.status, entry.purpose, entry.case_ref) == (
        "entity.view",
        200,
        MLA,
        CASE_REF,
    )

    named = console.post("/ui/search/name", {"name": "王秀英", "birth_date": "1980-05-07"})
    assert named.status_code == 200, named.text
    assert f"/ui/persons/{E1}" in named.text
    assert console.entries()[-1].action == "person.search"


def test_refusals_have_the_audited_status_and_say_why(console: Console) -> None:
    console.choose("tax-audit")
    refused = console.post("/ui/search/id", {"resident_id": P1})
    assert refused.status_code == 403
    assert "tax audit" in refused.text  # the purpose's title, in plain words
    entry = console.entries()[-1]
    assert (entry.action, entry.decision, entry.status, entry.purpose) == (
        "person.lookup",
        "deny",
        403,
        "tax-audit",
    )
    console.choose(MLA, CASE_REF)
    missing = console.post("/ui/search/id", {"resident_id": P2})  # outside the row constraint
    assert missing.status_code == 404
    assert console.entries()[-1].status == 404
    empty = console.post("/ui/search/id", {"resident_id": ""})
    assert empty.status_code == 400
    assert 'id="f-resident_id-error"' in empty.text
    assert console.entries()[-1].status == 400
    assert console.client.get("/ui/persons/not-an-entity").status_code == 400
    assert console.entries()[-1].status == 400


def _presenter(language: str) -> Presenter:
    console = SimpleNamespace(default_language=language)
    state = SimpleNamespace(settings=SimpleNamespace(console=console))
    app = SimpleNamespace(state=SimpleNamespace(exchange=state))
    request = SimpleNamespace(query_params={}, cookies={}, app=app)
    return Presenter(request)  # type: ignore[arg-type]


def _record(joined: JoinView | None, **fields: object) -> RecordView:
    return RecordView(
        dataset="person",
        department="household_registry",
        source_id="HR-9",
        entity_id=E1,
        version=2,
        updated_at=datetime(2026, 12, 7, 8, 30, tzinfo=UTC),
        fields=fields,
        masked_fields=["resident_id"],
        unreadable_fields=["phone"],
        joined=joined,
    )


def test_each_record_says_how_it_joined_and_marks_masked_and_unreadable_fields() -> None:
    shown = _presenter("en")
    by_model = shown.record(
        _record(JoinView(how="probabilistic", weight=12.34, probability=0.987), resident_id="tk_x")
    )
    assert (by_model.join_label, by_model.join_class) == ("Probabilistic link", "warn")
    assert by_model.join_detail == "weight 12.3 bits, probability 98.7%"
    reviewed = shown.record(
        _record(
            JoinView(
                how="reviewer",
                decided_by="li.reviewer",
                decided_at=datetime(2026, 12, 1, tzinfo=UTC),
            )
        )
    )
    assert reviewed.join_label == "Confirmed by a reviewer"
    assert reviewed.join_detail.startswith("by li.reviewer on 1 Dec 2026")
    assert shown.record(_record(JoinView(how="identifier"))).join_label == "Same identifier"
    assert shown.record(_record(None)).join_label == "Not linked to another record"
    fields = _record(None, resident_id="tk_<x>", phone=None, amount_fen=50000, flag=True).fields
    rows = str(shown.rows(shown.fields(_record(None, **fields))))
    assert 'class="masked"' in rows
    assert "tk_&lt;x&gt;" in rows  # escaped
    assert "Unreadable: its key was destroyed" in rows
    assert "50,000" in rows
    assert ">yes<" in rows
    chinese = _presenter("zh").record(_record(JoinView(how="identifier")))
    assert chinese.join_label == "相同证件号"
