"""Operations for real: a running builder's endpoint and the gateway's /metrics, scraped
and parsed with prometheus-client's own parser, on SQLite and PostgreSQL with a real
broker; every metric docs/operations.md lists is there, the figures move with what was
done, and no label holds an identifier or a name used here."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.logs import JsonFormatter
from exchange.core.models import SourceRecord
from exchange.identity.apikeys import create_key
from exchange.kafka.producer import Producer
from exchange.local.broker import LocalKafka
from exchange.registry.builder import RegistryBuilder
from exchange.registry.metrics import BuilderMetrics, serve
from exchange.registry.review import awaiting_review_count
from gateway import create_app
from tests.support.catalogue import add_grant, add_purpose
from tests.support.examples import CONTACT_FIELDS, household_definition
from tests.support.kafka import end_offsets, start_group_at, start_group_at_ends
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64, keys_for
from tests.support.postgres import DB_USER, PostgresServer
from tests.support.publishing import publish

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
TOKEN = "integration-scrape-token-0123456789"
MLA = "minimum-living-allowance"
VALID = [
    # local id, id number, surname, given, dob, sex
    ("A1", "11010519491231002X", "欧阳", "秀英", "1949-12-31", "2"),
    ("A2", "110105198005170017", "司马", "伟", "1980/05/17", "1"),
    ("A3", "440106199007090026", "诸葛", "芳", "19900709", "2"),
]
PERSONAL = [
    value for row in VALID for value in (row[1], row[1][:17], row[2] + row[3], row[2], "alice")
]


def documented_metrics() -> dict[str, str]:
    """Every metric the table of docs/operations.md lists: family name -> process."""
    found: dict[str, str] = {}
    for name, process in re.findall(
        r"^\| `(exchange_[a-z_]+)` \| (gateway|builder) \|", DOCS.read_text(), re.M
    ):
        family = name.removesuffix("_total")  # the parser names a counter's family so
        found[family] = process
    return found


def scrape(url: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(url, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def value(families: dict[str, Any], family: str, **labels: str) -> float:
    return sum(
        s.value
        for s in families[family].samples
        if s.name in (family, f"{family}_total") and labels.items() <= s.labels.items()
    )


def label_values(families: dict[str, Any]) -> list[str]:
    return [v for f in families.values() for s in f.samples for v in s.labels.values()]


def _write_source(folder: Path, department: str) -> Path:
    rows = ["local_id,id_number,surname,given,dob,sex", *(",".join(r) for r in VALID)]
    (folder / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return household_definition(
        folder,
        connector_id=f"ops-{department}",
        department=department,
        csv="people.csv",
        without=CONTACT_FIELDS,
    )


def _held(sessions: sessionmaker[Session], department: str | None = None) -> int:
    query = select(func.count()).select_from(SourceRecord)
    if department is not None:
        query = query.where(SourceRecord.department == department)
    with sessions() as session:
        return session.scalar(query) or 0


def test_builder_and_gateway_metrics_scraped(
    kafka: LocalKafka, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exchange.registry.metrics")
    bootstrap = kafka.bootstrap_servers
    department = f"ops_{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    try:
        # What the builder will read: three signed records and one unsigned record.
        start = end_offsets(bootstrap, "std.person.v1")
        report = publish(bootstrap, sessions, _write_source(tmp_path, department))
        assert report.published == 3
        rogue = Producer(bootstrap)
        try:
            rogue.settle(
                [
                    rogue.send(
                        "std.person.v1",
                        b"\x00\x00\x00\x00\x01",
                        key=f"{department}:X1".encode(),
                        headers=[("department", department.encode())],
                    )
                ],
                timeout=30,
            )
        finally:
            rogue.close(timeout=10)

        group = f"ops-{uuid.uuid4().hex[:8]}"
        start_group_at_ends(bootstrap, group, "std.", but="std.person.v1")
        start_group_at(bootstrap, group, "std.person.v1", start)
        builder = RegistryBuilder(
            bootstrap,
            sessions,
            linkage_key=LINKAGE_KEY.encode(),
            keystore=keys_for(sessions).keystore,
            group_id=group,
        )
        metrics = BuilderMetrics(builder, sessions)
        endpoint = serve(metrics, "127.0.0.1", 0)
        try:
            unready = httpx.get(f"{endpoint.url}/readyz", timeout=10)
            assert unready.status_code == 503  # it has not polled yet
            assert unready.json()["code"] == "not_ready"
            assert "polling" in unready.json()["detail"]
            assert httpx.get(f"{endpoint.url}/healthz", timeout=10).status_code == 200

            deadline = time.monotonic() + 90
            while _held(sessions, department) < 3:
                assert time.monotonic() < deadline, "the builder did not apply the records"
                builder.poll_once(500)
            builder.run_until_idle(idle_s=1.0, timeout_s=60)
            # Caught up: every partition's lag reads 0 (others' tests may still publish).
            families = scrape(f"{endpoint.url}/metrics")
            while any(s.value for s in families["exchange_registry_consumer_lag"].samples):
                assert time.monotonic() < deadline, families["exchange_registry_consumer_lag"]
                builder.poll_once(500)
                families = scrape(f"{endpoint.url}/metrics")
            lag = families["exchange_registry_consumer_lag"].samples
            assert {(s.labels["topic"], s.labels["partition"]) for s in lag} >= {
                ("std.person.v1", str(p)) for p in start
            }
            assert httpx.get(f"{endpoint.url}/readyz", timeout=10).status_code == 200

            # Applied: every record in this test's fresh database, ours among them.
            applied = value(families, "exchange_registry_records_applied")
            assert applied == _held(sessions) >= 3
            assert applied == builder.stats.applied
            assert value(families, "exchange_registry_records_linked") >= 3
            assert value(families, "exchange_registry_manifests_verified") >= 1
            assert value(families, "exchange_registry_batches") >= 1
            assert (
                value(
                    families, "exchange_registry_records_dead_lettered", reason="unverified_record"
                )
                >= 1
            )
            with sessions() as session:
                backlog = awaiting_review_count(session)
            assert value(families, "exchange_registry_review_backlog") == backlog
            builder_families = families

            # What it applied, logged once a batch: the counts add up to the metrics'.
            batches = [
                json.loads(JsonFormatter().format(r))
                for r in caplog.records
                if r.name == "exchange.registry.metrics" and r.getMessage().startswith("batch")
            ]
            assert len(batches) == value(families, "exchange_registry_batches")
            assert sum(b["applied"] for b in batches) == applied
            assert sum(b["dead_lettered"] for b in batches) == value(
                families, "exchange_registry_records_dead_lettered"
            )
            assert any("unverified_record" in b["dead_letter_reasons"] for b in batches), batches
            assert all(b["partitions"] for b in batches)
            logged = json.dumps(batches, ensure_ascii=False)
            for personal in PERSONAL:
                assert personal not in logged
        finally:
            endpoint.close()
            builder.close()

        # The gateway: a lookup allowed, two refused, scraped with the credential.
        add_purpose(sessions, MLA)
        add_grant(
            sessions,
            department="civil_affairs",
            dataset="person",
            fields={"resident_id": "masked", "full_name": "full"},
            purposes=[MLA],
        )
        with transaction(sessions) as session:
            key = create_key(session, actor="alice", department="civil_affairs", role="caseworker")
            clerk = create_key(session, actor="bob", department="civil_affairs", role="publisher")
        settings = Settings(
            database_url=database_url,
            linkage_key=LINKAGE_KEY,
            master_key=MASTER_KEY_B64,
            gateway={"metrics_token": TOKEN},
            audit={"head_interval_s": 0.1, "mirror": False},
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
            assert client.get("/metrics").status_code == 401
            body = {"resident_id": VALID[1][1]}
            params = {"purpose": MLA, "case_ref": "C-1"}
            ok = client.post(
                "/v1/persons/lookup", json=body, params=params, headers={"X-API-Key": key}
            )
            assert ok.status_code == 200, ok.text
            assert [r["fields"]["full_name"] for r in ok.json()["records"]] == ["司马伟"]
            for headers, status in (({}, 401), ({"X-API-Key": clerk}, 403)):
                refused = client.post(
                    "/v1/persons/lookup", json=body, params=params, headers=headers
                )
                assert refused.status_code == status
            auth = {"Authorization": f"Bearer {TOKEN}"}
            deadline = time.monotonic() + 30
            while True:  # the audit worker signs a head over the new entries within a tick
                answer = client.get("/metrics", headers=auth)
                families = {f.name: f for f in text_string_to_metric_families(answer.text)}
                if value(families, "exchange_gateway_audit_heads_signed"):
                    break
                assert time.monotonic() < deadline, "no head signed"
                time.sleep(0.2)
        route = "/v1/persons/lookup"
        assert value(families, "exchange_gateway_requests", route=route, decision="allow") == 1
        assert value(families, "exchange_gateway_requests", route=route, status="401") == 1
        assert value(families, "exchange_gateway_requests", route=route, status="403") == 1
        assert value(families, "exchange_gateway_requests", route=route, decision="deny") == 2
        assert value(families, "exchange_gateway_audit_appends") == 3
        assert value(families, "exchange_gateway_audit_append_failures") == 0

        # Every metric the operations guide lists is in its process's scrape.
        documented = documented_metrics()
        assert len(documented) >= 15
        scraped = {"gateway": families, "builder": builder_families}
        missing = [f for f, process in documented.items() if f not in scraped[process]]
        assert not missing, f"documented but not scraped: {missing}"

        # And no label anywhere holds an identifier, a name or a user of this test.
        labels = label_values(families) + label_values(builder_families)
        for personal in PERSONAL:
            assert not [v for v in labels if personal in v], personal
    finally:
        engine.dispose()


def test_gateway_readyz_turns_503_when_its_database_is_gone(postgres: PostgresServer) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    settings = Settings(
        database_url=url,
        linkage_key=LINKAGE_KEY,
        master_key=MASTER_KEY_B64,
        audit={"mirror": False},
    )
    admin = psycopg.connect(
        host="127.0.0.1", port=postgres.port, user=DB_USER, dbname="postgres", autocommit=True
    )
    database = sql.Identifier(name)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").json() == {"status": "ready"}
            # The database refuses connections and drops the gateway's.
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            gone = client.get("/readyz")
            assert gone.status_code == 503
            assert gone.headers["content-type"] == "application/problem+json"
            assert gone.json()["code"] == "not_ready"
            assert gone.json()["detail"].startswith("not ready: database: unavailable")
            assert str(postgres.port) not in gone.text  # the details go to the log only
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
            assert client.get("/readyz").status_code == 200  # back once the database is
    finally:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
        admin.close()
