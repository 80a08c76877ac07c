"""Several registry builders on PostgreSQL give the registry of one.

Two kinds of test. The race itself, without Kafka: two transactions (threads, each
with its own entity resolver as each builder has) insert records that share blocking
keys, both read their candidates before either commits (a barrier just before the
assignment lock), and after both the pairs are linked as one transaction alone links
them; with the lock but without the catch-up, the same interleaving misses them (the
race is real in this test). Two transactions changing both records of a pair at once
leave the pair scored on both new versions. Four departments' records (a generated
population), linked by four threads at once, give exactly the pairs (each stored once,
with the score one transaction gives it) and entities of one transaction. A record that
must move to another entity while another transaction changes it may cost a deadlock
(PostgreSQL fails one of the two): applied again, the registry is the serial one.

Then whole builds from Kafka: person records of four departments (a synthetic
population with corrupted duplicates) on a topic of six partitions, built by one
builder, by two builder processes in one consumer group, and by two of which one is
SIGKILLed mid-run and restarted: the registry's checksum is the same every time.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer
from sqlalchemy import Engine, func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from bench import builder_scaleout as scaleout
from bench.population import persons
from connectors.pipeline import Keys
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import LinkEdge, SourceRecord
from exchange.local.broker import LocalKafka
from exchange.registry import assignment
from exchange.registry import records as registry
from exchange.registry.entities import EntityResolver
from exchange.registry.records import Incoming
from exchange.security.keystore import LocalKeyStore
from tests.support.kafka import evict_members
from tests.support.keys import LINKAGE_KEY
from tests.support.postgres import PostgresServer
from tests.support.records import HEALTH, HR, Registry, rid

pytestmark = pytest.mark.integration

PAIRS = 40
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


@pytest.fixture
def sessions(postgres: PostgresServer) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(postgres.create_database(f"t_{uuid.uuid4().hex[:12]}"))
    migrate(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def _people(made: Registry, department: str) -> list[Incoming]:
    """One record of each of PAIRS people, as ``department`` holds it."""
    return [
        made.person(
            department,
            f"{department[:2]}-{i}",
            rid(f"110105{1950 + i}0{1 + i % 9}1{i % 10}{i:03d}"),
            given_name=GIVEN[i % len(GIVEN)],
            full_name="张" + GIVEN[i % len(GIVEN)],
            birth_date=f"{1950 + i}-0{1 + i % 9}-1{i % 10}",
            phone=f"1380000{i:04d}",
        )
        for i in range(PAIRS)
    ]


def _concurrently(
    sessions: sessionmaker[Session], batches: list[list[Incoming]]
) -> list[BaseException]:
    """Apply each batch in its own thread and transaction, with its own resolver."""
    errors: list[BaseException] = []

    def build(items: list[Incoming]) -> None:
        resolver = EntityResolver()
        try:
            with transaction(sessions) as session:
                applied = registry.apply(session, items)
                resolver.link(session, applied.changed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def _barrier_before_lock(monkeypatch: pytest.MonkeyPatch, parties: int) -> None:
    """Make the first lock taken in each thread wait until ``parties`` threads are there:
    every one of them has read its candidates by then, and none has committed."""
    barrier = threading.Barrier(parties, timeout=60)
    acquire = assignment.acquire
    first = threading.local()

    def waiting(session: Session) -> None:
        if not getattr(first, "done", False):
            first.done = True
            barrier.wait()
        acquire(session)

    monkeypatch.setattr(assignment, "acquire", waiting)


def _entities(sessions: sessionmaker[Session]) -> dict[str, str | None]:
    with sessions() as session:
        rows = session.execute(select(SourceRecord.source_id, SourceRecord.entity_id)).all()
    return {str(source_id): entity for source_id, entity in rows}


def _linked_pairs(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        ids = dict(session.execute(select(SourceRecord.id, SourceRecord.source_id)).all())
        edges = session.execute(select(LinkEdge.a_id, LinkEdge.b_id, LinkEdge.status)).all()
    return sum(
        1
        for a, b, status in edges
        if status == "link" and {ids[a][:2], ids[b][:2]} == {"ho", "he"}
        and ids[a].split("-")[1] == ids[b].split("-")[1]
    )  # fmt: skip


def test_two_transactions_keying_the_same_people_at_once_link_them(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made = Registry(LINKAGE_KEY.encode(), sessions)
    _barrier_before_lock(monkeypatch, 2)
    errors = _concurrently(sessions, [_people(made, HR), _people(made, HEALTH)])
    assert not errors, errors
    entity_of = _entities(sessions)
    assert len(entity_of) == 2 * PAIRS
    for i in range(PAIRS):
        mine, theirs = entity_of[f"ho-{i}"], entity_of[f"he-{i}"]
        assert mine is not None
        assert mine == theirs, f"pair {i} not linked"
    assert len(set(entity_of.values())) == PAIRS
    assert _linked_pairs(sessions) == PAIRS
    # The same records in one transaction: the same pairs.
    with sessions() as session:
        edges = session.scalar(select(func.count()).select_from(LinkEdge))
    assert edges == _one_transaction_edges(made, tmp_path)


def _one_transaction_edges(made: Registry, folder: Path) -> int:
    """How many pairs one transaction stores for the same people (on SQLite)."""
    engine = make_engine(f"sqlite:///{folder / 'alone.db'}")
    try:
        migrate(engine)
        alone = session_factory(engine)
        with transaction(alone) as session:
            items = _people(made, HR) + _people(made, HEALTH)
            applied = registry.apply(session, items)
            EntityResolver().link(session, applied.changed)
        with alone() as session:
            return int(session.scalar(select(func.count()).select_from(LinkEdge)) or 0)
    finally:
        engine.dispose()


def test_without_the_catch_up_the_same_interleaving_misses_the_pairs(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: the lock alone serialises assignment but each transaction links only
    # what it read before the other committed, so the race of the test above is real.
    def lock_only(
        resolver: EntityResolver, session: Session, changed: Any, live: Any, keys: Any,
        candidates: Any, known: Any, decisions: Any, edges: Any, old_entities: Any,
    ) -> assignment.CaughtUp:  # fmt: skip
        assignment.acquire(session)
        return assignment.CaughtUp(edges, known, old_entities)

    monkeypatch.setattr(assignment, "catch_up", lock_only)
    made = Registry(LINKAGE_KEY.encode(), sessions)
    _barrier_before_lock(monkeypatch, 2)
    errors = _concurrently(sessions, [_people(made, HR), _people(made, HEALTH)])
    assert not errors, errors
    entity_of = _entities(sessions)
    assert sum(entity_of[f"ho-{i}"] == entity_of[f"he-{i}"] for i in range(PAIRS)) == 0
    assert _linked_pairs(sessions) == 0


def _pair_weight(sessions: sessionmaker[Session]) -> tuple[str, float]:
    with sessions() as session:
        (row,) = session.execute(select(LinkEdge.status, LinkEdge.weight)).all()
    return str(row[0]), float(row[1])


def test_two_transactions_changing_both_records_of_a_pair_at_once_score_the_new_pair(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Two records of one person (the same identity number and phone); then each department
    # changes its record's phone to the same new number, in two transactions at once. Each
    # read the other's previous version before the lock: the pair must end up scored on both
    # new versions, as when the changes come one after the other.
    made = Registry(LINKAGE_KEY.encode(), sessions)
    number = rid("11010519850304002")
    old = [made.person(d, f"{d[:2]}-1", number, phone="13800000001") for d in (HR, HEALTH)]
    new = [made.person(d, f"{d[:2]}-1", number, phone="13900000009") for d in (HR, HEALTH)]
    made.apply(*old)
    _barrier_before_lock(monkeypatch, 2)
    errors = _concurrently(sessions, [[new[0]], [new[1]]])
    assert not errors, errors

    def serial(name: str, *steps: list[Incoming]) -> tuple[str, float]:
        engine = make_engine(f"sqlite:///{tmp_path / name}")
        try:
            migrate(engine)
            alone = session_factory(engine)
            resolver = EntityResolver()
            for items in steps:
                with transaction(alone) as session:
                    resolver.link(session, registry.apply(session, items).changed)
            return _pair_weight(alone)
        finally:
            engine.dispose()

    one_after_the_other = serial("serial.db", old, [new[0]], [new[1]])
    stale = serial("stale.db", [old[0], new[1]])  # what a missed catch-up would keep
    assert one_after_the_other != stale  # the phones tell them apart
    assert _pair_weight(sessions) == one_after_the_other
    entity_of = _entities(sessions)
    assert entity_of["ho-1"] is not None
    assert entity_of["ho-1"] == entity_of["he-1"]


def _registry_state(
    sessions: sessionmaker[Session],
) -> tuple[dict[tuple[str, str], tuple[str, float]], set[frozenset[str]]]:
    """Every stored pair (by refs) with its status and weight, and the entities' partition."""
    with sessions() as session:
        rows = session.execute(
            select(SourceRecord.id, SourceRecord.department, SourceRecord.source_id,
                   SourceRecord.entity_id)
        ).all()  # fmt: skip
        edges = session.execute(select(LinkEdge.a_id, LinkEdge.b_id, LinkEdge.status,
                                       LinkEdge.weight)).all()  # fmt: skip
    ref = {row_id: f"{dep}/{src}" for row_id, dep, src, _ in rows}
    pairs = {}
    for a, b, status, weight in edges:
        key = (ref[a], ref[b]) if ref[a] < ref[b] else (ref[b], ref[a])
        assert key not in pairs, f"{key} stored twice"
        pairs[key] = (str(status), float(weight))
    groups: dict[str, set[str]] = defaultdict(set)
    for row_id, _, _, entity in rows:
        assert entity is not None
        groups[entity].add(ref[row_id])
    return pairs, {frozenset(g) for g in groups.values()}


