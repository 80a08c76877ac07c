"""A builder killed at many points converges to the registry an uninterrupted build makes.

On its own broker (the rebuild replays every std.* topic and uses the builder's
real consumer group), three departments publish a few thousand records that
overlap (shared identity numbers, name variants, benefit payments), then change
some and withdraw others. The registry builder runs as the real command
(`exchange registry build`) and is SIGKILLed four times while it applies them,
at points chosen by what it has applied (inside a write transaction, right after
a commit), then restarted until it is idle. `exchange registry rebuild` then
empties the registry and replays the topics uninterrupted: the checksum must be
the same, on SQLite and on PostgreSQL, and entities keep their ids.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from connectors import load_definition, run_connector
from connectors.withdraw import withdraw_records
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.models import RecordVersion, SourceRecord
from exchange.local.broker import LocalKafka
from exchange.registry.builder import GROUP_ID
from exchange.registry.checksum import registry_checksum
from exchange.registry.rebuild import RebuildError, group_is_active, rebuild
from schemas import SchemaStore
from schemas.validators import resident_id_check_character
from tests.integration.test_registry_linkage import PERSON_HEADER
from tests.support.examples import benefits_toml, household_toml, write_toml
from tests.support.kafka import evict_members
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64, keys_for

pytestmark = pytest.mark.integration

PEOPLE = 2_500
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    node = LocalKafka(tmp_path / "kafka", size=1)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


def _people(rng: random.Random) -> list[tuple[str, str, str, str, str, str]]:
    people = []
    for i in range(PEOPLE):
        birth = f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        region = ("110105", "110106", "110107")[i // 1000]  # + birth + serial: unique
        number = rid(f"{region}{birth.replace('-', '')}{i % 1000:03d}")
        people.append(
            (
                number,
                rng.choice(SURNAMES),
                rng.choice(GIVEN) + rng.choice(["", rng.choice(GIVEN)]),
                birth,
                rng.choice("12"),
                f"139{rng.randint(0, 10**8 - 1):08d}",
            )
        )
    return people


def _write(
    folder: Path, name: str, example: Callable[..., str], department: str, rows: list[str]
) -> Path:
    (folder / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    text = example(connector_id=name, department=department, csv=f"{name}.csv")
    return write_toml(folder, text, f"{name}.toml")


def _run(toml: Path, broker: LocalKafka, sessions: sessionmaker[Session]) -> None:
    report = run_connector(
        load_definition(toml),
        bootstrap=broker.bootstrap_servers,
        store=SchemaStore(sessions),
        keys=keys_for(sessions),
        restart=True,
    )
    assert report.reconciled
    assert report.rejected == 0, report.rejections[:3]


def _count(sessions: sessionmaker[Session]) -> int:
    """Versions applied so far (records, changes and withdrawals)."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RecordVersion)) or 0)


def _builder(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "exchange.cli", "registry", "build", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class _WriteProbe:
    """Whether another connection is inside a write transaction of the registry's database.

    SQLite: another connection holds the write lock (``BEGIN IMMEDIATE`` fails at once).
    PostgreSQL: another backend of the database has a transaction id, which it is given at
    its first write.
    """

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._sqlite: sqlite3.Connection | None = None
        self._postgres: psycopg.Connection[tuple[object, ...]] | None = None
        if url.get_backend_name() == "sqlite":
            assert url.database
            self._sqlite = sqlite3.connect(url.database, timeout=0, isolation_level=None)
        else:
            plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._postgres = psycopg.connect(plain, autocommit=True)

    def __call__(self) -> bool:
        if self._sqlite is not None:
            try:
                self._sqlite.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                return True
            self._sqlite.execute("ROLLBACK")
            return False
        assert self._postgres is not None
        row = self._postgres.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        ).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        for connection in (self._sqlite, self._postgres):
            if connection is not None:
                connection.close()


