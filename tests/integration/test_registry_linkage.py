"""The registry links departments' records into entities, keeps history, and replays exactly.

Three departments publish through real connectors to the session's Kafka broker:
two hold people (one with a mistyped identity number, a swapped day and month,
and the same phone), one holds benefit payments that carry only the identity
number. A registry builder (SQLite and PostgreSQL) consumes them; then a record
changes, another is withdrawn, a reviewer rejects a link, and a second builder
replays everything from the start into the same database without changing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connectors import load_definition
from connectors.withdraw import withdraw_records
from exchange.cli.main import app as cli_app
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import Entity, LinkEdge, RecordVersion, SourceRecord
from exchange.local.broker import LocalKafka
from exchange.registry.builder import RegistryBuilder
from exchange.registry.checksum import registry_checksum
from exchange.registry.entities import EntityResolver
from exchange.registry.entityview import ENCRYPTED, entity_view
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.support import publishing
from tests.support.examples import benefits_toml, household_toml, write_toml
from tests.support.kafka import end_offsets, start_group_at
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64, keys_for

pytestmark = pytest.mark.integration


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


PERSON_HEADER = "local_id,id_number,surname,given,dob,sex,phone,division"


class World:
    """Three departments' connectors, writing their exports under one directory."""

    def __init__(self, tmp_path: Path, kafka: LocalKafka, sessions: sessionmaker[Session]):
        tag = uuid.uuid4().hex[:8]
        self.dir, self.kafka, self.sessions = tmp_path, kafka, sessions
        self.hr, self.ca, self.mz = f"hr_{tag}", f"ca_{tag}", f"mz_{tag}"
        seed = str(int(tag, 16) % 10**6).zfill(6)
        # Identity numbers unique to this test run: region 110105, a birth date, a serial.
        self.wang = rid(f"11010519491231{seed[:3]}")
        self.li = rid(f"11010519800517{seed[:3]}")
        self.chen = rid(f"44010619900709{seed[:3]}")
        self.chen_mistyped = rid(f"44010619900709{(int(seed[:3]) + 1) % 1000:03d}")
        self.zhang = rid(f"31010419750301{seed[:3]}")

    def publish(
        self, connector: str, example: Callable[..., str], department: str, rows: list[str]
    ) -> None:
        path = self.dir / f"{connector}.csv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        toml = write_toml(
            self.dir,
            example(connector_id=f"{connector}-{department}", department=department, csv=path.name),
            f"{connector}.toml",
        )
        report = publishing.publish(self.kafka.bootstrap_servers, self.sessions, toml, restart=True)
        assert report.reconciled
        assert report.rejected == 0, report.rejections

    def withdraw(self, connector: str, source_ids: list[str]) -> None:
        definition = load_definition(self.dir / f"{connector}.toml")
        withdraw_records(
            definition,
            source_ids,
            bootstrap=self.kafka.bootstrap_servers,
            store=SchemaStore(self.sessions),
            keys=keys_for(self.sessions),
        )


def _build(kafka: LocalKafka, sessions: sessionmaker[Session], group: str) -> None:
    builder = RegistryBuilder(
        kafka.bootstrap_servers,
        sessions,
        linkage_key=LINKAGE_KEY.encode(),
        keystore=keys_for(sessions).keystore,
        group_id=group,
    )
    try:
        builder.run_until_idle(idle_s=3.0, timeout_s=120)
    finally:
        builder.close()


def _entities(sessions: sessionmaker[Session], departments: set[str]) -> dict[str, set[str]]:
    """Entity id -> the refs of its live members, for this test's departments."""
    with sessions() as session:
        rows = session.execute(
            select(SourceRecord.entity_id, SourceRecord.department, SourceRecord.source_id).where(
                SourceRecord.department.in_(departments), SourceRecord.deleted.is_(False)
            )
        ).all()
    groups: dict[str, set[str]] = defaultdict(set)
    for entity_id, department, source_id in rows:
        assert entity_id is not None, f"{department}/{source_id} is in no entity"
        groups[entity_id].add(f"{department}/{source_id}")
    return dict(groups)