def test_four_departments_linked_at_once_give_the_pairs_and_entities_of_one_transaction(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A generated population (corrupted duplicates across departments): each department's
    # records in three transactions of one thread, the four threads at once (the first
    # transactions all read their candidates before any commits; the rest race freely).
    people = persons(80, seed=19)
    batches: dict[str, list[Incoming]] = defaultdict(list)
    for offset, rec in enumerate(people):
        batches[rec.department].append(
            Incoming("person", rec.department, rec.ref.rsplit("/", 1)[1], f"h{offset}", 1,
                     rec.payload, None, "std.person.v1", 0, offset, rec.updated_at)
        )  # fmt: skip
    errors: list[BaseException] = []
    _barrier_before_lock(monkeypatch, len(batches))

    def department(items: list[Incoming]) -> None:
        third = len(items) // 3 + 1
        errors.extend(_concurrently(sessions, [items[:third]]))
        errors.extend(_concurrently(sessions, [items[third : 2 * third]]))
        errors.extend(_concurrently(sessions, [items[2 * third :]]))

    threads = [threading.Thread(target=department, args=(b,)) for b in batches.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    pairs, partition = _registry_state(sessions)

    engine = make_engine(f"sqlite:///{tmp_path / 'alone.db'}")
    try:
        migrate(engine)
        alone = session_factory(engine)
        with transaction(alone) as session:
            items = [item for b in batches.values() for item in b]
            EntityResolver().link(session, registry.apply(session, items).changed)
        expected_pairs, expected_partition = _registry_state(alone)
    finally:
        engine.dispose()
    assert len(expected_pairs) > len(people) // 3  # the population links
    assert pairs == expected_pairs
    assert partition == expected_partition


def test_a_record_moved_while_another_transaction_changes_it_costs_a_retry_not_the_registry(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The one wait left (assignment's docstring): the household registry's record of a
    # person (in an entity with two of her benefit payments) changes to match a health
    # record of no identity number, which must then move into her entity, while the
    # health department changes that record's phone. If the first takes the lock first, it
    # waits for the second's row and the second for the lock: PostgreSQL fails one of them
    # (deadlock detected); applied again, as the builder does, the registry is the one the
    # two changes make one after the other.
    made = Registry(LINKAGE_KEY.encode(), sessions)
    number = rid("11010519850304002")

    def payment(source_id: str) -> Incoming:
        bidx = made.bidx(number)
        return made._incoming("benefit_payment", "civil_affairs", source_id,
                              {"resident_id_bidx": bidx, "amount_fen": 61000}, bidx)  # fmt: skip

    other = {"given_name": "桂兰", "full_name": "张桂兰", "birth_date": "1960-07-21"}
    first = [
        made.person(HR, "ho-1", number),
        payment("pay-1"),
        payment("pay-2"),
        made.person(HEALTH, "he-1", number, resident_id_bidx=None, **other),
    ]
    matching = made.person(HR, "ho-1", number, **other)  # now also 张桂兰, born 1960-07-21
    rephoned = made.person(HEALTH, "he-1", number, resident_id_bidx=None, **other,
                           phone="13900000009")  # fmt: skip
    made.apply(*first)
    before = _entities(sessions)
    assert before["ho-1"] == before["pay-1"] == before["pay-2"] != before["he-1"]
    _barrier_before_lock(monkeypatch, 2)
    errors = _concurrently(sessions, [[matching], [rephoned]])
    assert len(errors) <= 1, errors
    if errors:  # the transaction PostgreSQL chose, applied again
        assert "DeadlockDetected" in repr(errors[0].__cause__), repr(errors[0].__cause__)
        monkeypatch.setattr(assignment, "acquire", _plain_acquire)
        with sessions() as session:
            held = dict(
                session.execute(select(SourceRecord.source_id, SourceRecord.content_hash)).all()
            )
        again = [i for i in (matching, rephoned) if held[i.source_id] != i.content_hash]
        assert len(again) == 1
        assert not _concurrently(sessions, [again])
    engine = make_engine(f"sqlite:///{tmp_path / 'serial.db'}")
    try:
        migrate(engine)
        alone = session_factory(engine)
        resolver = EntityResolver()
        for items in (first, [matching], [rephoned]):
            with transaction(alone) as session:
                resolver.link(session, registry.apply(session, items).changed)
        assert _registry_state(sessions) == _registry_state(alone)
    finally:
        engine.dispose()


_plain_acquire = assignment.acquire


# --------------------------------------------------------------------------
# Whole builds from Kafka: one builder, two, two with one killed
# --------------------------------------------------------------------------

RECORDS = 3_000
SEED = 1919
MAX_POLL = 250  # records a poll (the builder's 5,000 would take them all in one transaction)


@dataclass
class Published:
    """The population on its own broker's std.person.v1 (six partitions), and the catalogue
    (schemas, keys) each registry database gets a copy of."""

    bootstrap: str
    catalogue: Engine
    keys: tuple[bytes, bytes]
    server: PostgresServer

    def registry(self) -> str:
        url = self.server.create_database(f"t_{uuid.uuid4().hex[:12]}")
        scaleout.fresh_registry(self.catalogue, url)
        return url

    def member(
        self, url: str, group: str, name: str, result: Path | None = None, *, group_size: int = 1
    ) -> subprocess.Popen[bytes]:
        return scaleout.spawn_member(
            url, self.bootstrap, group, RECORDS, self.keys, name=name, result=result,
            max_poll=MAX_POLL, group_size=group_size,
        )  # fmt: skip


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[Published]:
    base = tmp_path_factory.mktemp("scaleout")
    broker = LocalKafka(base / "kafka", size=1, partitions=scaleout.PARTITIONS)
    catalogue = make_engine(f"sqlite:///{base / 'catalogue.db'}")
    broker.start()
    try:
        migrate(catalogue)
        keys = (secrets.token_bytes(32), secrets.token_bytes(32))
        sessions = session_factory(catalogue)
        tomls = scaleout.write_exports(base / "exports", RECORDS, SEED)
        store = LocalKeyStore(sessions, keys[0])
        assert scaleout.publish(broker.bootstrap_servers, sessions, Keys(store, keys[1]), tomls)
        assert _partitions(broker.bootstrap_servers) == 6
        yield Published(broker.bootstrap_servers, catalogue, keys, postgres)
    finally:
        broker.stop()
        catalogue.dispose()


def _partitions(bootstrap: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return len(consumer.partitions_for_topic(scaleout.TOPIC) or ())
    finally:
        consumer.close()


def _wait(*procs: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        assert proc.wait(timeout=max(deadline - time.monotonic(), 1)) == 0, proc.args


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    """Stop (SIGKILL) the members still running, and reap them."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _versions(url: str) -> int:
    engine = make_engine(url)
    try:
        return scaleout.versions(session_factory(engine))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def one_builder(published: Published) -> str:
    """The checksum of the registry one builder makes of the population."""
    url = published.registry()
    _wait(published.member(url, f"one-{uuid.uuid4().hex[:6]}", "member-one"))
    assert _versions(url) == RECORDS
    return scaleout.checksum(url)


def test_two_builders_in_one_group_make_the_registry_of_one(
    published: Published, one_builder: str, tmp_path: Path
) -> None:
    url = published.registry()
    group = f"two-{uuid.uuid4().hex[:6]}"
    results = [tmp_path / "a.json", tmp_path / "b.json"]
    a = published.member(url, group, "member-a", results[0], group_size=2)
    b = published.member(url, group, "member-b", results[1], group_size=2)
    try:
        _wait(a, b)
    finally:
        _stop(a, b)
    assert _versions(url) == RECORDS
    assert scaleout.checksum(url) == one_builder
    # Both members built (the group shared the partitions), each taking the lock.
    applied = [json.loads(path.read_text(encoding="utf-8")) for path in results]
    assert sum(m["applied"] for m in applied) == RECORDS
    assert all(m["applied"] > 0 and m["lock"]["taken"] > 0 for m in applied), applied
    assert all(m["dead_lettered"] == 0 for m in applied)


def test_two_builders_one_killed_mid_run_and_restarted_make_the_registry_of_one(
    published: Published, one_builder: str
) -> None:
    url = published.registry()
    group = f"kill-{uuid.uuid4().hex[:6]}"
    a = published.member(url, group, "member-a", group_size=2)
    b = published.member(url, group, "member-b", group_size=2)
    try:
        at = _kill_inside_a_write(a, url, "member-a")
    except BaseException:
        _stop(b)
        raise
    finally:
        _stop(a)
    assert 0 < at < RECORDS, f"killed with {at} of {RECORDS} versions applied: not mid-run"
    # The restarted member gets partitions at once, not after the killed one's session
    # timeout (45 s); the one still running rejoins.
    evict_members(published.bootstrap, group)
    again = published.member(url, group, "member-a-again")
    try:
        _wait(again, b)
    finally:
        _stop(again, b)
    assert _versions(url) == RECORDS
    assert scaleout.checksum(url) == one_builder


def _kill_inside_a_write(proc: subprocess.Popen[bytes], url: str, name: str) -> int:
    """SIGKILL ``proc`` the first time it is seen, frozen, inside a write transaction (its
    PostgreSQL backend, told apart by application name, has a transaction id) once some
    records are committed; returns how many versions were committed then."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + 300
    with psycopg.connect(plain, autocommit=True) as probe:
        while True:
            assert proc.poll() is None, f"{name} exited ({proc.returncode}) before the kill"
            assert time.monotonic() < deadline, f"{name} was never seen writing"
            os.kill(proc.pid, signal.SIGSTOP)
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND backend_xid IS NOT NULL",
                (name,),
            ).fetchone()
            done = probe.execute("SELECT count(*) FROM record_versions").fetchone()
            if row and row[0] and done and done[0]:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                count = probe.execute("SELECT count(*) FROM record_versions").fetchone()
                return int(count[0]) if count else 0
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.005)
