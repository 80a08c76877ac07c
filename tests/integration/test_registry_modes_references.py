"""Registry modes, explicit ids and versions, schema references and ``exchange schemas
import``, against running gateways, through confluent-kafka's own client.

confluent-kafka's SchemaRegistryClient, AvroSerializer and AvroDeserializer are the
independent judge: what they send is what a Confluent user sends, and what they read
back must be what Confluent's registry would answer. Runs on SQLite and PostgreSQL
(PostgreSQL's id sequence must not collide with imported ids).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import SecretStr
from typer.testing import CliRunner

from exchange.cli.main import app as cli_app
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.identity.apikeys import create_key
from tests.support.cli import isolate
from tests.support.gateway import running_gateway
from tests.support.keys import MASTER_KEY_B64
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

V1: dict[str, Any] = {
    "type": "record",
    "name": "Vehicle",
    "namespace": "gov.test",
    "fields": [{"name": "plate", "type": "string"}, {"name": "seats", "type": "int"}],
}
V2_OPTIONAL: dict[str, Any] = {
    **V1,
    "fields": [*V1["fields"], {"name": "colour", "type": ["null", "string"], "default": None}],
}
V2_REQUIRED: dict[str, Any] = {**V1, "fields": [*V1["fields"], {"name": "owner", "type": "string"}]}
V3_OPTIONAL: dict[str, Any] = {
    **V1,
    "fields": [*V2_OPTIONAL["fields"], {"name": "doors", "type": ["null", "int"], "default": None}],
}
ADDRESS: dict[str, Any] = {
    "type": "record",
    "name": "Address",
    "namespace": "gov.test",
    "fields": [{"name": "street", "type": "string"}, {"name": "city", "type": "string"}],
}
ADDRESS_V2: dict[str, Any] = {
    **ADDRESS,
    "fields": [
        *ADDRESS["fields"],
        {"name": "postcode", "type": ["null", "string"], "default": None},
    ],
}
PERSON: dict[str, Any] = {
    "type": "record",
    "name": "Person",
    "namespace": "gov.test",
    "fields": [{"name": "name", "type": "string"}, {"name": "home", "type": "gov.test.Address"}],
}
PERSON_V2_OPTIONAL: dict[str, Any] = {
    **PERSON,
    "fields": [
        *PERSON["fields"],
        {"name": "nickname", "type": ["null", "string"], "default": None},
    ],
}
PERSON_V2_REQUIRED: dict[str, Any] = {
    **PERSON,
    "fields": [*PERSON["fields"], {"name": "age", "type": "int"}],
}
COLOUR: dict[str, Any] = {
    "type": "enum",
    "name": "Colour",
    "namespace": "gov.test",
    "symbols": ["RED", "BLUE"],
}


def avro(schema: dict[str, Any], references: list[SchemaReference] | None = None) -> Schema:
    return Schema(json.dumps(schema), "AVRO", references or [])


def address_ref(version: int = 1, subject: str = "address") -> SchemaReference:
    return SchemaReference("gov.test.Address", subject, version)


def refused(call: Any, *args: Any, **kwargs: Any) -> SchemaRegistryError:
    """The SchemaRegistryError ``call(*args, **kwargs)`` raises."""
    with pytest.raises(SchemaRegistryError) as caught:
        call(*args, **kwargs)
    return caught.value


class Registry:
    """One running gateway over one database, with a publisher, an admin and a caseworker."""

    def __init__(self, url: str, publisher: str, admin: str, caseworker: str) -> None:
        self.url = url
        self.base = f"{url}/registry"
        self.publisher = publisher
        self.admin = admin
        self.caseworker = caseworker
        self.clients: list[SchemaRegistryClient] = []

    def call(self, method: str, path: str, key: str = "publisher", **kw: Any) -> httpx.Response:
        plaintext = {"publisher": self.publisher, "admin": self.admin}.get(key, self.caseworker)
        return httpx.request(
            method, f"{self.base}{path}", headers={"X-API-Key": plaintext}, timeout=30, **kw
        )

    def client(self, key: str = "publisher") -> SchemaRegistryClient:
        """A fresh SchemaRegistryClient (empty caches) with ``key``'s basic auth."""
        plaintext = {"publisher": self.publisher, "admin": self.admin}.get(key, self.caseworker)
        client = SchemaRegistryClient({"url": self.base, "basic.auth.user.info": f"x:{plaintext}"})
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextmanager
def serving(database_url: str) -> Iterator[Registry]:
    """A gateway over ``database_url`` (migrated), with its keys; stopped afterwards."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        sessions = session_factory(engine)
        with transaction(sessions) as session:
            publisher = create_key(session, actor="pub", department="market", role="publisher")
            admin = create_key(session, actor="adm", department="market", role="admin")
            caseworker = create_key(session, actor="cw", department="civil", role="caseworker")
        settings = Settings(
            database_url=database_url,
            linkage_key=SecretStr("k"),
            master_key=SecretStr(MASTER_KEY_B64),
        )
        with running_gateway(settings) as url:
            registry = Registry(url, publisher, admin, caseworker)
            try:
                yield registry
            finally:
                registry.close()
    finally:
        engine.dispose()


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    with serving(database_url) as running:
        yield running


@pytest.fixture
def other_database_url(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second empty database on the same backend as ``database_url``."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'target.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def _parsed(schema: Schema) -> Any:
    assert schema.schema_str is not None
    return json.loads(schema.schema_str)


# -- modes -------------------------------------------------------------------------------


def test_global_mode_readonly_import_and_reset(registry: Registry) -> None:
    admin = registry.client("admin")
    publisher = registry.client()
    assert publisher.get_global_mode() == "READWRITE"
    first = publisher.register_schema("vehicle-value", avro(V1))

    # Only the admin role sets the global mode; an unknown mode is Confluent's 42204.
    denied = refused(publisher.update_global_mode, "READONLY")
    assert (denied.http_status_code, denied.error_code) == (403, 40301)
    invalid = refused(admin.update_global_mode, "SIDEWAYS")
    assert (invalid.http_status_code, invalid.error_code) == (422, 42204)

    # IMPORT is refused where live versions exist, unless forced.
    busy = refused(admin.update_global_mode, "IMPORT")
    assert (busy.http_status_code, busy.error_code) == (422, 42205)
    assert busy.error_message == "Cannot import since found existing subjects"
    assert admin.get_global_mode() == "READWRITE"
    assert admin.update_global_mode("IMPORT", force=True) == "IMPORT"
    assert publisher.get_global_mode() == "IMPORT"
    # In IMPORT, a registration must carry its id.
    no_id = registry.call(
        "POST", "/subjects/vehicle-value/versions", json={"schema": json.dumps(V2_OPTIONAL)}
    )
    assert (no_id.status_code, no_id.json()["error_code"]) == (422, 42205)
    assert "not in read-write mode" in no_id.json()["message"]

    assert admin.update_global_mode("READONLY") == "READONLY"
    # No subject mode of its own; the global one applies to it.
    own = registry.call("GET", "/mode/vehicle-value")
    assert (own.status_code, own.json()["error_code"]) == (404, 40409)
    applies = registry.call("GET", "/mode/vehicle-value", params={"defaultToGlobal": "true"})
    assert applies.json() == {"mode": "READONLY"}

    writes = {
        "register": registry.call(
            "POST", "/subjects/vehicle-value/versions", json={"schema": json.dumps(V2_OPTIONAL)}
        ),
        "delete version": registry.call("DELETE", "/subjects/vehicle-value/versions/1"),
        "delete subject": registry.call("DELETE", "/subjects/vehicle-value"),
        "subject config": registry.call(
            "PUT", "/config/vehicle-value", json={"compatibility": "NONE"}
        ),
    }
    for what, response in writes.items():
        assert (response.status_code, response.json()["error_code"]) == (422, 42205), what
        assert response.json()["message"] == "Subject vehicle-value is in read-only mode", what
    global_config = registry.call("PUT", "/config", json={"compatibility": "NONE"})
    assert (global_config.status_code, global_config.json()["error_code"]) == (422, 42205)
    # What the subject holds already is answered (Confluent looks up before the mode check).
    again = registry.call(
        "POST", "/subjects/vehicle-value/versions", json={"schema": json.dumps(V1)}
    )
    assert again.json() == {"id": first}
    # Reads go on, lookups too.
    assert registry.client().get_latest_version("vehicle-value").version == 1
    assert registry.client().lookup_schema("vehicle-value", avro(V1)).schema_id == first
    assert registry.call("GET", "/config").json() == {"compatibilityLevel": "BACKWARD"}

    # DELETE /mode answers the old mode and goes back to READWRITE (admin only).
    assert registry.call("DELETE", "/mode").status_code == 403
    assert registry.call("DELETE", "/mode", key="admin").json() == {"mode": "READONLY"}
    assert publisher.get_global_mode() == "READWRITE"
    assert registry.call("DELETE", "/mode", key="admin").json() == {"mode": "READWRITE"}
    assert publisher.register_schema("vehicle-value", avro(V2_OPTIONAL)) != first
    assert publisher.get_versions("vehicle-value") == [1, 2]

    # Soft-deleted versions are not live: IMPORT needs no force then.
    assert publisher.delete_subject("vehicle-value") == [1, 2]
    assert admin.update_global_mode("IMPORT") == "IMPORT"
    assert admin.update_global_mode("READWRITE") == "READWRITE"


def test_subject_mode_lifecycle(registry: Registry) -> None:
    client = registry.client()
    missing = refused(client.get_mode, "s-value")
    assert (missing.http_status_code, missing.error_code) == (404, 40409)
    assert registry.call("GET", "/mode/s-value", params={"defaultToGlobal": "true"}).json() == {
        "mode": "READWRITE"
    }
    unset = refused(client.delete_mode, "s-value")
    assert (unset.http_status_code, unset.error_code) == (404, 40401)
    invalid = refused(client.update_mode, "s-value", "WRITEONLY")
    assert (invalid.http_status_code, invalid.error_code) == (422, 42204)
    by_reader = registry.call("PUT", "/mode/s-value", key="caseworker", json={"mode": "READONLY"})
    assert (by_reader.status_code, by_reader.json()["error_code"]) == (403, 40301)

    schema_id = client.register_schema("s-value", avro(V1))
    assert client.update_mode("s-value", "READONLY") == "READONLY"
    assert client.get_mode("s-value") == "READONLY"
    assert client.get_global_mode() == "READWRITE"

    fresh = registry.client()  # no cached registrations
    blocked = refused(fresh.register_schema, "s-value", avro(V2_OPTIONAL))
    assert (blocked.http_status_code, blocked.error_code) == (422, 42205)
    assert blocked.error_message == "Subject s-value is in read-only mode"
    for call, args in [
        (fresh.delete_version, ("s-value", 1)),
        (fresh.delete_subject, ("s-value",)),
        (fresh.set_compatibility, ("s-value", "NONE")),
    ]:
        error = refused(call, *args)
        assert (error.http_status_code, error.error_code) == (422, 42205), call
        assert error.error_message == "Subject s-value is in read-only mode", call
    delete_config = registry.call("DELETE", "/config/s-value")
    assert delete_config.json()["error_code"] == 42205
    assert fresh.get_versions("s-value") == [1]
    assert fresh.get_version("s-value", 1).schema_id == schema_id
    # Another subject is not affected.
    assert fresh.register_schema("t-value", avro(V1)) == schema_id

    # IMPORT on a subject with live versions only by force.
    busy = refused(fresh.update_mode, "s-value", "IMPORT")
    assert (busy.error_code, busy.error_message) == (
        42205,
        "Cannot import since found existing subjects",
    )
    assert fresh.update_mode("s-value", "IMPORT", force=True) == "IMPORT"
    # A subject without versions goes to IMPORT without force, whatever other subjects hold.
    assert fresh.update_mode("u-value", "IMPORT") == "IMPORT"

    assert fresh.delete_mode("s-value") == "IMPORT"
    assert refused(fresh.get_mode, "s-value").error_code == 40409
    assert fresh.register_schema("s-value", avro(V2_OPTIONAL)) != schema_id
    assert fresh.get_versions("s-value") == [1, 2]


def test_import_mode_keeps_ids_and_versions_and_fresh_ids_do_not_collide(
    registry: Registry,
) -> None:
    client = registry.client()
    base = client.register_schema("base-value", avro(COLOUR))
    assert client.update_mode("imp-value", "IMPORT") == "IMPORT"

    def post(subject: str, schema: dict[str, Any], **extra: Any) -> httpx.Response:
        return registry.call(
            "POST", f"/subjects/{subject}/versions", json={"schema": json.dumps(schema), **extra}
        )

    # Ids just ahead of what the registry gives next, a version number with a gap, and an
    # incompatible schema (V2_REQUIRED breaks BACKWARD): kept as given, nothing checked.
    assert post("imp-value", V1, id=base + 2, version=3).json() == {"id": base + 2}
    assert post("imp-value", V2_REQUIRED, id=base + 1).json() == {"id": base + 1}
    assert client.get_versions("imp-value") == [3, 4]
    fresh_a = client.register_schema("fresh-a-value", avro(ADDRESS))
    assert fresh_a not in (base, base + 1, base + 2)
    assert post("imp-value", V2_OPTIONAL, id=1000, version=7).json() == {"id": 1000}
    assert client.get_versions("imp-value") == [3, 4, 7]

    no_id = post("imp-value", V3_OPTIONAL)
    assert (no_id.status_code, no_id.json()["error_code"]) == (422, 42205)
    assert "not in read-write mode" in no_id.json()["message"]
    overwrite = post("imp-value", V3_OPTIONAL, id=base + 2, version=8)
    assert (overwrite.status_code, overwrite.json()["error_code"]) == (422, 42205)
    assert (
        overwrite.json()["message"] == f"Overwrite new schema with id {base + 2} is not permitted."
    )
    # Replaying an import changes nothing.
    assert post("imp-value", V1, id=base + 2, version=3).json() == {"id": base + 2}
    assert post("imp-value", V2_OPTIONAL, id=1000, version=7).json() == {"id": 1000}
    assert client.get_versions("imp-value") == [3, 4, 7]

    reader = registry.client()
    for subject, version, schema_id, schema in [
        ("imp-value", 3, base + 2, V1),
        ("imp-value", 4, base + 1, V2_REQUIRED),
        ("imp-value", 7, 1000, V2_OPTIONAL),
    ]:
        got = reader.get_version(subject, version)
        assert (got.schema_id, _parsed(got.schema)) == (schema_id, schema)
        assert _parsed(reader.get_schema(schema_id)) == schema

    assert client.delete_mode("imp-value") == "IMPORT"
    # Outside IMPORT: an id that is not the schema's own, a version that is not the next.
    not_import = post("imp-value", V3_OPTIONAL, id=5000)
    assert (not_import.status_code, not_import.json()["error_code"]) == (422, 42205)
    assert "not in import mode" in not_import.json()["message"]
    gap = post("imp-value", V3_OPTIONAL, version=9)
    assert (gap.status_code, gap.json()["error_code"]) == (422, 42201)
    assert client.get_versions("imp-value") == [3, 4, 7]
    assert post("own-value", V1, id=base + 2).json() == {"id": base + 2}  # its own id
    next_one = post("imp-value", V3_OPTIONAL, version=8)
    assert next_one.status_code == 200, next_one.text
    fresh_b = next_one.json()["id"]
    fresh_c = client.register_schema("fresh-c-value", avro(ADDRESS_V2))
    taken = {base, base + 1, base + 2, 1000, fresh_a}
    assert fresh_b not in taken
    assert fresh_c not in taken | {fresh_b}
    assert client.get_versions("imp-value") == [3, 4, 7, 8]
    reader = registry.client()
    for schema_id, schema in [
        (base, COLOUR),
        (base + 1, V2_REQUIRED),
        (base + 2, V1),
        (1000, V2_OPTIONAL),
        (fresh_a, ADDRESS),
        (fresh_b, V3_OPTIONAL),
        (fresh_c, ADDRESS_V2),
    ]:
        assert _parsed(reader.get_schema(schema_id)) == schema, schema_id


# -- references ----------------------------------------------------------------------------


def test_references_register_lookup_compatibility_and_referencedby(registry: Registry) -> None:
    client = registry.client()
    address_id = client.register_schema("address", avro(ADDRESS))
    person = avro(PERSON, [address_ref()])
    person_id = client.register_schema("person", person)
    assert person_id != address_id

    found = registry.client().lookup_schema("person", person)
    assert (found.version, found.schema_id) == (1, person_id)
    # Without its references the text names a type it does not define.
    bare = refused(registry.client().lookup_schema, "person", avro(PERSON))
    assert (bare.http_status_code, bare.error_code) == (422, 42201), bare

    reader = registry.client()
    by_id = reader.get_schema(person_id)
    assert _parsed(by_id) == PERSON
    assert by_id.references == [address_ref()]
    version = registry.client().get_version("person", 1)
    assert version.schema_id == person_id
    assert version.schema.references == [address_ref()]
    assert registry.client().get_schema(address_id).references == []

    # Compatibility is checked with the references resolved, both ways.
    good = avro(PERSON_V2_OPTIONAL, [address_ref()])
    bad = avro(PERSON_V2_REQUIRED, [address_ref()])
    assert client.test_compatibility("person", good) is True
    assert client.test_compatibility("person", bad) is False
    incompatible = refused(client.register_schema, "person", bad)
    assert incompatible.http_status_code == 409
    person_v2 = client.register_schema("person", good)
    assert client.get_versions("person") == [1, 2]

    # The same text with references to another version of Address is another schema.
    client.register_schema("address", avro(ADDRESS_V2))
    other = client.register_schema("person-b", avro(PERSON, [address_ref(2)]))
    assert other not in (person_id, person_v2)
    assert registry.client().get_schema(other).references == [address_ref(2)]
    # A reference to a version or subject that does not exist.
    for dangling in (address_ref(9), address_ref(1, subject="nowhere")):
        error = refused(client.register_schema, "person-c", avro(PERSON, [dangling]))
        assert (error.http_status_code, error.error_code) == (422, 42201), dangling

    assert client.get_referenced_by("address", 1) == sorted([person_id, person_v2])
    assert client.get_referenced_by("address", 2) == [other]
    assert client.get_referenced_by("person", 1) == []

    # A referenced version cannot be deleted, soft or whole subject.
    for call, args in [
        (client.delete_version, ("address", 1)),
        (client.delete_subject, ("address",)),
    ]:
        error = refused(call, *args)
        assert (error.http_status_code, error.error_code) == (422, 42206), call
    assert client.get_versions("address") == [1, 2]
    # Once its referrers are gone (soft, then permanently), it can be.
    assert client.delete_subject("person") == [1, 2]
    assert refused(client.delete_version, "address", 1).error_code == 42206
    assert client.delete_subject("person", permanent=True) == [1, 2]
    assert client.get_referenced_by("address", 1) == []
    assert client.delete_version("address", 1) == 1
    assert client.get_versions("address") == [2]
    # Records written with the deleted person schema still decode: the id resolves.
    assert registry.client().get_schema(person_id).references == [address_ref()]


def test_confluent_serializers_with_references_round_trip(registry: Registry) -> None:
    client = registry.client()
    client.register_schema("address", avro(ADDRESS))
    person = avro(PERSON, [address_ref()])
    record = {"name": "王芳", "home": {"street": "长安街 1 号", "city": "北京"}}
    ctx = SerializationContext("people", MessageField.VALUE)

    # Registered by the serializer itself (auto.register.schemas, the default).
    auto = AvroSerializer(registry.client(), person)(record, ctx)
    assert auto is not None
    schema_id = int.from_bytes(auto[1:5], "big")
    registered = registry.client().get_version("people-value", 1)
    assert registered.schema_id == schema_id
    assert registered.schema.references == [address_ref()]
    # Found by lookup (no registration), and by the subject's latest version.
    looked_up = AvroSerializer(registry.client(), person, conf={"auto.register.schemas": False})(
        record, ctx
    )
    latest = AvroSerializer(
        registry.client(),
        person,
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )(record, ctx)
    assert looked_up == latest == auto
    assert registry.client().get_versions("people-value") == [1]

    decoded = AvroDeserializer(registry.client())(auto, ctx)
    assert decoded == record


# -- exchange schemas import ----------------------------------------------------------------


def _run_import(source: Registry, *extra: str) -> Any:
    """``exchange schemas import --from <source>`` with the source's publisher key, on the
    database EXCHANGE_DATABASE_URL names."""
    return CliRunner().invoke(
        cli_app,
        ["schemas", "import", "--from", source.base, "--user-info", f"x:{source.publisher}",
         *extra],
        catch_exceptions=False,
    )  # fmt: skip


def test_import_command_copies_a_registry_keeping_ids(
    database_url: str,
    other_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", other_database_url)
    with serving(database_url) as source, serving(other_database_url) as target:
        # The source: ids far apart (imported there), several versions, references, one
        # soft-deleted version, and two registered the ordinary way afterwards.
        sc = source.client()
        assert source.client("admin").update_global_mode("IMPORT") == "IMPORT"
        given = [
            ("address-value", ADDRESS, [], 5, 1),
            ("person-value", PERSON, [address_ref(1, "address-value")], 42, 1),
            ("vehicle-value", V1, [], 7, 1),
            ("vehicle-value", V2_OPTIONAL, [], 1000, 2),
            ("vehicle-value", V3_OPTIONAL, [], 12, 3),
        ]
        for subject, schema, refs, schema_id, version in given:
            body = {
                "schema": json.dumps(schema),
                "references": [{"name": r.name, "subject": r.subject, "version": r.version}
                               for r in refs],
                "id": schema_id,
                "version": version,
            }  # fmt: skip
            answer = source.call("POST", f"/subjects/{subject}/versions", json=body)
            assert answer.json() == {"id": schema_id}, answer.text
        assert source.call("DELETE", "/mode", key="admin").json() == {"mode": "IMPORT"}
        assert sc.delete_version("vehicle-value", 2) == 2
        colour_id = sc.register_schema("colour-value", avro(COLOUR))
        person_v2 = sc.register_schema(
            "person-value", avro(PERSON_V2_OPTIONAL, [address_ref(1, "address-value")])
        )
        source_ids = {5, 7, 12, 42, 1000, colour_id, person_v2}
        assert len(source_ids) == 7
        record = {"name": "李雷", "home": {"street": "人民路 8 号", "city": "上海"}}
        ctx = SerializationContext("person", MessageField.VALUE)
        payload = AvroSerializer(
            source.client(),
            avro(PERSON, [address_ref(1, "address-value")]),
            conf={"auto.register.schemas": False},
        )(record, ctx)
        assert payload is not None
        assert int.from_bytes(payload[1:5], "big") == 42

        tc = target.client()
        assert tc.update_mode("vehicle-value", "READWRITE") == "READWRITE"  # its own mode

        # --dry-run lists what would come, and writes nothing.
        dry = _run_import(source, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "7 versions of 4 subjects" in dry.output
        for subject in ("address-value", "person-value", "vehicle-value", "colour-value"):
            assert subject in dry.output
        assert "1000" in dry.output
        assert target.client().get_subjects(deleted=True) == []

        run = _run_import(source)
        assert run.exit_code == 0, run.output
        assert "imported 7, already here 0, refused 0" in run.output

        tc = target.client()
        assert sorted(tc.get_subjects()) == sorted(sc.get_subjects())
        for subject in sc.get_subjects():
            assert tc.get_versions(subject) == sc.get_versions(subject), subject
            every = sc.get_versions(subject, deleted=True)
            assert tc.get_versions(subject, deleted=True) == every, subject
            for number in every:
                theirs = sc.get_version(subject, number, deleted=True)
                ours = tc.get_version(subject, number, deleted=True)
                assert ours.schema_id == theirs.schema_id, (subject, number)
                assert _parsed(ours.schema) == _parsed(theirs.schema), (subject, number)
                assert ours.schema.references == theirs.schema.references, (subject, number)
        assert [tc.get_version("vehicle-value", v, deleted=True).schema_id for v in (1, 2, 3)] == [
            7,
            1000,
            12,
        ]
        # The soft-deleted version stays soft-deleted, and its id still resolves.
        assert tc.get_versions("vehicle-value") == [1, 3]
        gone = refused(target.client().get_version, "vehicle-value", 2)
        assert gone.error_code == 40402
        assert _parsed(target.client().get_schema(1000)) == V2_OPTIONAL
        assert tc.get_referenced_by("address-value", 1) == sorted([42, person_v2])
        assert target.client().get_schema(42).references == [address_ref(1, "address-value")]
        # What a source-side producer wrote, a fresh target-side consumer reads.
        assert AvroDeserializer(target.client())(payload, ctx) == record
        # Modes are back to what they were: vehicle's own READWRITE, none for the others.
        assert tc.get_mode("vehicle-value") == "READWRITE"
        for subject in ("address-value", "person-value", "colour-value"):
            assert refused(tc.get_mode, subject).error_code == 40409, subject
        assert tc.get_global_mode() == "READWRITE"

        # Again: everything is here already.
        rerun = _run_import(source)
        assert rerun.exit_code == 0, rerun.output
        assert "imported 0, already here 7, refused 0" in rerun.output

        # Ordinary registrations on the target: fresh ids, next version numbers.
        fresh = tc.register_schema("fresh-value", avro(ADDRESS_V2))
        assert fresh not in source_ids
        v4 = {**V1, "fields": [*V3_OPTIONAL["fields"], {"name": "wheels", "type": "int",
                                                         "default": 4}]}  # fmt: skip
        v4_id = tc.register_schema("vehicle-value", avro(v4))
        assert v4_id not in source_ids | {fresh}
        assert tc.get_versions("vehicle-value") == [1, 3, 4]
        reader = target.client()
        assert _parsed(reader.get_schema(fresh)) == ADDRESS_V2
        assert _parsed(reader.get_schema(v4_id)) == v4
        assert _parsed(reader.get_schema(1000)) == V2_OPTIONAL

        # A source id the target has given to another schema, and a READONLY subject here:
        # both refused and named, the rest already here, exit status 1.
        assert sc.update_mode("clash-value", "IMPORT") == "IMPORT"
        clash = source.call(
            "POST",
            "/subjects/clash-value/versions",
            json={"schema": json.dumps(V2_REQUIRED | {"name": "Clash"}), "id": fresh},
        )
        assert clash.json() == {"id": fresh}, clash.text
        assert sc.delete_mode("clash-value") == "IMPORT"
        frozen_id = sc.register_schema("frozen-value", avro(V1 | {"name": "Frozen"}))
        assert tc.update_mode("frozen-value", "READONLY") == "READONLY"
        refusing = _run_import(source)
        assert refusing.exit_code == 1, refusing.output
        assert (
            f"clash-value v1 (id {fresh}): refused: Overwrite new schema with id {fresh} is "
            "not permitted." in refusing.output
        ), refusing.output
        assert f"frozen-value v1 (id {frozen_id}): refused:" in refusing.output
        assert "imported 0, already here 7, refused 2" in refusing.output
        reader = target.client()
        assert "clash-value" not in reader.get_subjects(deleted=True)
        assert "frozen-value" not in reader.get_subjects(deleted=True)
        assert _parsed(reader.get_schema(fresh)) == ADDRESS_V2
        assert refused(reader.get_mode, "clash-value").error_code == 40409
        assert reader.get_mode("frozen-value") == "READONLY"


def test_import_command_takes_the_source_key_from_the_environment(
    database_url: str,
    other_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/schema-registry.md: SOURCE_REGISTRY_USER_INFO=user:secret exchange schemas import ...
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", other_database_url)
    with serving(database_url) as source, serving(other_database_url) as target:
        schema_id = source.client().register_schema("vehicle-value", avro(V1))
        monkeypatch.setenv("SOURCE_REGISTRY_USER_INFO", f"x:{source.publisher}")
        run = CliRunner().invoke(
            cli_app, ["schemas", "import", "--from", source.base], catch_exceptions=False
        )
        assert run.exit_code == 0, run.output
        assert "imported 1, already here 0, refused 0" in run.output
        assert target.client().get_version("vehicle-value", 1).schema_id == schema_id


def test_import_command_copies_a_subject_whose_versions_are_all_soft_deleted(
    database_url: str,
    other_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Records written with a retired subject's schema may still be on a topic: its ids
    # must come along (soft-deleted), as the import does for one soft-deleted version.
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", other_database_url)
    with serving(database_url) as source, serving(other_database_url) as target:
        sc = source.client()
        kept = sc.register_schema("vehicle-value", avro(V1))
        retired = sc.register_schema("retired-value", avro(ADDRESS))
        assert sc.delete_subject("retired-value") == [1]
        assert sc.get_subjects(deleted=True) == ["retired-value", "vehicle-value"]
        run = _run_import(source)
        assert run.exit_code == 0, run.output
        assert "imported 2, already here 0, refused 0" in run.output
        tc = target.client()
        assert tc.get_subjects() == ["vehicle-value"]
        assert tc.get_subjects(deleted=True) == ["retired-value", "vehicle-value"]
        assert tc.get_version("vehicle-value", 1).schema_id == kept
        assert tc.get_version("retired-value", 1, deleted=True).schema_id == retired
        assert _parsed(tc.get_schema(retired)) == ADDRESS