def _kill_inside_a_write(
    env: dict[str, str],
    sessions: sessionmaker[Session],
    in_write: _WriteProbe,
    published: int,
    until: float,
) -> tuple[str, int, int]:
    """Run a builder; SIGKILL it the first time it is seen, frozen, inside a write
    transaction (what that transaction wrote is then not committed)."""
    before = _count(sessions)
    proc = _builder(env)
    try:
        while True:
            assert proc.poll() is None, f"the builder exited ({proc.returncode})"
            os.kill(proc.pid, signal.SIGSTOP)
            if in_write():
                break
            os.kill(proc.pid, signal.SIGCONT)
            # Between two looks it applied everything: not seen writing, and that is no kill.
            assert _count(sessions) < published, "the builder was never seen writing"
            assert time.monotonic() < until, "the builder wrote nothing"
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return "inside a write", before, _count(sessions)


def _kill_after_a_commit(
    env: dict[str, str], sessions: sessionmaker[Session], until: float
) -> tuple[str, int, int]:
    """Run a builder; SIGKILL it as soon as one of its transactions is seen committed."""
    before = _count(sessions)
    proc = _builder(env)
    try:
        while _count(sessions) == before:
            assert proc.poll() is None, f"the builder exited ({proc.returncode})"
            assert time.monotonic() < until, "the builder applied nothing"
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return "after a commit", before, _count(sessions)


