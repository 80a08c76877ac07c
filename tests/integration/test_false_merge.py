"""The false merge a review found, end to end: linkage in the registry, then the gateway.

张秀芳 (valid resident ID A) and 张秀英 (valid resident ID B: another woman, day and
month of birth swapped, the same household phone) were once linked, and a lookup by
A's number returned B's minimum-living-allowance payments without saying the record
was joined by probability. Here the registry's own resolver links the records (on
SQLite and PostgreSQL), and a caseworker looks A up through the gateway: B's records
never appear; every record says how it joined; a grant limited to identifier-matched
records hides the probabilistic ones; a reviewer can still join A and B, and the
answer then says who did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import SourceRecord
from exchange.identity.apikeys import create_key
from exchange.registry.entities import EntityResolver
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.catalogue import Row, add_grant, add_purpose, insert_rows
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration

MLA = "minimum-living-allowance"
A = "33010619850304002" + resident_id_check_character("33010619850304002")
B = "33010619850403004" + resident_id_check_character("33010619850403004")
PHONE = "13800001111"


def _person(department: str, source_id: str, given: str, born: str, rid: str | None) -> Row:
    plain: dict[str, Any] = {
        "family_name": "张",
        "given_name": given,
        "full_name": "张" + given,
        "birth_date": born,
        "sex": "FEMALE",
        "nationality": "CHN",
        "residence_division_code": "330106",
        "phone": PHONE,
    }
    if rid is not None:
        plain["resident_id"] = rid
    return Row("person", department, source_id, plain)


def _payment(source_id: str, rid: str, amount: int) -> Row:
    return Row(
        "benefit_payment",
        "civil_affairs",
        source_id,
        {
            "resident_id": rid,
            "payment_id": source_id,
            "benefit_type": "MINIMUM_LIVING_ALLOWANCE",
            "amount_fen": amount,
            "period_start": "2026-01-01",
            "period_end": "2026-01-31",
            "paid_on": "2026-02-01",
            "case_reference": "C-" + source_id,
            "division_code": "330106",
        },
    )


ROWS = [
    _person("household_registry", "HR-A", "秀芳", "1985-03-04", A),
    _person("health", "HE-B", "秀英", "1985-04-03", B),
    _payment("BP-B", B, 61000),
    # a record without an identity number, plainly 张秀芳's: joined by probability
    _person("civil_affairs", "CA-C", "秀芳", "1985-03-04", None),
]


@dataclass
class World:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]

    def lookup(self, rid: str, who: str = "full") -> Any:
        answer = self.client.post(
            "/v1/persons/lookup",
            json={"resident_id": rid},
            params={"purpose": MLA},
            headers={"X-API-Key": self.keys[who]},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def ref_of(self, source_id: str) -> str:
        with self.sessions() as session:
            row = session.scalars(
                select(SourceRecord).where(SourceRecord.source_id == source_id)
            ).one()
            return f"{row.dataset}/{row.department}/{row.source_id}"


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, ROWS, linked=True)
    add_purpose(sessions, MLA)
    person_fields = {"resident_id": "masked", "full_name": "full", "birth_date": "full"}
    payment_fields = {"resident_id": "masked", "amount_fen": "full"}
    keys = {}
    for department, constraints in (("civil_affairs", None), ("tax_bureau", "identifier")):
        for dataset, fields in (("person", person_fields), ("benefit_payment", payment_fields)):
            add_grant(
                sessions,
                department=department,
                dataset=dataset,
                fields=fields,
                purposes=[MLA],
                constraints={"linked_by": constraints} if constraints else None,
            )
    with transaction(sessions) as session:
        keys["full"] = create_key(
            session, actor="alice", department="civil_affairs", role="caseworker"
        )
        keys["identifier"] = create_key(
            session, actor="bob", department="tax_bureau", role="caseworker"
        )
    settings = Settings(
        database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield World(client, sessions, keys)
    finally:
        engine.dispose()


def _by_source(body: Any) -> dict[str, Any]:
    return {r["source_id"]: r for r in body["records"]}


def test_a_lookup_by_one_number_never_returns_another_persons_records(world: World) -> None:
    found = _by_source(world.lookup(A))
    assert set(found) == {"HR-A", "CA-C"}
    assert found["HR-A"]["joined"]["how"] == "identifier"
    assert found["HR-A"]["joined"]["weight"] is None
    joined = found["CA-C"]["joined"]
    assert joined["how"] == "probabilistic"
    assert joined["weight"] >= 18
    assert 0.5 < joined["probability"] <= 1.0
    other = _by_source(world.lookup(B))
    assert set(other) == {"HE-B", "BP-B"}
    assert {r["joined"]["how"] for r in other.values()} == {"identifier"}


def test_a_grant_limited_to_identifier_matches_hides_the_probabilistic_ones(
    world: World,
) -> None:
    found = _by_source(world.lookup(A, who="identifier"))
    assert set(found) == {"HR-A"}


def test_a_reviewer_can_still_join_them_and_the_answer_says_who(world: World) -> None:
    with transaction(world.sessions) as session:
        EntityResolver().decide(
            session, world.ref_of("HR-A"), world.ref_of("HE-B"), "confirmed", by="reviewer-7"
        )
    found = _by_source(world.lookup(A))
    assert set(found) == {"HR-A", "CA-C", "HE-B", "BP-B"}
    for source_id in ("HE-B", "BP-B"):
        joined = found[source_id]["joined"]
        assert joined["how"] == "reviewer"
        assert joined["decided_by"] == "reviewer-7"
        assert joined["decided_at"]
    assert found["BP-B"]["fields"]["amount_fen"] == 61000
    # identifier-only grants still see A's own record only
    assert set(_by_source(world.lookup(A, who="identifier"))) == {"HR-A"}
