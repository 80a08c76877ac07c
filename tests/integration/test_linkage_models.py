"""Linkage models a user fits, inspects and chooses, on real SQLite and PostgreSQL.

Two departments' person records are applied to a fresh registry the way the
builder applies them (``records.apply`` and the entity resolver with the active
models): 30 people whose two records share an identity number, 10 whose second
record has none and links on its other fields, one pair a reviewer confirmed and
one a reviewer rejected. Then `exchange registry model use` switches models and
relinks: to a copy of the shipped model (nothing changes, every id stays), to a
strict model (the probabilistic links split; identifier links, reviewers'
decisions and their entities' ids stay), and back. Each switch is in the audit log.
`model fit` stores a new version, not active; the registry builder (on the
session's Kafka broker) links with whatever model is active at each transaction; a
rebuild (on a broker of its own) keeps the models and replays with the active one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from exchange.cli.main import app
from exchange.core.db import transaction
from exchange.core.models import AuditEntry, LinkDecision, LinkEdge, SourceRecord
from exchange.local.broker import LocalKafka
from exchange.registry import modelstore
from exchange.registry.builder import GROUP_ID, BuildStats, RegistryBuilder
from exchange.registry.entities import EntityResolver
from exchange.registry.linkage import default_model
from exchange.registry.rebuild import rebuild
from exchange.registry.records import Incoming, apply
from exchange.registry.relink import relink
from schemas.standards import load_standard
from schemas.store import SchemaStore
from tests.integration.test_registry_linkage import PERSON_HEADER, World
from tests.support.database import migrated
from tests.support.examples import household_toml
from tests.support.keys import LINKAGE_KEY, keys_for

pytestmark = pytest.mark.integration

runner = CliRunner()
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚"
SOLID, FUZZY = 30, 10


@dataclass
class Registry:
    sessions: sessionmaker[Session]
    env: dict[str, str]
    hr: str
    ca: str
    schema_id: int
    offset: int = 0

    def items(self, rows: list[tuple[str, str, dict[str, Any]]]) -> list[Incoming]:
        """(department, source id, payload) rows as the builder's incoming records."""
        out = []
        for department, source_id, payload in rows:
            self.offset += 1
            out.append(
                Incoming(
                    dataset="person",
                    department=department,
                    source_id=source_id,
                    content_hash=hashlib.sha256(
                        json.dumps(payload, sort_keys=True).encode()
                    ).hexdigest(),
                    schema_id=self.schema_id,
                    payload=payload,
                    lookup_key=payload.get("resident_id_bidx"),
                    topic="std.person.v1",
                    partition=0,
                    offset=self.offset,
                    ingested_at=datetime.now(UTC),
                )
            )
        return out

    def apply(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Apply and link as the builder does, with the active models."""
        with transaction(self.sessions) as session:
            applied = apply(session, self.items(rows))
            EntityResolver(modelstore.active_models(session)).link(session, applied.changed)

    def cli(self, *args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["registry", "model", *args], env=self.env)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    def members(self) -> dict[str, str | None]:
        """Source id -> entity id of every live record."""
        with self.sessions() as session:
            return {
                f"{d}/{s}": e
                for d, s, e in session.execute(
                    select(SourceRecord.department, SourceRecord.source_id, SourceRecord.entity_id)
                    .where(SourceRecord.deleted.is_(False))
                )
            }  # fmt: skip

    def edges(self) -> set[tuple[int, int, str]]:
        with self.sessions() as session:
            return {(a, b, s) for a, b, s in session.execute(select(
                LinkEdge.a_id, LinkEdge.b_id, LinkEdge.status))}  # fmt: skip


def _bidx(n: int) -> str:
    return hashlib.sha256(f"person-{n}".encode()).hexdigest()


def _person(n: int, *, identifier: bool = True, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "family_name": SURNAMES[n % len(SURNAMES)],
        "given_name": GIVEN[n % len(GIVEN)] + GIVEN[(n * 7 + 3) % len(GIVEN)],
        "birth_date": f"19{50 + n % 40}-{1 + n % 12:02d}-{1 + n % 28:02d}",
        "sex": "1" if n % 2 else "2",
        # far apart: no two people's phones one digit apart (a typo level)
        "phone": "13" + str(int(hashlib.sha256(b"%d" % n).hexdigest(), 16))[:9],
        "residence_division_code": "110105",
    }
    if identifier:
        payload["resident_id_bidx"] = _bidx(n)
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


@pytest.fixture
def registry(database_url: str, tmp_path: Path) -> Iterator[Registry]:
    tag = uuid.uuid4().hex[:6]
    env = {
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_DATA_DIR": str(tmp_path / "var"),
        "COLUMNS": "250",
    }
    with migrated(database_url) as sessions:
        wire = load_standard("person").wire
        schema_id = SchemaStore(sessions).register(wire.subject, wire.schema)
        yield Registry(sessions, env, f"hr_{tag}", f"ca_{tag}", schema_id)


def _populate(reg: Registry) -> dict[str, str]:
    """The population of the module docstring; returns the refs of the reviewed pairs."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for n in range(SOLID + FUZZY):
        rows.append((reg.hr, f"H{n}", _person(n)))
        # The other department: the same number (solid) or none, same name, date, phone.
        rows.append((reg.ca, f"C{n}", _person(n, identifier=n < SOLID)))
    # A pair for the review queue: another given name, another district, no phone.
    rows.append((reg.hr, "H-confirm", _person(100, phone=None)))
    rows.append(
        (reg.ca, "C-confirm", _person(100, identifier=False, phone=None, given_name="秀兰",
                                      residence_division_code="440106"))
    )  # fmt: skip
    # A pair a reviewer rejects: it would link on its fields.
    rows.append((reg.hr, "H-reject", _person(200)))
    rows.append((reg.ca, "C-reject", _person(200, identifier=False)))
    reg.apply(rows)
    refs = {
        "confirm": (f"person/{reg.hr}/H-confirm", f"person/{reg.ca}/C-confirm"),
        "reject": (f"person/{reg.hr}/H-reject", f"person/{reg.ca}/C-reject"),
    }
    with transaction(reg.sessions) as session:
        resolver = EntityResolver(modelstore.active_models(session))
        resolver.decide(session, *refs["confirm"], "confirmed", by="rita")
        resolver.decide(session, *refs["reject"], "rejected", by="rita")
    return {k: f"{reg.hr}/H-{k}" for k in refs}


def _groups(members: dict[str, str | None]) -> set[frozenset[str]]:
    found: dict[str | None, set[str]] = defaultdict(set)
    for ref, entity in members.items():
        found[entity if entity is not None else f"none:{ref}"].add(ref)
    return {frozenset(v) for v in found.values()}


def _store(reg: Registry, **thresholds: float) -> int:
    model = default_model("person")
    if thresholds:
        model = model.with_thresholds(**thresholds)
    with transaction(reg.sessions) as session:
        return modelstore.add(session, model, created_by="test", description=str(thresholds))


def test_switching_models_relinks_keeping_ids_and_decisions_and_is_audited(
    registry: Registry,
) -> None:
    reg = registry
    _populate(reg)
    start = reg.members()
    hr, ca = reg.hr, reg.ca
    assert all(start[f"{hr}/H{n}"] == start[f"{ca}/C{n}"] for n in range(SOLID + FUZZY))
    assert start[f"{hr}/H-confirm"] == start[f"{ca}/C-confirm"]
    assert start[f"{hr}/H-reject"] != start[f"{ca}/C-reject"]
    edges = reg.edges()
    with reg.sessions() as session:
        decisions = session.scalar(select(func.count()).select_from(LinkDecision))
    assert decisions == 2

    # 1. A copy of the shipped model: nothing changes, every entity keeps its id.
    same = _store(reg)
    out = reg.cli("use", str(same), "--by", "carol")
    assert f"person links with model version {same} (was 0)" in out
    assert "0 records changed entity" in out
    assert reg.members() == start
    assert reg.edges() == edges

    # 2. A strict model: only identifiers (and reviewers) still link.
    strict = _store(reg, link=90, review=80)
    out = reg.cli("use", str(strict), "--by", "carol")
    after = reg.members()
    for n in range(SOLID):  # identifier links: untouched, ids kept
        assert after[f"{hr}/H{n}"] == after[f"{ca}/C{n}"] == start[f"{hr}/H{n}"]
    for n in range(SOLID, SOLID + FUZZY):  # probabilistic links: split; one part keeps the id
        a, b = after[f"{hr}/H{n}"], after[f"{ca}/C{n}"]
        assert a != b
        assert start[f"{hr}/H{n}"] in (a, b)
    assert after[f"{hr}/H-confirm"] == after[f"{ca}/C-confirm"] == start[f"{hr}/H-confirm"]
    assert after[f"{hr}/H-reject"] == start[f"{hr}/H-reject"]
    assert after[f"{ca}/C-reject"] == start[f"{ca}/C-reject"]
    assert f"{FUZZY} records changed entity" in out
    with reg.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LinkDecision)) == 2
        assert modelstore.active_version(session, "person") == strict

    # 3. Back to the shipped model: the same partition as at the start; untouched ids kept.
    reg.cli("use", "0", "--by", "dora")
    back = reg.members()
    assert _groups(back) == _groups(start)
    for n in range(SOLID):
        assert back[f"{hr}/H{n}"] == start[f"{hr}/H{n}"]
    assert back[f"{hr}/H-confirm"] == start[f"{hr}/H-confirm"]
    assert back[f"{ca}/C-reject"] != back[f"{hr}/H-reject"]  # the rejection still holds

    # Every switch is in the audit log: who, the kind, the old and new versions.
    with reg.sessions() as session:
        entries = session.execute(
            select(AuditEntry.actor, AuditEntry.dataset, AuditEntry.reason)
            .where(AuditEntry.action == "registry.model.use")
            .order_by(AuditEntry.seq)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("carol", "person", f"linkage model person: version 0 -> {same}"),
        ("carol", "person", f"linkage model person: version {same} -> {strict}"),
        ("dora", "person", f"linkage model person: version {strict} -> 0"),
    ]
    out = runner.invoke(app, ["audit", "verify"], env=reg.env)
    assert out.exit_code == 0, out.output