def test_a_builder_killed_at_random_converges_and_a_rebuild_reproduces_it(
    broker: LocalKafka, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(20261122)
    engine = make_engine(database_url)
    request.addfinalizer(engine.dispose)  # no connection is left for the collector to find
    migrate(engine)
    sessions = session_factory(engine)
    people = _people(rng)

    # Household registry: everyone. Civil affairs: half of them, a fifth with another given
    # name spelling. Benefit payments: a third. Then a tenth of the registry changes phone
    # numbers, and civil affairs withdraws fifty records.
    hr = [PERSON_HEADER] + [
        f"H{i},{n},{s},{g},{b},{x},{p},110105" for i, (n, s, g, b, x, p) in enumerate(people)
    ]
    ca = [PERSON_HEADER]
    for i, (n, s, g, b, x, _) in enumerate(people[: PEOPLE // 2]):
        given = g[::-1] if i % 5 == 0 and len(g) == 2 else g
        ca.append(f"C{i},{n},{s},{given},{b},{x},,110105")
    mz = ["payment_no,id_number,benefit,amount,start,end,paid,case_ref,division"] + [
        f"P{i},{n},1,112000,2024-03-01,2024-03-31,2024-03-05,MZ-{i},110105"
        for i, (n, *_) in enumerate(people[: PEOPLE // 3])
    ]
    hr_toml = _write(tmp_path, "hr", household_toml, "household_registry", hr)
    ca_toml = _write(tmp_path, "ca", household_toml, "civil_affairs", ca)
    mz_toml = _write(tmp_path, "mz", benefits_toml, "benefits_office", mz)
    expected_records = PEOPLE + PEOPLE // 2 + PEOPLE // 3
    expected_versions = expected_records + PEOPLE // 10 + 50

    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {
        "EXCHANGE_DATABASE_URL": database_url,
        "EXCHANGE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "EXCHANGE_LINKAGE_KEY": LINKAGE_KEY,
        "EXCHANGE_MASTER_KEY": MASTER_KEY_B64,
        "EXCHANGE_DATA_DIR": str(tmp_path / "var"),
    }
    # The builder is killed at points chosen by what it has applied, never by the clock: in
    # each stage, one builder is frozen (SIGSTOP) the first time it is seen inside a write
    # transaction and killed there, the next is killed as soon as a transaction of its
    # committed (the moment between the database commit and the offset commit). The household
    # registry is published first and the rest only after its two kills, so every kill but
    # the last falls before the whole load is applied, however fast the machine.
    kills: list[tuple[str, int, int]] = []  # (where, versions before, versions after)
    in_write = _WriteProbe(database_url)
    request.addfinalizer(in_write.close)
    until = time.monotonic() + 600
    _run(hr_toml, broker, sessions)
    for published in (PEOPLE, expected_versions):
        if published == expected_versions:
            for toml in (ca_toml, mz_toml):
                _run(toml, broker, sessions)
            for i in range(0, PEOPLE, 10):
                n, s, g, b, x, _ = people[i]
                hr[i + 1] = f"H{i},{n},{s},{g},{b},{x},13{i:09d},110105"
            (tmp_path / "hr.csv").write_text("\n".join(hr) + "\n", encoding="utf-8")
            _run(hr_toml, broker, sessions)
            withdraw_records(
                load_definition(ca_toml),
                [f"C{i}" for i in range(0, 500, 10)],
                bootstrap=broker.bootstrap_servers,
                store=SchemaStore(sessions),
                keys=keys_for(sessions),
            )
        kills.append(_kill_inside_a_write(env, sessions, in_write, published, until))
        # The next builder gets the partitions at once, not after the dead one's session
        # timeout (45 s). Once, after the last kill on SQLite, the final builder waits it out
        # as a restarted builder does in production (that does not depend on the database).
        evict_members(broker.bootstrap_servers, GROUP_ID)
        if _count(sessions) < published:
            kills.append(_kill_after_a_commit(env, sessions, until))
            if published < expected_versions or not database_url.startswith("sqlite"):
                evict_members(broker.bootstrap_servers, GROUP_ID)
    inside = [k for k in kills if k[0] == "inside a write"]
    assert len(inside) == 2, kills
    assert sum(after < expected_versions for _, _, after in kills) >= 3, kills
    print(f"kills (where, versions before, versions after): {kills}")
    final = _builder(env, "--until-idle")
    assert final.wait(timeout=600) == 0

    with sessions() as session:
        resumed = registry_checksum(session)
    assert resumed.records == expected_records
    assert resumed.withdrawn == 50
    assert resumed.versions == expected_versions
    # Every record shares an identity number with a household registry record: one entity
    # per person (some may also link to each other probabilistically, never fewer than that).
    assert resumed.entities <= PEOPLE
    assert resumed.entities >= PEOPLE * 0.95
    with sessions() as session:
        old_ids = dict(
            session.execute(
                select(SourceRecord.source_id, SourceRecord.entity_id).where(
                    SourceRecord.department == "household_registry"
                )
            ).all()
        )

    # The stopped builder's group is idle: a rebuild may run; it reproduces the registry.
    report = rebuild(
        broker.bootstrap_servers,
        sessions,
        linkage_key=LINKAGE_KEY.encode(),
        keystore=keys_for(sessions).keystore,
    )
    assert report.before == resumed
    assert report.after == resumed, (resumed.parts, report.after.parts)
    assert report.identical
    with sessions() as session:
        new_ids = dict(
            session.execute(
                select(SourceRecord.source_id, SourceRecord.entity_id).where(
                    SourceRecord.department == "household_registry"
                )
            ).all()
        )
    assert new_ids == old_ids  # every entity kept its id

    # While a builder is running, a rebuild is refused with a clear reason.
    running = _builder(env)
    try:
        # Until the builder has joined its group (slow to start on a loaded machine) there is
        # nothing to refuse: wait for it, as an operator's `exchange status` would show it.
        joined_by = time.monotonic() + 180
        while not group_is_active(broker.bootstrap_servers):
            assert running.poll() is None, "the builder exited at start"
            assert time.monotonic() < joined_by, "the builder did not join its group in 180 s"
            time.sleep(0.5)
        with pytest.raises(RebuildError, match="is running; stop it first"):
            rebuild(
                broker.bootstrap_servers,
                sessions,
                linkage_key=LINKAGE_KEY.encode(),
                keystore=keys_for(sessions).keystore,
                member_timeout_s=2,
            )
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=60)
