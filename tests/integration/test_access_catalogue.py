"""Grants decide what a caseworker sees, through the real path, on SQLite and PostgreSQL.

CSV -> run_connector (encrypts the identifier) -> Kafka -> registry builder ->
source_records -> gateway: a permitted sensitive field decrypted, a masked
field masked, an ungranted field absent, a row outside the grant's division
hidden, a purpose no grant serves refused; every request audited once.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from exchange import audit
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, SourceRecord
from exchange.identity.apikeys import create_key
from exchange.local.broker import LocalKafka
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.catalogue import add_grant, add_purpose
from tests.support.examples import household_definition
from tests.support.kafka import end_offsets
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64
from tests.support.publishing import publish
from tests.support.registry import build_department

pytestmark = pytest.mark.integration

MLA = "minimum-living-allowance"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


# local id: resident id, surname, given, date of birth, division, phone
PEOPLE = {
    "G1": (rid("33010619800507001"), "王", "秀英", "1980-05-07", "330106", "13800001234"),
    "G2": (rid("33010819750101002"), "陈", "芳", "1975-01-01", "330108", "13911112222"),
    "G3": (rid("11010519900709003"), "李", "伟", "1990-07-09", "110105", "13700003333"),
}


def test_grants_decide_what_the_gateway_returns(
    kafka: LocalKafka, database_url: str, tmp_path: Path
) -> None:
    department = f"acl_{uuid.uuid4().hex[:10]}"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    rows = ["local_id,id_number,surname,given,dob,division,phone,sex"]
    rows += [f"{local},{','.join(values)},2" for local, values in PEOPLE.items()]
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    household_definition(
        tmp_path,
        connector_id=f"catalogue-{department}",
        department=department,
        csv="people.csv",
        encoding="utf-8",
    )
    try:
        start = end_offsets(kafka.bootstrap_servers, "std.person.v1")
        report = publish(kafka.bootstrap_servers, sessions, tmp_path / "connector.toml")
        assert (report.read, report.published, report.rejected) == (3, 3, 0)
        build_department(kafka.bootstrap_servers, sessions, department, 3, start)
        with sessions() as session:
            stored = session.scalars(select(SourceRecord)).all()
            assert all(PEOPLE["G1"][0] not in json.dumps(r.payload) for r in stored)

        # The catalogue: civil affairs caseworkers see, for the allowance review, the
        # identifier in full (it is encrypted: decrypted for them), the name, the phone
        # masked, no birth date; only residents of Hangzhou's Shangcheng district (3301..).
        add_purpose(sessions, MLA)
        add_purpose(sessions, "tax-assessment")
        add_grant(
            sessions,
            department="civil_affairs",
            dataset="person",
            fields={"resident_id": "full", "full_name": "full", "phone": "masked"},
            purposes=[MLA],
            constraints={"division_prefix": "3301"},
        )
        with transaction(sessions) as session:
            key = create_key(session, actor="alice", department="civil_affairs", role="caseworker")
        settings = Settings(
            database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
        )
        headers = {"X-API-Key": key}
        with TestClient(create_app(settings)) as client:
            g1, g2, g3 = (PEOPLE[k][0] for k in ("G1", "G2", "G3"))
            seen = client.post(
                "/v1/persons/lookup",
                json={"resident_id": g1},
                params={"purpose": MLA},
                headers=headers,
            )
            assert seen.status_code == 200, seen.text
            [record] = seen.json()["records"]
            assert record["fields"] == {
                "resident_id": g1,  # sensitive, granted in full: decrypted
                "full_name": "王秀英",
                "phone": "*******1234",  # masked
            }  # birth_date, sex, division: absent
            assert record["masked_fields"] == ["phone"]
            assert "1980-05-07" not in seen.text

            hidden = client.post(
                "/v1/persons/lookup",
                json={"resident_id": g3},
                params={"purpose": MLA},
                headers=headers,
            )
            assert hidden.status_code == 404
            assert "李伟" not in hidden.text

            wrong = client.post(
                "/v1/persons/lookup",
                json={"resident_id": g2},
                params={"purpose": "tax-assessment"},
                headers=headers,
            )
            assert wrong.status_code == 403
            assert wrong.headers["content-type"] == "application/problem+json"

            found = client.post(
                "/v1/search/persons",
                json={"name": "陈芳"},
                params={"purpose": MLA},
                headers=headers,
            )
            assert found.status_code == 200, found.text
            assert [h["record"]["fields"]["resident_id"] for h in found.json()["results"]] == [g2]
            nobody = client.post(
                "/v1/search/persons",
                json={"name": "李伟"},
                params={"purpose": MLA},
                headers=headers,
            )
            assert nobody.json()["total"] == 0

        with sessions() as session:
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            assert audit.verify(session) is None
        assert [(e.action, e.decision, e.status) for e in entries] == [
            ("person.lookup", "allow", 200),
            ("person.lookup", "allow", 404),
            ("person.lookup", "deny", 403),
            ("person.search", "allow", 200),
            ("person.search", "allow", 200),
        ]
        assert entries[0].fields == ["person.full_name", "person.phone", "person.resident_id"]
        assert entries[2].purpose == "tax-assessment"
        for entry in entries:
            dumped = json.dumps([entry.subjects, entry.reason, entry.fields], ensure_ascii=False)
            for plain in (g1, g2, g3, "王秀英", "陈芳", "李伟"):
                assert plain not in dumped
    finally:
        engine.dispose()
