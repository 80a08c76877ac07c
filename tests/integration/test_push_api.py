"""The HTTP push API (``POST /v1/publish/{connector_id}``) against a running gateway.

A real gateway (uvicorn on a free port) publishes to the session's Kafka broker,
on SQLite and on PostgreSQL. Every test uses its own department and connector id:
the standard topics are shared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.errors import BrokerError
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from exchange.kafka.producer import Producer
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from exchange.security import manifest
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support.deadletters import dead_letters
from tests.support.examples import household_definition
from tests.support.gateway import running_gateway
from tests.support.kafka import read_topic
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64, keys_for
from tests.support.manifests import covered_batches, end_offsets, read, source_ids

pytestmark = pytest.mark.integration

PUSH_SOURCE = {"type": "push", "key": "local_id"}


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


def person(local_id: str | None, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "local_id": local_id,
        "id_number": rid("11010519800517001"),
        "surname": "李",
        "given": "伟",
        "dob": "1980-05-17",
        "sex": 1,
        "division": "110105",
        "phone": "13800000001",
    }
    if local_id is None:
        del record["local_id"]
    record.update(overrides)
    return record


@dataclass
class Gateway:
    url: str
    sessions: sessionmaker[Session]
    bootstrap: str
    department: str
    connector_id: str
    publisher: str  # a publisher of the connector's department
    stranger: str  # a publisher of another department
    caseworker: str  # a caseworker of the connector's department

    def post(
        self, records: Any, *, key: str | None, connector_id: str | None = None
    ) -> httpx.Response:
        headers = {"X-API-Key": key} if key is not None else {}
        body = records if isinstance(records, dict) else {"records": records}
        return httpx.post(
            f"{self.url}/v1/publish/{connector_id or self.connector_id}",
            json=body,
            headers=headers,
            timeout=120,
        )

    def audit_entries(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all())

    def audit_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0

    def published_keys(self) -> set[str]:
        found = read_topic(self.bootstrap, "std.person.v1", f"{self.department}:".encode())
        return {m.key.decode() for m in found}

    def dead_letters(self) -> list[dict[str, Any]]:
        return dead_letters(self.bootstrap, self.sessions, self.department)


@pytest.fixture
def gateway(kafka: LocalKafka, database_url: str, tmp_path: Path) -> Iterator[Gateway]:
    department = f"push_{uuid.uuid4().hex[:10]}"
    connector_id = f"push-{department}"
    household_definition(
        tmp_path,
        name=f"{connector_id}.toml",
        connector_id=connector_id,
        department=department,
        source=PUSH_SOURCE,
    )
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        publisher = create_key(session, actor="pub", department=department, role="publisher")
        stranger = create_key(
            session, actor="other", department=f"{department}_other", role="publisher"
        )
        caseworker = create_key(session, actor="cw", department=department, role="caseworker")
    settings = Settings(
        database_url=database_url,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
        connectors_dir=tmp_path,
        kafka={"bootstrap_servers": kafka.bootstrap_servers},
    )
    try:
        with running_gateway(settings) as url:
            yield Gateway(
                url,
                sessions,
                kafka.bootstrap_servers,
                department,
                connector_id,
                publisher,
                stranger,
                caseworker,
            )
        with sessions() as session:
            assert audit.verify(session) is None
    finally:
        engine.dispose()


def test_a_mixed_batch_reconciles_and_publishes_exactly_the_valid_records(
    gateway: Gateway,
) -> None:
    records = [
        person("P1", sex=2, surname="王", given="秀英", dob="1949-12-31"),  # 0 valid
        person("P2", id_number=_wrong_check(rid("11010519800517001"))),  # 1 check character
        person("P3", phone=None, division=110105, sex="1"),  # 2 valid: a number, a null
        person("P4", sex="X"),  # 3 unknown code
        person(None),  # 4 no key
        person("P1", given="重复"),  # 5 duplicate key within the batch
        # 6 valid once transformed: surrounding spaces, lower-case check character
        person("P5", dob="19900709", id_number=f" {rid('44010619900709019').lower()} "),
        person("P6", dob="1975-02-30"),  # 7 impossible date
    ]
    before = gateway.audit_count()

    response = gateway.post(records, key=gateway.publisher)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["connector"] == gateway.connector_id
    assert body["received"] == len(records) == body["published"] + body["rejected"]
    assert (body["published"], body["rejected"]) == (3, 5)
    rejected = {r["index"]: r for r in body["rejections"]}
    assert {i: [x["code"] for x in r["reasons"]] for i, r in rejected.items()} == {
        1: ["resident_id.check_character"],
        3: ["code.unknown"],
        4: ["key.missing"],
        5: ["key.duplicate"],
        7: ["date.invalid"],
    }
    assert {i: r["source_id"] for i, r in rejected.items()} == {
        1: "P2",
        3: "P4",
        4: None,
        5: "P1",
        7: "P6",
    }
    for rejection in body["rejections"]:
        for reason in rejection["reasons"]:
            assert reason["message"]
            assert reason["field"]

    prefix = gateway.department
    assert gateway.published_keys() == {f"{prefix}:P1", f"{prefix}:P3", f"{prefix}:P5"}
    dead = {d["line"]: d for d in gateway.dead_letters()}
    assert set(dead) == {2, 4, 5, 6, 8}  # the record's number within its batch, from 1
    for line, entry in dead.items():
        assert json.loads(entry["raw"]) == records[line - 1]
        assert entry["connector"] == gateway.connector_id
        assert entry["department"] == gateway.department

    entries = gateway.audit_entries()
    assert len(entries) == before + 1
    last = entries[-1]
    assert (last.action, last.decision, last.status) == ("publish.batch", "allow", 200)
    assert (last.actor, last.department, last.role) == ("pub", gateway.department, "publisher")


def _wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("stranger", 403, "forbidden"),
        ("caseworker", 403, "forbidden"),
        ("nobody", 401, "unauthenticated"),
        ("wrong", 401, "unauthenticated"),
    ],
)
def test_a_denied_request_publishes_nothing_and_is_audited(
    gateway: Gateway, who: str, status: int, code: str
) -> None:
    key = {
        "stranger": gateway.stranger,
        "caseworker": gateway.caseworker,
        "nobody": None,
        "wrong": gateway.publisher[:-2] + "zz",
    }[who]
    before = gateway.audit_count()

    response = gateway.post([person("D1"), person("D2")], key=key)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert "Traceback" not in response.text
    assert gateway.published_keys() == set()
    assert gateway.dead_letters() == []
    entries = gateway.audit_entries()
    assert len(entries) == before + 1
    last = entries[-1]
    assert (last.action, last.decision, last.status) == ("publish.batch", "deny", status)
    assert last.dataset == "person"
    assert last.request_id == response.headers["x-request-id"]


def test_the_publisher_of_the_department_is_still_allowed_after_denials(
    gateway: Gateway,
) -> None:
    assert gateway.post([person("E1")], key=gateway.stranger).status_code == 403
    assert gateway.post([person("E1")], key=gateway.caseworker).status_code == 403
    ok = gateway.post([person("E1")], key=gateway.publisher)
    assert ok.status_code == 200, ok.text
    assert ok.json()["published"] == 1
    assert gateway.published_keys() == {f"{gateway.department}:E1"}
    assert [(e.decision, e.status) for e in gateway.audit_entries()] == [
        ("deny", 403),
        ("deny", 403),
        ("allow", 200),
    ]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unknown-connector", 404),
        ("empty-batch", 422),
        ("too-many-records", 422),
        ("not-a-batch", 422),
    ],
)
def test_a_refused_request_publishes_nothing(gateway: Gateway, case: str, status: int) -> None:
    response = _refused_request(gateway, case)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text
    assert gateway.published_keys() == set()
    assert gateway.dead_letters() == []
    # Issue 17, finding 6: the entry records the status answered, not allow/200.
    entry = gateway.audit_entries()[-1]
    assert entry.request_id == response.headers["x-request-id"]
    assert (entry.action, entry.status) == ("publish.batch", status)
    assert entry.decision == ("allow" if status == 404 else "deny")


def _refused_request(gateway: Gateway, case: str) -> httpx.Response:
    if case == "unknown-connector":
        return gateway.post([person("U1")], key=gateway.publisher, connector_id="no-such-one")
    if case == "empty-batch":
        return gateway.post([], key=gateway.publisher)
    if case == "too-many-records":
        return gateway.post([person(f"M{i}") for i in range(1001)], key=gateway.publisher)
    return gateway.post({"rows": [person("N1")]}, key=gateway.publisher)


def test_a_batch_of_exactly_1000_records_is_accepted(gateway: Gateway) -> None:
    ids = [f"K{i:04d}" for i in range(1000)]
    response = gateway.post([person(i) for i in ids], key=gateway.publisher)

    assert response.status_code == 200, response.text
    assert response.json()["published"] == 1000
    assert gateway.published_keys() == {f"{gateway.department}:{i}" for i in ids}


def test_an_unknown_connector_is_answered_only_after_authentication_and_audited(
    gateway: Gateway,
) -> None:
    before = gateway.audit_count()
    anonymous = gateway.post([person("U1")], key=None, connector_id="no-such-one")
    assert anonymous.status_code == 401, anonymous.text  # nothing learnt about connectors
    known = gateway.post([person("U1")], key=gateway.publisher, connector_id="no-such-one")
    assert known.status_code == 404, known.text
    assert known.json()["code"] == "not_found"

    entries = gateway.audit_entries()
    assert len(entries) == before + 2
    assert [(e.action, e.decision, e.status) for e in entries[-2:-1]] == [
        ("publish.batch", "deny", 401)
    ]
    assert (entries[-1].action, entries[-1].actor) == ("publish.batch", "pub")
    assert entries[-1].request_id == known.headers["x-request-id"]
    assert gateway.published_keys() == set()


def test_a_connector_that_is_not_a_push_connector_is_not_found(
    gateway: Gateway, tmp_path: Path
) -> None:
    household_definition(
        tmp_path,
        name="file-one.toml",
        connector_id="file-one",
        department=gateway.department,
        csv="people.csv",
    )

    response = gateway.post([person("F1")], key=gateway.publisher, connector_id="file-one")

    assert response.status_code == 404, response.text  # not a server error
    assert response.json()["code"] == "not_found"
    assert "not a push connector" in response.json()["detail"]
    assert gateway.published_keys() == set()


@pytest.mark.parametrize("case", ["empty-batch", "too-many-records", "not-a-batch"])
def test_a_malformed_batch_is_audited(gateway: Gateway, case: str) -> None:
    before = gateway.audit_count()
    response = _refused_request(gateway, case)
    assert response.status_code == 422
    assert gateway.audit_count() == before + 1


def _batches(gateway: Gateway, start: dict[int, int]) -> list[Any]:
    """The department's batches on the topic since ``start``, read committed, each checked
    against its signed manifest."""
    return covered_batches(
        read(gateway.bootstrap, "std.person.v1", start),
        gateway.department,
        keys_for(gateway.sessions).keystore.public_keys(gateway.department),
        AvroSerde(SchemaStore(gateway.sessions).schema_text),
    )


def test_each_batch_is_one_transaction_with_its_signed_manifests(gateway: Gateway) -> None:
    start = end_offsets(gateway.bootstrap, "std.person.v1")
    first_ids = [f"B{i}" for i in range(12)]
    records = [person(i) for i in first_ids] + [person("BX", sex="X")]  # one dead letter
    first = gateway.post(records, key=gateway.publisher)
    assert first.status_code == 200, first.text
    second = gateway.post([person("C1"), person("C2")], key=gateway.publisher)
    assert second.status_code == 200, second.text

    batches = _batches(gateway, start)
    assert sorted(source_ids(batches)) == sorted([*first_ids, "C1", "C2"])
    names = sorted({b.manifest.batch for b in batches}, key=lambda n: int(n.rsplit("/", 1)[1]))
    assert len(names) == 2  # one a request, numbered in turn
    run, sequence = names[0].rsplit("/", 1)
    assert names[1] == f"{run}/{int(sequence) + 1}"
    assert sorted(source_ids([b for b in batches if b.manifest.batch == names[0]])) == sorted(
        first_ids
    )
    assert {b.manifest.connector_id for b in batches} == {gateway.connector_id}

    # Confluent's own deserializer reads a manifest through the exchange's schema registry.
    client = SchemaRegistryClient(
        {"url": f"{gateway.url}/registry", "basic.auth.user.info": f"x:{gateway.publisher}"}
    )
    try:
        deserializer = AvroDeserializer(client)
        on_wire = read(gateway.bootstrap, "std.person.v1", start)
        values = [
            m.value
            for ms in on_wire.values()
            for m in ms
            if m.key is None
            and dict(m.headers or []).get(manifest.MANIFEST) == manifest.VERSION
            and dict(m.headers)[manifest.BATCH].decode() in names
        ]
        assert len(values) == len(batches)
        decoded = [
            deserializer(v, SerializationContext("std.person.v1", MessageField.VALUE))
            for v in values
        ]
        assert sorted(d["batch"] + str(d["partition"]) for d in decoded) == sorted(
            b.manifest.batch + str(b.partition) for b in batches
        )
        by_place = {(b.manifest.batch, b.partition): b.manifest.as_record() for b in batches}
        for record in decoded:
            assert record == by_place[record["batch"], record["partition"]]
    finally:
        client.close()


def test_a_batch_kafka_refuses_is_aborted_answered_503_and_sent_again_once(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = end_offsets(gateway.bootstrap, "std.person.v1")
    real_commit = Producer.commit

    def refused(self: Producer, timeout: float = 120.0) -> None:
        raise BrokerError("injected: the broker refused the commit")

    monkeypatch.setattr(Producer, "commit", refused)
    failed = gateway.post([person("F1"), person("F2")], key=gateway.publisher)
    assert failed.status_code == 503, failed.text
    assert _batches(gateway, start) == []  # nothing of the aborted batch is visible
    in_log = read(gateway.bootstrap, "std.person.v1", start, committed=False)
    assert any(m.key == f"{gateway.department}:F1".encode() for ms in in_log.values() for m in ms)

    monkeypatch.setattr(Producer, "commit", real_commit)
    again = gateway.post([person("F1"), person("F2")], key=gateway.publisher)
    assert again.status_code == 200, again.text
    assert sorted(source_ids(_batches(gateway, start))) == ["F1", "F2"]
