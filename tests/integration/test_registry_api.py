"""The Confluent-compatible schema registry API, against a running gateway.

confluent-kafka's own SchemaRegistryClient, AvroSerializer and AvroDeserializer
are the independent client: what our connector published decodes there, and
what they serialized decodes in the exchange. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from sqlalchemy import func, select

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from exchange.kafka.clients import ensure_topics
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from schemas import SchemaStore
from tests.support.examples import CONTACT_FIELDS, household_definition
from tests.support.gateway import running_gateway
from tests.support.kafka import read_topic
from tests.support.keys import MASTER_KEY_B64, keys_for
from tests.support.publishing import publish

pytestmark = pytest.mark.integration

V1 = {
    "type": "record",
    "name": "Vehicle",
    "namespace": "gov.test",
    "fields": [{"name": "plate", "type": "string"}, {"name": "seats", "type": "int"}],
}
V2_OPTIONAL = {
    **V1,
    "fields": [*V1["fields"], {"name": "colour", "type": ["null", "string"], "default": None}],
}
V2_REQUIRED = {**V1, "fields": [*V1["fields"], {"name": "owner", "type": "string"}]}


class Registry:
    def __init__(self, url: str, publisher: str, caseworker: str, sessions) -> None:
        self.url = url
        self.publisher = publisher
        self.caseworker = caseworker
        self.sessions = sessions
        self.clients: list[SchemaRegistryClient] = []

    def call(self, method: str, path: str, key: str | None = "publisher", **kw) -> httpx.Response:
        headers = {}
        if key:
            headers["X-API-Key"] = self.publisher if key == "publisher" else self.caseworker
        return httpx.request(
            method, f"{self.url}/registry{path}", headers=headers, timeout=30, **kw
        )

    def client(self, key: str | None = None) -> SchemaRegistryClient:
        client = SchemaRegistryClient(
            {"url": f"{self.url}/registry", "basic.auth.user.info": f"x:{key or self.publisher}"}
        )
        self.clients.append(client)
        return client


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        publisher = create_key(session, actor="pub", department="market", role="publisher")
        caseworker = create_key(session, actor="cw", department="civil", role="caseworker")
    settings = Settings(database_url=database_url, linkage_key="k", master_key=MASTER_KEY_B64)
    with running_gateway(settings) as url:
        registry = Registry(url, publisher, caseworker, sessions)
        try:
            yield registry
        finally:
            for client in registry.clients:
                client.close()
    engine.dispose()


def _audit_count(registry: Registry) -> int:
    with registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_register_lookup_versions_and_ids(registry: Registry) -> None:
    assert registry.call("GET", "/subjects").json() == []
    first = registry.call(
        "POST", "/subjects/vehicle-value/versions", json={"schema": json.dumps(V1)}
    )
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
    schema_id = first.json()["id"]
    # The same schema again, formatted differently, and under another subject: same id.
    again = registry.call(
        "POST", "/subjects/vehicle-value/versions", json={"schema": json.dumps(V1, indent=4)}
    )
    assert again.json() == {"id": schema_id}
    other = registry.call("POST", "/subjects/car-value/versions", json={"schema": json.dumps(V1)})
    assert other.json() == {"id": schema_id}
    assert registry.call("GET", "/subjects/vehicle-value/versions").json() == [1]
    got = registry.call("GET", "/subjects/vehicle-value/versions/latest").json()
    assert (got["subject"], got["version"], got["id"]) == ("vehicle-value", 1, schema_id)
    assert json.loads(got["schema"]) == V1
    assert registry.call("GET", "/subjects/vehicle-value/versions/1/schema").json() == V1
    assert json.loads(registry.call("GET", f"/schemas/ids/{schema_id}").json()["schema"]) == V1
    found = registry.call("POST", "/subjects/vehicle-value", json={"schema": json.dumps(V1)})
    assert found.json()["version"] == 1
    assert sorted(registry.call("GET", "/subjects").json()) == ["car-value", "vehicle-value"]


def test_incompatible_version_is_refused_and_nothing_changes(registry: Registry) -> None:
    registry.call("POST", "/subjects/v-value/versions", json={"schema": json.dumps(V1)})
    refused = registry.call(
        "POST", "/subjects/v-value/versions", json={"schema": json.dumps(V2_REQUIRED)}
    )
    assert refused.status_code == 409
    body = refused.json()
    assert body["error_code"] == 409
    assert "owner" in body["message"]
    assert registry.call("GET", "/subjects/v-value/versions").json() == [1]

    check = registry.call(
        "POST",
        "/compatibility/subjects/v-value/versions/latest",
        params={"verbose": "true"},
        json={"schema": json.dumps(V2_REQUIRED)},
    ).json()
    assert check["is_compatible"] is False
    assert any("owner" in m for m in check["messages"])
    ok = registry.call(
        "POST",
        "/compatibility/subjects/v-value/versions/1",
        json={"schema": json.dumps(V2_OPTIONAL)},
    )
    assert ok.json() == {"is_compatible": True}

    assert (
        registry.call(
            "POST", "/subjects/v-value/versions", json={"schema": json.dumps(V2_OPTIONAL)}
        ).status_code
        == 200
    )
    assert registry.call("GET", "/subjects/v-value/versions").json() == [1, 2]

    # A subject set to NONE accepts what BACKWARD refused; the global level is unchanged.
    assert registry.call("GET", "/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert registry.call("GET", "/config/v-value").json()["error_code"] == 40408
    assert registry.call("PUT", "/config/v-value", json={"compatibility": "NONE"}).json() == {
        "compatibility": "NONE"
    }
    assert registry.call("GET", "/config/v-value").json() == {"compatibilityLevel": "NONE"}
    assert (
        registry.call(
            "POST", "/subjects/v-value/versions", json={"schema": json.dumps(V2_REQUIRED)}
        ).status_code
        == 200
    )
    assert registry.call("DELETE", "/config/v-value").json() == {"compatibilityLevel": "NONE"}
    assert registry.call("GET", "/config/v-value", params={"defaultToGlobal": "true"}).json() == {
        "compatibilityLevel": "BACKWARD"
    }
    bad_level = registry.call("PUT", "/config", json={"compatibility": "SIDEWAYS"})
    assert (bad_level.status_code, bad_level.json()["error_code"]) == (422, 42203)
    assert registry.call("PUT", "/config", json={"compatibility": "FULL_TRANSITIVE"}).json() == {
        "compatibility": "FULL_TRANSITIVE"
    }
    assert registry.call("GET", "/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    # DELETE /config answers the level it had and goes back to the default, as Confluent does.
    assert registry.call("DELETE", "/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert registry.call("GET", "/config").json() == {"compatibilityLevel": "BACKWARD"}


def test_errors_use_confluent_codes(registry: Registry) -> None:
    registry.call("POST", "/subjects/e-value/versions", json={"schema": json.dumps(V1)})
    cases = [
        (registry.call("GET", "/subjects/nope/versions"), 404, 40401),
        (registry.call("GET", "/subjects/e-value/versions/7"), 404, 40402),
        (registry.call("GET", "/subjects/e-value/versions/abc"), 422, 42202),
        (registry.call("GET", "/schemas/ids/99999"), 404, 40403),
        (
            registry.call("POST", "/subjects/e-value", json={"schema": json.dumps(V2_OPTIONAL)}),
            404,
            40403,
        ),
        (
            registry.call("POST", "/subjects/e-value/versions", json={"schema": "{not json"}),
            422,
            42201,
        ),
        (
            registry.call(
                "POST", "/subjects/e-value/versions", json={"schema": '{"type": "recordx"}'}
            ),
            422,
            42201,
        ),
        (
            registry.call(
                "POST",
                "/subjects/e-value/versions",
                json={"schema": "{}", "schemaType": "PROTOBUF"},
            ),
            422,
            42201,
        ),
        (registry.call("GET", "/subjects", key=None), 401, 40101),
        (
            registry.call(
                "POST",
                "/subjects/e-value/versions",
                key="caseworker",
                json={"schema": json.dumps(V1)},
            ),
            403,
            40301,
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error_code"] == code, response.text
        assert response.json()["message"]
    assert registry.call("GET", "/subjects/e-value/versions").json() == [1]


def test_soft_and_permanent_deletes(registry: Registry) -> None:
    schema_id = registry.call(
        "POST", "/subjects/d-value/versions", json={"schema": json.dumps(V1)}
    ).json()["id"]
    registry.call("POST", "/subjects/d-value/versions", json={"schema": json.dumps(V2_OPTIONAL)})
    hard_first = registry.call(
        "DELETE", "/subjects/d-value/versions/1", params={"permanent": "true"}
    )
    assert hard_first.json()["error_code"] == 40407
    assert registry.call("DELETE", "/subjects/d-value/versions/1").json() == 1
    again = registry.call("DELETE", "/subjects/d-value/versions/1")
    assert (again.status_code, again.json()["error_code"]) == (404, 40406)
    assert registry.call(
        "GET", "/subjects/d-value/versions", params={"deletedOnly": "true"}
    ).json() == [1]
    live_only = registry.call("POST", "/subjects/d-value", json={"schema": json.dumps(V1)})
    assert live_only.json()["error_code"] == 40403
    found = registry.call(
        "POST", "/subjects/d-value", params={"deleted": "true"}, json={"schema": json.dumps(V1)}
    ).json()
    assert (found["version"], found["id"]) == (1, schema_id)
    assert registry.call("GET", "/subjects/d-value/versions").json() == [2]
    assert registry.call(
        "GET", "/subjects/d-value/versions", params={"deleted": "true"}
    ).json() == [1, 2]
    assert registry.call("GET", "/subjects/d-value/versions/1").json()["error_code"] == 40402
    assert (
        registry.call("DELETE", "/subjects/d-value", params={"permanent": "true"}).json()[
            "error_code"
        ]
        == 40405
    )
    assert registry.call("DELETE", "/subjects/d-value").json() == [2]
    twice = registry.call("DELETE", "/subjects/d-value")
    assert (twice.status_code, twice.json()["error_code"]) == (404, 40404)
    assert registry.call("GET", "/subjects").json() == []
    assert registry.call("GET", "/subjects", params={"deleted": "true"}).json() == ["d-value"]
    assert registry.call("GET", "/subjects", params={"deletedOnly": "true"}).json() == ["d-value"]
    assert registry.call("DELETE", "/subjects/d-value", params={"permanent": "true"}).json() == [
        1,
        2,
    ]
    assert (
        registry.call("GET", "/subjects/d-value/versions", params={"deleted": "true"}).json()[
            "error_code"
        ]
        == 40401
    )
    # Records already on a topic stay decodable: the id still resolves.
    assert registry.call("GET", f"/schemas/ids/{schema_id}").status_code == 200
    with_max = registry.call("GET", f"/schemas/ids/{schema_id}", params={"fetchMaxId": "true"})
    assert with_max.json()["maxId"] == schema_id + 1  # V2_OPTIONAL's, the last given


def test_every_registry_request_is_audited(registry: Registry) -> None:
    before = _audit_count(registry)
    registry.call("GET", "/subjects")
    registry.call("GET", "/subjects", key=None)
    registry.call(
        "POST", "/subjects/a-value/versions", key="caseworker", json={"schema": json.dumps(V1)}
    )
    assert _audit_count(registry) == before + 3
    with registry.sessions() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(3)).all()
    assert [(e.decision, e.status) for e in reversed(last)] == [
        ("allow", 200),
        ("deny", 401),
        ("deny", 403),
    ]


def test_confluent_client_round_trips_both_ways(
    registry: Registry, kafka: LocalKafka, tmp_path: Path
) -> None:
    # 1. The exchange's connector publishes; Confluent's AvroDeserializer reads it back.
    department = f"dept_{uuid.uuid4().hex[:8]}"
    (tmp_path / "p.csv").write_text(
        "id,number,surname,given,dob,sex\nP1,11010519491231002X,王,秀英,1949-12-31,FEMALE\n",
        encoding="utf-8",
    )
    household_definition(
        tmp_path,
        name="c.toml",
        connector_id="compat",
        department=department,
        csv="p.csv",
        key="id",
        # The export's own column names, and sex already in the standard's words.
        fields={"resident_id": {"from": "number"}, "sex": {"from": "sex"}},
        without=CONTACT_FIELDS,
    )
    store = SchemaStore(registry.sessions)
    report = publish(kafka.bootstrap_servers, registry.sessions, tmp_path / "c.toml", store=store)
    assert report.published == 1
    published = read_topic(kafka.bootstrap_servers, "std.person.v1", department.encode())
    [value] = [m.value for m in published]
    deserializer = AvroDeserializer(registry.client())
    record = deserializer(value, SerializationContext("std.person.v1", MessageField.VALUE))
    # The sensitive identifier left the department encrypted; its blind index travels beside it.
    assert isinstance(record["resident_id"], bytes)
    assert b"11010519491231002X" not in record["resident_id"]
    assert len(record["resident_id_bidx"]) == 64
    plain = keys_for(registry.sessions).cipher.decrypt(
        "person", "resident_id", f"{department}:P1", record["resident_id"]
    )
    assert json.loads(plain) == "11010519491231002X"
    assert record["full_name"] == "王秀英"
    assert record["birth_date"] == date(1949, 12, 31)

    # 2. Confluent's AvroSerializer registers through our API and produces with librdkafka;
    #    the exchange decodes what arrives on the topic.
    topic = f"std.vehicle_{uuid.uuid4().hex[:6]}.v1"
    ensure_topics(kafka.bootstrap_servers, [topic], partitions=1)
    serializer = AvroSerializer(registry.client(), json.dumps(V1))
    payload = serializer(
        {"plate": "京A12345", "seats": 5}, SerializationContext(topic, MessageField.VALUE)
    )
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "all"})
    producer.produce(topic, value=payload, key=b"v1")
    assert producer.flush(30) == 0
    [arrived] = [m.value for m in read_topic(kafka.bootstrap_servers, topic, b"")]
    schema_id, decoded = AvroSerde(store.schema_text).decode(arrived)
    assert decoded == {"plate": "京A12345", "seats": 5}
    assert (
        registry.call("GET", f"/subjects/{topic}-value/versions/latest").json()["id"] == schema_id
    )

    # 3. The client sees our registry's errors as Confluent's.
    client = registry.client()
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(f"{topic}-value", Schema(json.dumps(V2_REQUIRED), "AVRO"))
    assert refused.value.http_status_code == 409
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_latest_version("no-such-subject")
    assert missing.value.error_code == 40401
    assert client.get_compatibility() == "BACKWARD"


def test_confluent_readers_get_each_subjects_own_decimal_and_timestamp(
    registry: Registry,
) -> None:
    # Two subjects whose schemas differ only in a decimal's scale and a timestamp's unit:
    # once given one id (and the first text), so a fresh reader of B's records got A's
    # scale (values 100x off) and A's unit.
    def schema(scale: int, unit: str) -> str:
        return json.dumps({
            "type": "record", "name": "Payment", "namespace": "gov.test",
            "fields": [
                {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                            "precision": 10, "scale": scale}},
                {"name": "at", "type": {"type": "long", "logicalType": unit}},
            ],
        })  # fmt: skip

    at = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)
    sent = {
        "a": ({"amount": Decimal("123.45"), "at": at}, schema(2, "timestamp-millis")),
        "b": ({"amount": Decimal("1.2345"), "at": at}, schema(4, "timestamp-micros")),
    }
    ids, payloads = {}, {}
    for name, (record, text) in sent.items():
        topic = f"payments_{name}_{uuid.uuid4().hex[:6]}"
        context = SerializationContext(topic, MessageField.VALUE)
        payloads[name] = (AvroSerializer(registry.client(), text)(record, context), context)
        ids[name] = int.from_bytes(payloads[name][0][1:5], "big")
    assert ids["a"] != ids["b"]
    for name, (payload, context) in payloads.items():
        # A fresh client: nothing cached from the serializer.
        record = AvroDeserializer(registry.client())(payload, context)
        assert record["amount"] == sent[name][0]["amount"]
        expected = at if name == "b" else at.replace(microsecond=123000)
        assert record["at"] == expected


def test_the_compatibility_check_gives_registrations_verdict(registry: Registry) -> None:
    registry.call("PUT", "/config/t-value", json={"compatibility": "BACKWARD_TRANSITIVE"})
    empty = {"type": "record", "name": "R", "namespace": "gov.test", "fields": []}
    with_default = {**empty, "fields": [{"name": "a", "type": "int", "default": 0}]}
    required = {**empty, "fields": [{"name": "a", "type": "int"}]}

    def check(path: str, schema: dict[str, object]) -> dict[str, object]:
        answer = registry.call(
            "POST", f"/compatibility/subjects/{path}", params={"verbose": "true"},
            json={"schema": json.dumps(schema)},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    # No versions yet: anything is compatible, as registering it would be.
    assert check("t-value/versions", required)["is_compatible"] is True
    for schema in (empty, with_default):
        registered = registry.call("POST", "/subjects/t-value/versions",
                                   json={"schema": json.dumps(schema)})  # fmt: skip
        assert registered.status_code == 200, registered.text
    # Against the latest version alone it would do; against every version, as the
    # transitive level makes registration check, version 1 has no `a`.
    assert check("t-value/versions/latest", required)["is_compatible"] is True
    verdict = check("t-value/versions", required)
    assert verdict["is_compatible"] is False
    assert any("against version 1" in m for m in verdict["messages"])  # type: ignore[attr-defined]
    refused = registry.call("POST", "/subjects/t-value/versions",
                            json={"schema": json.dumps(required)})  # fmt: skip
    assert (refused.status_code, refused.json()["error_code"]) == (409, 409)


def test_the_lookups_confluent_clients_and_tools_use(registry: Registry) -> None:
    client = registry.client()
    first = client.register_schema("tools-a-value", Schema(json.dumps(V1), "AVRO"))
    assert client.register_schema("tools-b-value", Schema(json.dumps(V1), "AVRO")) == first
    second = client.register_schema("tools-a-value", Schema(json.dumps(V2_OPTIONAL), "AVRO"))
    assert client.get_schema_types() == ["AVRO"]
    assert client.get_contexts() == ["."]
    assert sorted(client.get_subjects_by_schema_id(first)) == ["tools-a-value", "tools-b-value"]
    assert sorted((v.subject, v.version) for v in client.get_schema_versions(first)) == [
        ("tools-a-value", 1),
        ("tools-b-value", 1),
    ]
    assert client.test_compatibility_all_versions(
        "tools-a-value", Schema(json.dumps(V2_OPTIONAL), "AVRO")
    )
    assert not client.test_compatibility_all_versions(
        "tools-a-value", Schema(json.dumps(V2_REQUIRED), "AVRO")
    )
    assert registry.call("GET", f"/schemas/ids/{second}/schema").json() == V2_OPTIONAL
    assert registry.call("GET", "/").json() == {}
    listed = registry.call("GET", "/schemas", params={"subjectPrefix": "tools-a"}).json()
    assert [(s["subject"], s["version"], s["id"]) for s in listed] == [
        ("tools-a-value", 1, first),
        ("tools-a-value", 2, second),
    ]
    latest = registry.call(
        "GET", "/schemas", params={"subjectPrefix": "tools-", "latestOnly": "true"}
    ).json()
    assert [(s["subject"], s["id"]) for s in latest] == [
        ("tools-a-value", second),
        ("tools-b-value", first),
    ]
    missing = registry.call("GET", "/schemas/ids/999999/subjects")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 40403)


def test_the_registry_api_has_a_rate_limit_of_its_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        key = create_key(session, actor="svc", department="market", role="publisher")
    settings = Settings(
        database_url=url,
        linkage_key="k",
        master_key=MASTER_KEY_B64,
        gateway={"registry_rate_limit_per_minute": 1, "registry_rate_limit_burst": 2,
                 "rate_limit_per_minute": 1, "rate_limit_burst": 3},
    )  # fmt: skip
    headers = {"X-API-Key": key}
    try:
        with running_gateway(settings) as base:
            registry_answers = [
                httpx.get(f"{base}/registry/subjects", headers=headers, timeout=30)
                for _ in range(3)
            ]
            assert [a.status_code for a in registry_answers] == [200, 200, 429]
            spent = registry_answers[-1]
            assert spent.json()["error_code"] == 42901
            assert int(spent.headers["Retry-After"]) >= 1
            # The other routes count apart: three more requests are within their burst.
            others = [
                httpx.get(f"{base}/v1/catalogue/datasets", headers=headers, timeout=30)
                for _ in range(3)
            ]
            assert all(a.status_code != 429 for a in others), [a.text for a in others]
    finally:
        engine.dispose()