def test_use_of_an_unknown_version_changes_nothing(registry: Registry) -> None:
    reg = registry
    _populate(reg)
    start = reg.members()
    out = reg.cli("use", "4", "--by", "carol", code=2)
    assert "no person model version 4" in out
    assert reg.members() == start
    with reg.sessions() as session:
        assert modelstore.active_version(session, "person") == 0
        assert (
            session.scalar(select(func.count()).where(AuditEntry.action == "registry.model.use"))
            == 0
        )


def test_fit_stores_a_new_version_that_is_not_active(registry: Registry) -> None:
    reg = registry
    _populate(reg)
    out = reg.cli("fit", "--seed", "3", "--by", "erin")
    assert "stored person model version 1 (not active)" in out
    with reg.sessions() as session:
        [shipped, fitted] = modelstore.versions(session, "person")
        assert shipped.active
        assert not fitted.active
        assert fitted.created_by == "erin"
        assert fitted.model is not None
        assert fitted.model.source.startswith("fit_")
        audited = session.scalar(
            select(AuditEntry.reason).where(AuditEntry.action == "registry.model.fit")
        )
    assert audited == "linkage model person: version 1 fitted to 84 records (not active)"
    shown = reg.cli("show", "1")
    assert "person version 1" in shown
    assert "(active)" not in shown
    assert "erin" in shown
    listed = reg.cli("list")
    assert "fit_" in listed

    # Too small a sample (whole entities up to 10 records): refused, nothing stored.
    out = reg.cli("fit", "--sample", "10", code=2)
    assert "model_fit_failed" in out
    assert "a fit needs at least 50" in out
    with reg.sessions() as session:
        assert len(modelstore.versions(session, "person")) == 2


