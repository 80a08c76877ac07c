"""The household view (POST /v1/households/lookup), on SQLite and PostgreSQL.

The registry's own resolver links the records (as the builder does); a caseworker asks
for an applicant's household for the minimum-living-allowance review and sees the current
members, each member's records with exactly the fields the grants allow (a record of a
dataset without a grant is absent, not hinted at), how each record joined, and the
business a member runs; without a grant on household memberships the request is refused;
every request is audited once, and the entry names every member shown by blind index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from exchange.security.blindindex import blind_index
from gateway import create_app
from schemas.validators import resident_id_check_character, uscc_check_character
from tests.support.catalogue import Row, add_grant, add_purpose, insert_rows
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration

MLA = "minimum-living-allowance"
OTHER = "tax-assessment"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


HEAD = rid("31011519720314021")
WIFE = rid("31011519750802022")
CHILD = rid("31011520120605024")
LEFT = rid("31011519980101025")  # moved out: no longer a member
NEIGHBOUR = rid("31011519800101027")  # another household
STRANGER = rid("44030519660101031")  # another registry's household of the same number
SHOP = "92310115MA0000004" + uscc_check_character("92310115MA0000004")
HOUSEHOLD = "3101150042"


def _person(department: str, source_id: str, name: str, born: str, number: str | None) -> Row:
    plain: dict[str, Any] = {
        "family_name": name[0],
        "given_name": name[1:],
        "full_name": name,
        "birth_date": born,
        "sex": "FEMALE" if number != HEAD else "MALE",
        "nationality": "CHN",
        "residence_division_code": "310115",
        "phone": {"建国": "13300001111", "秀兰": "13300002222"}.get(name[1:], "13300003333"),
    }
    if number is not None:
        plain["resident_id"] = number
    return Row("person", department, source_id, plain)


def _member(
    source_id: str,
    number: str,
    relation: str,
    household: str,
    until: str | None,
    department: str = "household_registry",
) -> Row:
    plain: dict[str, Any] = {
        "resident_id": number,
        "household_id": household,
        "relationship_to_head": relation,
        "since": "1999-10-01",
        "until": until,
    }
    return Row("household_membership", department, source_id, plain)


ROWS = [
    _person("household_registry", "HR-1", "张建国", "1972-03-14", HEAD),
    _person("household_registry", "HR-2", "李秀兰", "1975-08-02", WIFE),
    # The human resources roster's legacy row for the wife: no number, joined by probability.
    _person("human_resources", "RS-2", "李秀兰", "1975-08-02", None),
    _member("HM-1", HEAD, "HEAD", HOUSEHOLD, None),
    _member("HM-2", WIFE, "SPOUSE", HOUSEHOLD, None),
    _member("HM-3", CHILD, "CHILD", HOUSEHOLD, None),
    _member("HM-4", LEFT, "CHILD", HOUSEHOLD, "2020-05-01"),
    _member("HM-5", NEIGHBOUR, "HEAD", "3101150043", None),
    # Another department numbers its households its own way: the same number, another home.
    _member("SZ-1", STRANGER, "HEAD", HOUSEHOLD, None, department="shenzhen_registry"),
    Row(
        "social_insurance",
        "human_resources",
        "SI-1",
        {
            "resident_id": HEAD,
            "insurance_record_id": "SI-1",
            "employer_uscc": None,
            "insurance_types": ["MEDICAL"],
            "employment_status": "UNEMPLOYED",
            "contribution_base_fen": 0,
            "monthly_wage_fen": None,
            "insured_division_code": "310115",
            "period_start": "2025-07-01",
            "period_end": None,
        },
    ),
    Row(
        "benefit_payment",
        "civil_affairs",
        "MZ-1",
        {
            "resident_id": HEAD,
            "payment_id": "MZ-1",
            "benefit_type": "MINIMUM_LIVING_ALLOWANCE",
            "amount_fen": 238000,
            "period_start": "2026-11-01",
            "period_end": "2026-11-30",
            "paid_on": "2026-11-05",
            "case_reference": "MZ-2026-0417",
            "division_code": "310115",
        },
    ),
    # The child's only record is an enrolment, a dataset no grant gives the caseworker.
    Row(
        "health_insurance_enrolment",
        "health_insurance",
        "YB-3",
        {
            "resident_id": CHILD,
            "enrolment_id": "YB-3",
            "scheme": "URBAN_RURAL_RESIDENT",
            "employer_uscc": None,
            "enrolled_on": "2012-06-05",
            "ended_on": None,
            "status": "ACTIVE",
            "insured_division_code": "310115",
        },
    ),
    Row(
        "organisation",
        "market_regulation",
        SHOP,
        {
            "uscc": SHOP,
            "legal_name": "浦东新区秀兰便利店",
            "legal_form": "INDIVIDUAL_BUSINESS",
            "registration_date": "2019-03-08",
            "legal_representative_name": "李秀兰",
            "legal_representative_resident_id": WIFE,
            "registered_address": "上海市浦东新区川沙路1288弄3号",
            "registered_division_code": "310115",
            "industry_code": "F5212",
            "status": "ACTIVE",
        },
    ),
]

GRANTS = {
    "household_membership": {
        "resident_id": "masked",
        "household_id": "masked",
        "relationship_to_head": "full",
        "since": "masked",
    },
    "person": {"resident_id": "masked", "full_name": "full", "birth_date": "masked"},
    "social_insurance": {"resident_id": "masked", "employment_status": "full"},
    "benefit_payment": {"resident_id": "masked", "amount_fen": "full", "benefit_type": "full"},
    "organisation": {"legal_name": "full", "legal_form": "full", "status": "full"},
}


@dataclass
class World:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]

    def ask(self, number: str, who: str = "civil", purpose: str = MLA) -> httpx.Response:
        return self.client.post(
            "/v1/households/lookup",
            json={"resident_id": number},
            params={"purpose": purpose, "case_ref": "MZ-2026-0417"},
            headers={"X-API-Key": self.keys[who]},
        )

    def audit(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, ROWS, linked=True)
    add_purpose(sessions, MLA)
    add_purpose(sessions, OTHER)
    for dataset, fields in GRANTS.items():
        add_grant(sessions, department="civil_affairs", dataset=dataset, fields=fields,
                  purposes=[MLA])  # fmt: skip
    # The tax bureau may see persons, but not household memberships.
    add_grant(sessions, department="tax_bureau", dataset="person", fields=GRANTS["person"],
              purposes=[OTHER])  # fmt: skip
    with transaction(sessions) as session:
        keys = {
            "civil": create_key(session, actor="alice", department="civil_affairs",
                                role="caseworker"),
            "tax": create_key(session, actor="bob", department="tax_bureau", role="caseworker"),
        }  # fmt: skip
    settings = Settings(
        database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield World(client, sessions, keys)
    finally:
        engine.dispose()


def _subject(number: str) -> str:
    return blind_index(LINKAGE_KEY.encode(), "cn.resident_id", number)


def _members(body: Any) -> dict[str, Any]:
    [household] = body["households"]
    return {m["membership"]["source_id"]: m for m in household["members"]}


def test_the_household_view_shows_the_current_members_and_what_the_grants_allow(
    world: World,
) -> None:
    answer = world.ask(WIFE)  # any member finds the household

    assert answer.status_code == 200, answer.text
    members = _members(answer.json())
    assert list(members) == ["HM-1", "HM-2", "HM-3"]  # not the one who left, not a neighbour
    head, wife, child = members["HM-1"], members["HM-2"], members["HM-3"]
    membership = head["membership"]["fields"]
    assert membership["relationship_to_head"] == "HEAD"
    assert membership["resident_id"].startswith("tk_")  # masked: a per-purpose token
    assert membership["household_id"].startswith("tk_")
    assert membership["since"] == "1999-**-**"  # year only
    assert set(head["membership"]["masked_fields"]) == {"resident_id", "household_id", "since"}

    records = {(r["dataset"], r["source_id"]): r for r in head["records"]}
    assert set(records) == {
        ("person", "HR-1"),
        ("social_insurance", "SI-1"),
        ("benefit_payment", "MZ-1"),
    }
    assert records[("person", "HR-1")]["fields"]["full_name"] == "张建国"
    assert records[("person", "HR-1")]["fields"]["birth_date"] == "1972-**-**"
    assert records[("social_insurance", "SI-1")]["fields"] == {
        "resident_id": records[("person", "HR-1")]["fields"]["resident_id"],
        "employment_status": "UNEMPLOYED",
    }
    assert records[("benefit_payment", "MZ-1")]["fields"]["amount_fen"] == 238000
    assert {r["joined"]["how"] for r in records.values()} == {"identifier"}

    joined = {r["source_id"]: r["joined"] for r in wife["records"]}
    assert joined["HR-2"]["how"] == "identifier"
    assert joined["RS-2"]["how"] == "probabilistic"
    assert joined["RS-2"]["weight"] > 0
    [shop] = wife["businesses"]
    assert shop["fields"] == {
        "legal_name": "浦东新区秀兰便利店",
        "legal_form": "INDIVIDUAL_BUSINESS",
        "status": "ACTIVE",
    }
    assert head["businesses"] == []

    # The child's only record is of a dataset the caseworker has no grant on: absent, and
    # nothing says it exists.
    assert child["records"] == []
    assert child["entity_ids"] == []
    assert "health_insurance" not in answer.text
    assert "YB-3" not in answer.text
    for plain in (HEAD, WIFE, CHILD, LEFT, NEIGHBOUR, HOUSEHOLD):
        assert plain not in answer.text

    [entry] = world.audit()
    assert (entry.action, entry.decision, entry.status) == ("household.lookup", "allow", 200)
    assert (entry.purpose, entry.case_ref) == (MLA, "MZ-2026-0417")
    for number in (HEAD, WIFE, CHILD):
        assert _subject(number) in entry.subjects
    assert _subject(LEFT) not in entry.subjects
    assert _subject(NEIGHBOUR) not in entry.subjects
    entity_ids = {e for m in members.values() for e in m["entity_ids"]}
    assert entity_ids
    assert entity_ids <= set(entry.subjects)
    assert "household_membership.relationship_to_head" in entry.fields
    assert "organisation.legal_name" in entry.fields
    dumped = json.dumps([entry.subjects, entry.reason, entry.fields], ensure_ascii=False)
    for plain in (HEAD, WIFE, CHILD, "张建国", "李秀兰", HOUSEHOLD):
        assert plain not in dumped


def test_without_a_grant_on_household_memberships_the_view_is_refused(world: World) -> None:
    refused = world.ask(HEAD, who="tax", purpose=OTHER)
    wrong_purpose = world.ask(HEAD, purpose=OTHER)

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "张建国" not in refused.text
    assert wrong_purpose.status_code == 403
    assert [(e.action, e.decision, e.status) for e in world.audit()] == [
        ("household.lookup", "deny", 403),
        ("household.lookup", "deny", 403),
    ]


def test_a_person_in_no_household_is_not_found(world: World) -> None:
    nobody = world.ask(rid("11010519491231002"))
    moved_out = world.ask(LEFT)

    assert nobody.status_code == 404
    assert moved_out.status_code == 404
    assert [e.status for e in world.audit()] == [404, 404]


def test_a_household_number_of_another_department_is_another_household(world: World) -> None:
    """Household numbers are each registry's own: a membership another department
    publishes under the same number is not a member of the applicant's household (the
    view would otherwise disclose a stranger, and name them in the audit entry), and the
    stranger's view is their own household alone."""
    mine = world.ask(WIFE)
    theirs = world.ask(STRANGER)

    assert mine.status_code == 200, mine.text
    assert list(_members(mine.json())) == ["HM-1", "HM-2", "HM-3"]
    assert theirs.status_code == 200, theirs.text
    assert list(_members(theirs.json())) == ["SZ-1"]
    first, second = world.audit()
    assert _subject(STRANGER) not in first.subjects
    assert set(second.subjects) & {_subject(n) for n in (HEAD, WIFE, CHILD)} == set()


def test_a_household_larger_than_the_limit_is_refused_before_any_record_is_read(
    world: World, database_url: str
) -> None:
    """A collective household (a school's, a firm's) is not one applicant's family: past
    gateway.household_max_members the view is refused (409, audited deny) and names no
    one; a household within the limit is still shown."""
    settings = Settings(
        database_url=database_url,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
        gateway={"household_max_members": 2},
    )
    with TestClient(create_app(settings)) as client:
        small = World(client, world.sessions, world.keys)
        refused = small.ask(WIFE)  # three current members
        shown = small.ask(NEIGHBOUR)  # one

    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "conflict"
    assert "household_max_members" in refused.json()["detail"]
    for plain in ("张建国", "李秀兰", "HM-1", "MZ-1", "tk_"):
        assert plain not in refused.text
    assert shown.status_code == 200, shown.text
    assert list(_members(shown.json())) == ["HM-5"]
    denied, allowed = world.audit()
    assert (denied.action, denied.decision, denied.status) == ("household.lookup", "deny", 409)
    assert denied.subjects == [_subject(WIFE)]  # the applicant asked for, no one else
    assert denied.fields == []
    assert (allowed.decision, allowed.status) == ("allow", 200)
