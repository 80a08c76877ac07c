"""exchange.core.driver on SQLite: reads outside a transaction use the engine's idle-read
connections (no pool checkout), see the latest commits, and leave nothing open."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, event, insert, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from exchange.core.db import session_factory, transaction
from exchange.core.driver import IDLE_READS_KEPT, DriverSelect, _IdleReads
from exchange.core.models import SourceRecord
from tests.integration.test_driver_select import _row, seeded_engine

pytestmark = pytest.mark.integration

RECORDS = SourceRecord.__table__
COUNT = DriverSelect(select(RECORDS.c.id).where(RECORDS.c.deleted.is_(False)))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with seeded_engine(f"sqlite:///{tmp_path / 'registry.db'}", 4) as engine:  # 3 live
        yield engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _idle(engine: Engine) -> list[sqlite3.Connection]:
    return [raw.dbapi_connection for raw in _IdleReads.of(engine)._idle]  # type: ignore[misc]


def _read_once(engine: Engine, sessions: sessionmaker[Session]) -> sqlite3.Connection:
    """Read the live records once; the connection the read left idle (the only one)."""
    with sessions() as session:
        assert len(COUNT.all(session, {})) == 3
    (idle,) = _idle(engine)
    return idle


def _assert_closed(connection: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        connection.execute("SELECT 1")


def test_reads_reuse_one_connection_without_the_pools_checkout(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *args: checkouts.append(args))
    with sessions() as session:
        assert len(COUNT.all(session, {})) == 3
        first = _idle(engine)
        for _ in range(20):
            assert len(COUNT.all(session, {})) == 3
    assert len(first) == 1
    assert _idle(engine) == first  # the same connection, every time
    assert len(checkouts) == 1  # opened once through the engine, then never checked out
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_read_sees_what_was_committed_since_and_keeps_no_snapshot(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    idle = _read_once(engine, sessions)
    assert not idle.in_transaction
    with transaction(sessions) as session:
        session.execute(insert(RECORDS), [_row(5), _row(6)])  # both live
    with sessions() as session:
        assert len(COUNT.all(session, {})) == 5
    assert not idle.in_transaction


def test_a_failed_read_closes_its_connection(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    idle = _read_once(engine, sessions)
    missing = Table("not_a_table", MetaData(), Column("id", Integer))
    with sessions() as session, pytest.raises(sqlite3.OperationalError, match="no such table"):
        DriverSelect(select(missing.c.id)).all(session, {})
    assert _idle(engine) == []
    _assert_closed(idle)
    with sessions() as session:
        assert len(COUNT.all(session, {})) == 3  # on a new connection
    assert len(_idle(engine)) == 1
    assert _idle(engine) != [idle]


def test_dispose_closes_the_idle_connections_and_reads_go_on(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    idle = _read_once(engine, sessions)
    engine.dispose()
    assert _idle(engine) == []
    _assert_closed(idle)
    with sessions() as session:
        assert len(COUNT.all(session, {})) == 3


def test_at_most_the_kept_number_stay_idle(engine: Engine) -> None:
    reads = _IdleReads.of(engine)
    taken = [reads.take(engine) for _ in range(IDLE_READS_KEPT + 3)]
    dbapi = [raw.dbapi_connection for raw in taken]
    assert len({id(c) for c in dbapi}) == IDLE_READS_KEPT + 3
    for raw in taken:
        reads.give_back(raw)
    assert _idle(engine) == dbapi[:IDLE_READS_KEPT]  # the first ones given back are kept
    for extra in dbapi[IDLE_READS_KEPT:]:
        _assert_closed(extra)  # type: ignore[arg-type]


def test_concurrent_reads_never_share_a_connection(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    reads = _IdleReads.of(engine)
    in_use: set[int] = set()
    shared: list[int] = []
    guard = threading.Lock()
    take, give_back = reads.take, reads.give_back

    def tracked_take(engine: Engine) -> PoolProxiedConnection:
        raw = take(engine)
        with guard:
            if id(raw) in in_use:
                shared.append(id(raw))
            in_use.add(id(raw))
        return raw

    def tracked_give_back(raw: PoolProxiedConnection) -> None:
        with guard:
            in_use.discard(id(raw))
        give_back(raw)

    reads.take, reads.give_back = tracked_take, tracked_give_back  # type: ignore[method-assign]
    counts: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                with sessions() as session:
                    counts.append(len(COUNT.all(session, {})))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert counts == [3] * 600
    assert shared == []
    assert 1 <= len(_idle(engine)) <= IDLE_READS_KEPT
