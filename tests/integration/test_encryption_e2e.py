"""Sensitive fields never leave a connector in plaintext; destroying a dataset's keys
crypto-shreds them everywhere, while the registry and the audit chain stay usable.

CSV -> run_connector -> Kafka (ciphertext + blind index) -> registry builder ->
source_records (ciphertext) -> gateway (decrypts and masks for a caseworker) ->
keys destroyed -> gateway (the value is gone, said so) -> audit chain still verifies.
Runs against the session's Kafka broker, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from exchange import audit
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, DataKeyRecord, SourceRecord
from exchange.identity.apikeys import create_key
from exchange.local.broker import LocalKafka
from exchange.security.blindindex import blind_index
from exchange.security.keystore import TOKEN_VERSION, KeyDestroyedError, LocalKeyStore
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.catalogue import add_grant, add_purpose
from tests.support.examples import CONTACT_FIELDS, household_definition
from tests.support.kafka import end_offsets, read_topic
from tests.support.keys import LINKAGE_KEY, MASTER_KEY, MASTER_KEY_B64, keys_for
from tests.support.publishing import publish
from tests.support.registry import build_department

pytestmark = pytest.mark.integration

PURPOSE = "minimum-living-allowance-eligibility"


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


PEOPLE = {
    # local id: (resident id, surname, given, dob, sex)
    "E1": (rid("11010519491231002"), "王", "秀英", "1949-12-31", "2"),
    "E2": (rid("11010519800517001"), "李", "伟", "1980-05-17", "1"),
    "E3": (rid("44010619900709002"), "陈", "芳", "1990-07-09", "2"),
}


def _forms(resident_id: str) -> list[bytes]:
    """Ways a plaintext identifier could appear in bytes: UTF-8, UTF-16, and its 17 digits."""
    return [
        resident_id.encode(),
        resident_id.encode("utf-16-le"),
        resident_id[:17].encode(),
    ]


def _is_token(value: str) -> bool:
    """The person standard masks the identifier as a token (``tk_`` + 26 base32)."""
    return value.startswith("tk_") and len(value) == 29


def test_sensitive_fields_are_encrypted_end_to_end_and_crypto_shredded(
    kafka: LocalKafka, database_url: str, tmp_path: Path
) -> None:
    department = f"enc_{uuid.uuid4().hex[:10]}"
    connector_id = f"encryption-{department}"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    rows = ["local_id,id_number,surname,given,dob,sex"]
    rows += [f"{local},{','.join(values)}" for local, values in PEOPLE.items()]
    (tmp_path / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    household_definition(
        tmp_path,
        connector_id=connector_id,
        department=department,
        csv="people.csv",
        encoding="utf-8",
        without=CONTACT_FIELDS,
    )
    plaintexts = [values[0] for values in PEOPLE.values()]

    try:
        # 1. Publish: on the wire there is no plaintext identifier, in values or headers.
        start = end_offsets(kafka.bootstrap_servers, "std.person.v1")
        report = publish(kafka.bootstrap_servers, sessions, tmp_path / "connector.toml")
        assert (report.read, report.published, report.rejected) == (3, 3, 0)
        assert report.reconciled
        messages = read_topic(kafka.bootstrap_servers, "std.person.v1", f"{department}:".encode())
        assert len(messages) == 3
        for message in messages:
            exposed = [message.key, message.value]
            exposed += [name.encode() + b"=" + value for name, value in message.headers]
            for plain in plaintexts:
                for form in _forms(plain):
                    for blob in exposed:
                        assert form not in blob, f"plaintext identifier in {message.key!r}"
            # The names are personal, not sensitive: they travel in the clear.
            local_id = dict(message.headers)["source-id"].decode()
            assert PEOPLE[local_id][1].encode() in message.value

        # 2. The registry holds ciphertext and the blind index, never the identifier.
        build_department(kafka.bootstrap_servers, sessions, department, 3, start)
        with sessions() as session:
            records = session.scalars(
                select(SourceRecord).where(SourceRecord.department == department)
            ).all()
            every_payload = [
                json.dumps(r.payload, ensure_ascii=False)
                + json.dumps([r.lookup_key, r.source_id, r.content_hash])
                for r in session.scalars(select(SourceRecord)).all()
            ]
        assert sorted(r.source_id for r in records) == sorted(PEOPLE)
        for text in every_payload:
            for plain in plaintexts:
                assert plain not in text
                assert plain[:17] not in text
        for record in records:
            plain = PEOPLE[record.source_id][0]
            token = base64.b64decode(str(record.payload["resident_id"]))
            assert token[0] == TOKEN_VERSION
            assert plain.encode() not in token
            index = blind_index(LINKAGE_KEY.encode(), "cn.resident_id", plain)
            assert record.payload["resident_id_bidx"] == index
            assert record.lookup_key == index
            assert (
                record.payload["full_name"]
                == PEOPLE[record.source_id][1] + PEOPLE[record.source_id][2]
            )

        # 3. A caseworker whose grant shows the identifier masked sees it decrypted, then masked.
        add_purpose(sessions, PURPOSE)
        add_grant(
            sessions,
            department="civil_affairs",
            dataset="person",
            fields={"resident_id": "masked", "full_name": "full", "birth_date": "full"},
            purposes=[PURPOSE],
        )
        with transaction(sessions) as session:
            caseworker = create_key(
                session, actor="alice", department="civil_affairs", role="caseworker"
            )
        settings = Settings(
            database_url=database_url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64
        )

        def lookup(client: TestClient, resident_id: str) -> dict[str, Any]:
            response = client.post(
                "/v1/persons/lookup",
                json={"resident_id": resident_id},
                params={"purpose": PURPOSE, "case_ref": "C-7"},
                headers={"X-API-Key": caseworker},
            )
            assert response.status_code == 200, response.text
            assert resident_id not in response.text
            [record] = [r for r in response.json()["records"] if r["department"] == department]
            return dict(record)

        with TestClient(create_app(settings)) as client:
            tokens = set()
            for local_id, (plain, surname, given, dob, _) in PEOPLE.items():
                seen = lookup(client, plain)
                assert seen["source_id"] == local_id
                # Birth date is shown in full: the identifier only as a token (issue 17).
                assert _is_token(seen["fields"]["resident_id"])
                tokens.add(seen["fields"]["resident_id"])
                assert seen["unreadable_fields"] == []
                assert seen["fields"]["full_name"] == surname + given
                assert seen["fields"]["birth_date"] == dob
                assert "resident_id_bidx" not in seen["fields"]
            assert len(tokens) == len(PEOPLE)  # one token a person

        # 4. Crypto-shredding: destroy the dataset's keys; a fresh gateway cannot read the
        #    identifier any more, says so, and still finds the records by blind index.
        destroyed = LocalKeyStore(sessions, MASTER_KEY, cache_ttl=0).destroy("person")
        assert destroyed >= 1
        with sessions() as session:
            keys = session.scalars(
                select(DataKeyRecord).where(DataKeyRecord.dataset == "person")
            ).all()
        assert keys
        assert all(k.wrapped is None and k.destroyed_at is not None for k in keys)

        with TestClient(create_app(settings)) as client:
            for local_id, (plain, surname, given, _, _) in PEOPLE.items():
                seen = lookup(client, plain)
                assert seen["source_id"] == local_id
                assert seen["fields"]["resident_id"] is None
                assert seen["unreadable_fields"] == ["resident_id"]
                # What was not encrypted is still there.
                assert seen["fields"]["full_name"] == surname + given

        # A connector's own keystore cannot decrypt the old tokens either.
        fresh = keys_for(sessions)
        with sessions() as session:
            one = session.scalars(
                select(SourceRecord).where(SourceRecord.department == department)
            ).first()
        assert one is not None
        with pytest.raises(KeyDestroyedError):
            fresh.cipher.decrypt(
                "person",
                "resident_id",
                f"{department}:{one.source_id}",
                base64.b64decode(str(one.payload["resident_id"])),
            )

        # 5. Every lookup was audited, without the identifier, and the chain verifies.
        with sessions() as session:
            assert audit.verify(session) is None
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [(e.decision, e.status) for e in entries] == [("allow", 200)] * 6
        for entry in entries:
            dumped = json.dumps([entry.subjects, entry.reason, entry.fields], ensure_ascii=False)
            for plain in plaintexts:
                assert plain not in dumped
    finally:
        engine.dispose()