def _entity_of(groups: dict[str, set[str]], member: str) -> str:
    [found] = [e for e, members in groups.items() if member in members]
    return found


def test_departments_records_link_into_stable_entities_and_replay_exactly(
    kafka: LocalKafka, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(database_url)
    request.addfinalizer(engine.dispose)  # no connection is left for the collector to find
    migrate(engine)
    sessions = session_factory(engine)
    w = World(tmp_path, kafka, sessions)
    group = f"linkage-{uuid.uuid4().hex[:10]}"
    topics = ("std.person.v1", "std.benefit_payment.v1")
    starts = {topic: end_offsets(kafka.bootstrap_servers, topic) for topic in topics}
    for topic in topics:
        start_group_at(kafka.bootstrap_servers, group, topic, starts[topic])
    hr_rows = [
        PERSON_HEADER,
        f"H1,{w.wang},王,秀英,1949-12-31,2,13800000001,110105",
        f"H2,{w.li},李,伟,1980-05-17,1,,110105",
        f"H3,{w.chen},陈,芳,1990-07-09,2,13900000003,440106",
    ]
    ca_rows = [
        PERSON_HEADER,
        # Same identity number as H1: a deterministic link.
        f"C1,{w.wang},王,秀英,1949-12-31,2,,110105",
        # H3 with a mistyped (but valid) number and day/month swapped: two valid numbers are
        # two people to the model (cannot-link); the rest agrees, so a reviewer is asked.
        f"C2,{w.chen_mistyped},陈,芳,1990-09-07,2,13900000003,440106",
        # Nobody else's.
        f"C3,{w.zhang},张,建国,1975-03-01,1,13700000009,310104",
    ]
    mz_rows = [
        "payment_no,id_number,benefit,amount,start,end,paid,case_ref,division",
        f"P1,{w.li},1,112000,2024-03-01,2024-03-31,2024-03-05,MZ-2024-001,110105",
    ]
    w.publish("hr", household_toml, w.hr, hr_rows)
    w.publish("ca", household_toml, w.ca, ca_rows)
    w.publish("mz", benefits_toml, w.mz, mz_rows)
    _build(kafka, sessions, group)

    departments = {w.hr, w.ca, w.mz}
    groups = _entities(sessions, departments)
    assert sorted(map(sorted, groups.values())) == sorted(
        [
            sorted({f"{w.hr}/H1", f"{w.ca}/C1"}),
            sorted({f"{w.hr}/H2", f"{w.mz}/P1"}),
            [f"{w.hr}/H3"],
            [f"{w.ca}/C2"],
            [f"{w.ca}/C3"],
        ]
    )
    with sessions() as session:
        edges = {
            (e.status, e.deterministic): e.explanation
            for e in session.scalars(select(LinkEdge)).all()
        }
        assert ("link", True) in edges
        asked = edges[("review", True)]
        assert asked["decision"] == "review"
        assert asked["reason"] == "different identifiers"
        levels = {f["field"]: f["level"] for f in asked["fields"]}
        assert levels["identifier"] == "disagree"
        assert levels["birth_date"] == "swapped"
    # The reviewer sees the mistyped number and joins the two.
    with transaction(sessions) as session:
        EntityResolver().decide(
            session, f"person/{w.hr}/H3", f"person/{w.ca}/C2", "confirmed", by="reviewer-0"
        )
    groups = _entities(sessions, departments)
    assert _entity_of(groups, f"{w.hr}/H3") == _entity_of(groups, f"{w.ca}/C2")
    wang = _entity_of(groups, f"{w.hr}/H1")
    chen = _entity_of(groups, f"{w.hr}/H3")
    with sessions() as session:
        view = entity_view(session, wang, [w.hr])
        golden = view["golden_record"]
        assert golden["phone"]["value"] == "13800000001"  # only H1 has one
        assert golden["phone"]["source"] == f"person/{w.hr}/H1"
        assert golden["given_name"]["value"] == "秀英"
        assert golden["given_name"]["rule"] == "agreed"  # both departments say so
        assert all(r["fields"]["resident_id"] == ENCRYPTED for r in view["records"])
        assert {link["status"] for link in view["links"]} == {"link"}
        before = registry_checksum(session)

    # A changed record gets a new version and stays in its entity, whose id does not change.
    hr_rows[1] = f"H1,{w.wang},王,秀英,1949-12-31,2,13811112222,110105"
    w.publish("hr", household_toml, w.hr, hr_rows)
    # A withdrawn record leaves its entity; the rest of the entity keeps the id.
    w.withdraw("ca", ["C2"])
    _build(kafka, sessions, group)
    groups = _entities(sessions, departments)
    assert _entity_of(groups, f"{w.hr}/H1") == wang
    assert groups[wang] == {f"{w.hr}/H1", f"{w.ca}/C1"}
    assert groups[chen] == {f"{w.hr}/H3"}
    with sessions() as session:
        h1 = session.scalars(
            select(SourceRecord).where(
                SourceRecord.department == w.hr, SourceRecord.source_id == "H1"
            )
        ).one()
        assert h1.version == 2
        assert h1.payload["phone"] == "13811112222"
        c2 = session.scalars(
            select(SourceRecord).where(
                SourceRecord.department == w.ca, SourceRecord.source_id == "C2"
            )
        ).one()
        assert c2.deleted
        assert c2.entity_id is None
        history = session.scalars(
            select(RecordVersion)
            .where(RecordVersion.record_id == c2.id)
            .order_by(RecordVersion.version)
        ).all()
        assert [(v.version, v.deleted) for v in history] == [(1, False), (2, True)]
        assert history[1].payload is None
        after_changes = registry_checksum(session)
    assert after_changes.digest != before.digest
    assert after_changes.withdrawn == 1

    # A reviewer rejects the deterministic link: the entity splits; one part keeps the id
    # (the larger; here a tie, so the part holding the smallest record), the other gets a new one.
    with transaction(sessions) as session:
        ids = EntityResolver().decide(
            session, f"person/{w.hr}/H1", f"person/{w.ca}/C1", "rejected", by="reviewer-1"
        )
    assert wang in ids
    assert len(ids) == 2
    groups = _entities(sessions, departments)
    assert {frozenset(groups[i]) for i in ids} == {
        frozenset({f"{w.hr}/H1"}),
        frozenset({f"{w.ca}/C1"}),
    }
    with sessions() as session:
        assert session.get(Entity, wang) is not None
        reviewed = registry_checksum(session)

    # Replaying every record of this test again changes nothing (and the decision holds).
    replay = f"replay-{uuid.uuid4().hex[:10]}"
    for topic in topics:
        start_group_at(kafka.bootstrap_servers, replay, topic, starts[topic])
    _build(kafka, sessions, replay)
    with sessions() as session:
        assert registry_checksum(session) == reviewed

    # The operator's commands read the same registry.
    env = {
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "EXCHANGE_DATA_DIR": str(tmp_path / "var"),
        "EXCHANGE_MASTER_KEY": MASTER_KEY_B64,
        "COLUMNS": "250",
    }
    runner = CliRunner()
    result = runner.invoke(cli_app, ["registry", "checksum"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["checksum"] == reviewed.digest
    result = runner.invoke(cli_app, ["registry", "entity", "show", wang, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "_bidx" not in result.output  # tables by default, JSON on request: no internals
    shown = json.loads(result.output)
    [member] = groups[wang]
    assert [r["ref"] for r in shown["records"]] == [f"person/{member}"]
    missing = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "registry", "entity", "show", "P-no-such"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "error (not_found): no entity 'P-no-such'" in missing.stderr
    assert "Traceback" not in missing.stderr
    result = runner.invoke(cli_app, ["registry", "status"], env=env)
    assert result.exit_code == 0, result.output
    assert "withdrawn" in result.output
    assert "consumer lag" in result.output