def test_the_builder_links_with_the_model_active_at_each_transaction(
    registry: Registry, kafka: LocalKafka
) -> None:
    reg = registry
    strict = _store(reg, link=90, review=80)
    with transaction(reg.sessions) as session:
        modelstore.activate(session, "person", strict, by="carol")
    builder = RegistryBuilder(
        kafka.bootstrap_servers,
        reg.sessions,
        linkage_key=LINKAGE_KEY.encode(),
        keystore=keys_for(reg.sessions).keystore,
        group_id=f"models-{uuid.uuid4().hex[:8]}",
    )
    try:

        def build(rows: list[tuple[str, str, dict[str, Any]]]) -> None:
            with transaction(reg.sessions) as session:
                builder._apply_items(session, reg.items(rows), BuildStats())

        build([(reg.hr, "H1", _person(1)), (reg.ca, "C1", _person(1, identifier=False))])
        members = reg.members()
        assert members[f"{reg.hr}/H1"] != members[f"{reg.ca}/C1"]  # strict: not linked
        with transaction(reg.sessions) as session:  # switched while the builder runs
            modelstore.activate(session, "person", 0, by="carol")
        build([(reg.hr, "H2", _person(2)), (reg.ca, "C2", _person(2, identifier=False))])
        members = reg.members()
        assert members[f"{reg.hr}/H2"] == members[f"{reg.ca}/C2"]  # shipped: linked
    finally:
        builder.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of the test's own: a rebuild replays every std.* topic in the builder's
    real consumer group."""
    node = LocalKafka(tmp_path / "kafka", size=1)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def test_models_survive_a_rebuild_which_links_with_the_active_one(
    broker: LocalKafka, database_url: str, tmp_path: Path
) -> None:
    with migrated(database_url) as sessions:
        w = World(tmp_path, broker, sessions)
        w.publish("hr", household_toml, w.hr, [
            PERSON_HEADER,
            f"H1,{w.wang},王,秀英,1949-12-31,2,13800000001,110105",
            f"H3,{w.chen},陈,芳,1990-07-09,2,13900000003,440106",
        ])  # fmt: skip
        w.publish("ca", household_toml, w.ca, [
            PERSON_HEADER,
            f"C1,{w.wang},王,秀英,1949-12-31,2,,110105",
            f"C2,{w.chen_mistyped},陈,芳,1990-09-07,2,13900000003,440106",
        ])  # fmt: skip
        keys = keys_for(sessions)
        builder = RegistryBuilder(
            broker.bootstrap_servers, sessions, linkage_key=LINKAGE_KEY.encode(),
            keystore=keys.keystore, group_id=GROUP_ID,
        )  # fmt: skip
        try:
            builder.run_until_idle(idle_s=3.0, timeout_s=120)
        finally:
            builder.close()
        strict = default_model("person").with_thresholds(link=90, review=80)
        with transaction(sessions) as session:
            version = modelstore.add(session, strict, created_by="test")
            modelstore.activate(session, "person", version, by="carol")
            models = modelstore.active_models(session)
        relink(sessions, "person", models)
        with sessions() as session:
            chosen = {r.id: r.entity_id for r in session.scalars(select(SourceRecord))}

        report = rebuild(
            broker.bootstrap_servers, sessions, linkage_key=LINKAGE_KEY.encode(),
            keystore=keys.keystore,
        )  # fmt: skip
        # The models and the choice are still there, and the replay linked with the strict
        # model: the registry is the one the relink made (the same pairs, weights, entities).
        assert report.identical, (report.before.as_dict(), report.after.as_dict())
        with sessions() as session:
            assert modelstore.active_version(session, "person") == version
            assert [v.version for v in modelstore.versions(session, "person")] == [0, version]
            explanations = [e.explanation for e in session.scalars(select(LinkEdge))]
            rebuilt = {
                f"{r.department}/{r.source_id}": r.entity_id
                for r in session.scalars(select(SourceRecord))
            }
        assert explanations
        assert all(x["thresholds"] == {"link": 90.0, "review": 80.0} for x in explanations)
        assert rebuilt[f"{w.hr}/H3"] != rebuilt[f"{w.ca}/C2"]  # strict: the mistyped pair apart
        assert rebuilt[f"{w.hr}/H1"] == rebuilt[f"{w.ca}/C1"]  # the same number: linked
        assert set(rebuilt.values()) == set(chosen.values())  # and every entity kept its id
