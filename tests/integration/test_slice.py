"""The thin slice for real: CSV in -> Kafka -> registry row -> gateway JSON out -> audit row.

Runs against the session's real Kafka broker, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from connectors import load_definition
from exchange import audit
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, SourceRecord
from exchange.identity.apikeys import create_key
from exchange.local.broker import LocalKafka
from gateway import create_app
from schemas import SchemaStore
from tests.support.catalogue import add_grant, add_purpose
from tests.support.deadletters import sealed_dead_letters
from tests.support.examples import CONTACT_FIELDS, household_definition
from tests.support.kafka import end_offsets, read_topic
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64
from tests.support.publishing import publish
from tests.support.registry import build_department

pytestmark = pytest.mark.integration

VALID = [
    # local id, id number, surname, given, dob, sex
    ("A1", "11010519491231002X", "王", "秀英", "1949-12-31", "2"),
    ("A2", "110105198005170017", "李", "伟", "1980/05/17", "1"),
    ("A3", "440106199007090026", "陈", "芳", "19900709", "2"),
]
INVALID = [
    ("B1", "110105198005170015", "孙", "丽", "1980-05-17", "2"),  # wrong check character
    ("B2", "310104197503010012", "钱", "刚", "1975-02-30", "1"),  # impossible date
]


def _write_source(folder: Path, department: str) -> Path:
    rows = ["local_id,id_number,surname,given,dob,sex"]
    rows += [",".join(r) for r in VALID + INVALID]
    (folder / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return household_definition(
        folder,
        connector_id="slice-test",
        department=department,
        csv="people.csv",
        without=CONTACT_FIELDS,
    )


def test_csv_to_registry_to_gateway_to_audit(
    kafka: LocalKafka, database_url: str, tmp_path: Path
) -> None:
    department = f"dept_{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    store = SchemaStore(sessions)

    # 1. The connector publishes valid rows and dead-letters the rest, with reasons.
    start = end_offsets(kafka.bootstrap_servers, "std.person.v1")
    report = publish(
        kafka.bootstrap_servers, sessions, _write_source(tmp_path, department), store=store
    )
    assert (report.read, report.published, report.rejected) == (5, 3, 2)
    assert report.reconciled
    assert report.reasons == {"resident_id.check_character": 1, "date.invalid": 1}
    assert {(r["line"], r["source_id"]) for r in report.rejections} == {(5, "B1"), (6, "B2")}

    # 2. On the wire: Confluent framing (magic 0, the registered schema id) and provenance.
    # Acknowledged before publish returned: read up to the end offsets, not until a quiet spell.
    published = read_topic(kafka.bootstrap_servers, "std.person.v1", department.encode())
    assert len(published) == 3
    wire = load_definition(tmp_path / "connector.toml").standard.wire
    schema_id = store.register(wire.subject, wire.schema)
    for message in published:
        assert message.value[0] == 0
        assert int.from_bytes(message.value[1:5], "big") == schema_id
        headers = dict(message.headers)
        assert headers["department"] == department.encode()
        assert headers["connector-id"] == b"slice-test"
        assert message.key == f"{department}:{headers['source-id'].decode()}".encode()
    dead = sealed_dead_letters(kafka.bootstrap_servers, department)
    assert len(dead) == 2
    reasons = sorted(e["reasons"][0]["code"] for e in dead)
    assert reasons == ["date.invalid", "resident_id.check_character"]

    # 3. The registry builder applies exactly the valid rows.
    build_department(kafka.bootstrap_servers, sessions, department, 3, start)
    with sessions() as session:
        rows = session.scalars(
            select(SourceRecord).where(SourceRecord.department == department)
        ).all()
    assert sorted(r.source_id for r in rows) == ["A1", "A2", "A3"]
    a2 = next(r for r in rows if r.source_id == "A2")
    assert a2.payload["birth_date"] == "1980-05-17"
    assert a2.payload["full_name"] == "李伟"
    assert a2.lookup_key
    assert "110105198005170017" not in a2.lookup_key

    # 4. The gateway serves the person to a caseworker with a key, for a purpose a grant serves.
    add_purpose(sessions, "minimum-living-allowance")
    add_grant(
        sessions,
        department="civil_affairs",
        dataset="person",
        fields={"resident_id": "masked", "full_name": "full"},
        purposes=["minimum-living-allowance"],
    )
    with transaction(sessions) as session:
        key = create_key(session, actor="alice", department="civil_affairs", role="caseworker")
        clerk = create_key(session, actor="bob", department="civil_affairs", role="publisher")
    settings = Settings(
        database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
    )
    with TestClient(create_app(settings)) as client:
        ok = client.post(
            "/v1/persons/lookup",
            json={"resident_id": "110105198005170017"},
            params={"purpose": "minimum-living-allowance", "case_ref": "C-1"},
            headers={"X-API-Key": key},
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        [record] = [r for r in body["records"] if r["department"] == department]
        token = record["fields"]["resident_id"]
        assert token.startswith("tk_")  # the person standard's style for the identifier
        assert record["fields"] == {"full_name": "李伟", "resident_id": token}

        denied = [
            client.post(
                "/v1/persons/lookup",
                json={"resident_id": "110105198005170017"},
                params={"purpose": "minimum-living-allowance"},
            ),
            client.post(
                "/v1/persons/lookup",
                json={"resident_id": "110105198005170017"},
                params={"purpose": "minimum-living-allowance"},
                headers={"X-API-Key": key[:-2] + "zz"},
            ),
            client.post(
                "/v1/persons/lookup",
                json={"resident_id": "110105198005170017"},
                params={"purpose": "minimum-living-allowance"},
                headers={"X-API-Key": clerk},
            ),
            client.post(
                "/v1/persons/lookup",
                json={"resident_id": "110105198005170017"},
                headers={"X-API-Key": key},
            ),
        ]
        assert [r.status_code for r in denied] == [401, 401, 403, 400]
        for response in denied:
            assert response.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in response.text

    # 5. One audit entry per request, allowed or denied, no plaintext identifier, chain intact.
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert audit.verify(session) is None
    assert [(e.decision, e.status) for e in entries] == [
        ("allow", 200),
        ("deny", 401),
        ("deny", 401),
        ("deny", 403),
        ("deny", 400),
    ]
    assert entries[0].actor == "alice"
    assert entries[0].purpose == "minimum-living-allowance"
    assert entries[0].case_ref == "C-1"
    for entry in entries:
        assert "110105198005170017" not in json.dumps(entry.subjects)
    engine.dispose()
