"""A SQL source connector end to end: table -> run_connector -> Kafka, incrementally.

The department's table lives in the same database as the registry (SQLite file,
then a fresh PostgreSQL database); the connector reaches it through the URL in
an environment variable, as in production. Each test has its own department.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import ConnectorRun
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support.deadletters import dead_letters
from tests.support.examples import CONTACT_FIELDS, household_definition
from tests.support.kafka import read_topic
from tests.support.publishing import publish

pytestmark = pytest.mark.integration

URL_ENV = "SQL_PUBLISH_DEPARTMENT_DB"
T0 = datetime(2024, 3, 1, 9, 0, 0)


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


def _row(local_id: str, n: int, surname: str, given: str, *, minutes: int) -> dict[str, Any]:
    born = date(1950, 1, 1) + timedelta(days=397 * n)
    return {
        "local_id": local_id,
        "id_number": rid(f"110105{born:%Y%m%d}{n:03d}"),
        "surname": surname,
        "given": given,
        "dob": born,
        "sex": 1 + n % 2,
        "updated_at": T0 + timedelta(minutes=minutes),
    }


def _residents_table(engine: Engine, name: str) -> Table:
    """The department's own table of residents, created in ``engine``'s database."""
    residents = Table(
        name,
        MetaData(),
        Column("local_id", String(20), primary_key=True),
        Column("id_number", String(18), nullable=False),
        Column("surname", String(50), nullable=False),
        Column("given", String(50), nullable=False),
        Column("dob", Date, nullable=False),
        Column("sex", Integer, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )
    residents.create(engine)
    return residents


def _definition(folder: Path, connector_id: str, department: str, table: str) -> Path:
    """The household example read from ``table`` (through URL_ENV), incrementally."""
    source = {
        "type": "sql",
        "url_env": URL_ENV,
        "table": table,
        "key": "local_id",
        "watermark": "updated_at",
        "batch_size": 2,
    }
    return household_definition(
        folder,
        connector_id=connector_id,
        department=department,
        source=source,
        without=CONTACT_FIELDS,
    )


def test_a_sql_source_publishes_everything_then_only_what_changed(
    kafka: LocalKafka, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    department = f"sql_{uuid.uuid4().hex[:10]}"
    connector_id = f"sql-publish-{department}"
    table_name = f"residents_{uuid.uuid4().hex[:8]}"
    bootstrap = kafka.bootstrap_servers
    prefix = f"{department}:"

    # The department's own table, in the same database as the registry.
    registry_engine = make_engine(database_url)
    migrate(registry_engine)
    sessions = session_factory(registry_engine)
    department_engine = create_engine(database_url)
    residents = _residents_table(department_engine, table_name)
    first = [
        _row("R1", 1, "王", "秀英", minutes=1),
        _row("R2", 2, "李", "伟", minutes=2),
        _row("R3", 3, "陈", "芳", minutes=3),
        _row("R4", 4, "张", "敏", minutes=4),
        _row("R0", 5, "赵", "磊", minutes=4),  # same watermark as R4: ordered by key
    ]
    with department_engine.begin() as conn:
        conn.execute(insert(residents), first)
    monkeypatch.setenv(URL_ENV, database_url)
    definition_path = _definition(tmp_path, connector_id, department, table_name)
    store = SchemaStore(sessions)

    def run() -> Any:
        return publish(bootstrap, sessions, definition_path, store=store)

    def messages() -> dict[tuple[int, int], Any]:
        found = read_topic(bootstrap, "std.person.v1", prefix.encode())
        return {(m.partition, m.offset): m for m in found}

    try:
        # 1. The first run reads and publishes every row.
        report = run()
        assert report.reconciled
        assert (report.read, report.published, report.rejected) == (5, 5, 0)
        after_first = messages()
        assert sorted(m.key.decode() for m in after_first.values()) == sorted(
            prefix + r["local_id"] for r in first
        )

        # 2. Two rows added, one changed with a newer watermark: exactly those three.
        with department_engine.begin() as conn:
            conn.execute(
                insert(residents),
                [
                    _row("R5", 6, "刘", "洋", minutes=10),
                    _row("R6", 7, "杨", "静", minutes=11),
                ],
            )
            conn.execute(
                update(residents)
                .where(residents.c.local_id == "R2")
                .values(given="娜", updated_at=T0 + timedelta(hours=2))
            )
        report = run()
        assert report.reconciled
        assert (report.read, report.published, report.rejected) == (3, 3, 0)
        after_second = messages()
        new = {k: m for k, m in after_second.items() if k not in after_first}
        assert sorted(m.key.decode() for m in new.values()) == [
            prefix + "R2",
            prefix + "R5",
            prefix + "R6",
        ]
        serde = AvroSerde(store.schema_text)
        changed = next(m for m in new.values() if m.key.decode() == prefix + "R2")
        _, record = serde.decode(changed.value)
        assert (record["family_name"], record["given_name"], record["full_name"]) == (
            "李",
            "娜",
            "李娜",
        )
        assert record["birth_date"] == first[1]["dob"]
        assert dict(changed.headers)["source-id"] == b"R2"

        # 3. Nothing changed: nothing is read, nothing is published.
        report = run()
        assert report.reconciled
        assert (report.read, report.published, report.rejected) == (0, 0, 0)
        assert messages().keys() == after_second.keys()

        # Every run is stored with its reconciled counts.
        with sessions() as session:
            runs = session.scalars(
                select(ConnectorRun)
                .where(ConnectorRun.connector_id == connector_id)
                .order_by(ConnectorRun.started_at)
            ).all()
        assert [(r.status, r.read, r.published, r.rejected) for r in runs] == [
            ("complete", 5, 5, 0),
            ("complete", 3, 3, 0),
            ("complete", 0, 0, 0),
        ]
        assert {r.department for r in runs} == {department}
    finally:
        department_engine.dispose()
        registry_engine.dispose()


def test_a_bad_database_row_is_dead_lettered_with_its_values(
    kafka: LocalKafka, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    department = f"sqlbad_{uuid.uuid4().hex[:10]}"
    connector_id = f"sql-bad-{department}"
    table_name = f"residents_{uuid.uuid4().hex[:8]}"
    registry_engine = make_engine(database_url)
    migrate(registry_engine)
    sessions = session_factory(registry_engine)
    department_engine = create_engine(database_url)
    residents = _residents_table(department_engine, table_name)
    bad = _row("R2", 2, "李", "伟", minutes=2)
    bad["id_number"] = bad["id_number"][:-1] + ("0" if bad["id_number"][-1] != "0" else "1")
    rows = [_row("R1", 1, "王", "秀英", minutes=1), bad, _row("R3", 3, "陈", "芳", minutes=3)]
    with department_engine.begin() as conn:
        conn.execute(insert(residents), rows)
    monkeypatch.setenv(URL_ENV, database_url)
    definition_path = _definition(tmp_path, connector_id, department, table_name)
    try:
        report = publish(kafka.bootstrap_servers, sessions, definition_path)
        assert report.reconciled
        assert (report.read, report.published, report.rejected) == (3, 2, 1)
        assert report.reasons == {"resident_id.check_character": 1}
        published = read_topic(kafka.bootstrap_servers, "std.person.v1", f"{department}:".encode())
        assert {m.key.decode() for m in published} == {f"{department}:R1", f"{department}:R3"}
        [dead] = dead_letters(kafka.bootstrap_servers, sessions, department)
        assert dead["line"] == 2  # the row's number within the run, in watermark order
        assert dead["source_id"] == "R2"
        assert json.loads(dead["raw"]) == {
            "local_id": "R2",
            "id_number": bad["id_number"],
            "surname": "李",
            "given": "伟",
            "dob": bad["dob"].isoformat(),
            "sex": str(bad["sex"]),
            "updated_at": bad["updated_at"].isoformat(),
        }
    finally:
        department_engine.dispose()
        registry_engine.dispose()
