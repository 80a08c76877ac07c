"""exchange.core.driver.DriverSelect on SQLite and PostgreSQL: the rows a Core execution gives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, and_, bindparam, insert, or_, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.driver import DriverSelect
from exchange.core.models import SourceRecord

pytestmark = pytest.mark.integration

RECORDS = SourceRecord.__table__
AT = datetime(2026, 11, 30, 17, 5, 9, 123456, tzinfo=UTC)


def _row(n: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "dataset": "person",
        "department": "health",
        "source_id": f"H-{n}",
        "lookup_key": f"key-{n % 3}",
        "version": n,
        "content_hash": f"{n:064x}",
        "schema_id": 7,
        "payload": {"full_name": "赵敏", "n": n, "tags": ["a", None], "phone": None},
        "topic": "std.person",
        "partition": 0,
        "offset": 10**12 + n,
        "ingested_at": AT,
        "updated_at": AT + timedelta(seconds=n),
        "deleted": n % 4 == 0,
        "valid_from": None if n % 2 else AT - timedelta(days=n),
        "entity_id": None if n % 5 == 0 else f"P{n % 2}",
    }
    row.update(changes)
    return row


@contextmanager
def seeded_engine(url: str, rows: int) -> Iterator[Engine]:
    """A migrated database at ``url`` holding ``_row(1)`` to ``_row(rows)``."""
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(insert(RECORDS), [_row(n) for n in range(1, rows + 1)])
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    with seeded_engine(database_url, 12) as engine:
        yield engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _core(session: Session, statement: DriverSelect, params: dict[str, object]) -> list[tuple]:
    return [tuple(row) for row in session.execute(statement.statement, params)]


KEYED = and_(
    RECORDS.c.dataset.in_(["address", "person", "organisation"]),  # expanded when compiled
    RECORDS.c.lookup_key == bindparam("subject"),
    RECORDS.c.deleted.is_(False),
)
MEMBERS = and_(
    RECORDS.c.deleted.is_(False),
    RECORDS.c.entity_id.in_(select(RECORDS.c.entity_id).where(KEYED)),
)


@pytest.mark.parametrize(
    "statement",
    [
        DriverSelect(select(RECORDS).where(KEYED)),  # every column type the table has
        DriverSelect(select(RECORDS).where(or_(KEYED, MEMBERS))),
        DriverSelect(union_all(select(RECORDS).where(KEYED), select(RECORDS).where(MEMBERS))),
        DriverSelect(
            select(RECORDS.c.id, RECORDS.c.payload["n"].label("n")).where(
                RECORDS.c.lookup_key == bindparam("subject")
            )
        ),
    ],
    ids=["keyed", "or", "union-all", "labelled"],
)
def test_rows_equal_a_core_executions(
    sessions: sessionmaker[Session], statement: DriverSelect
) -> None:
    for subject in ("key-0", "key-1", "key-2", "nobody"):
        with sessions() as session:
            expected = sorted(_core(session, statement, {"subject": subject}))
        with sessions() as session:
            rows = statement.all(session, {"subject": subject})
        assert sorted(tuple(r) for r in rows) == expected
        if subject != "nobody":
            assert expected, "the fixture must give the statement rows to compare"
        for row, same in zip(sorted(rows), expected, strict=True):
            # the same types, not only equal values (a naive datetime would equal nothing)
            assert [type(v) for v in row] == [type(v) for v in same]
            assert row._fields[0] == "id"  # rows have the columns' names


def test_values_come_back_converted(sessions: sessionmaker[Session]) -> None:
    statement = DriverSelect(select(RECORDS).where(RECORDS.c.source_id == bindparam("id")))
    with sessions() as session:
        (row,) = statement.all(session, {"id": "H-3"})
    assert row.updated_at == AT + timedelta(seconds=3)
    assert row.updated_at.tzinfo is not None
    assert row.payload == {"full_name": "赵敏", "n": 3, "tags": ["a", None], "phone": None}
    assert row.deleted is False
    assert row.valid_from is None
    assert row.offset == 10**12 + 3


def test_outside_a_transaction_the_connection_goes_back_at_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    statement = DriverSelect(select(RECORDS.c.id).where(RECORDS.c.lookup_key == "key-1"))
    with sessions() as session:
        assert len(statement.all(session, {})) == 4
        assert not session.in_transaction()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_inside_a_transaction_it_reads_on_the_sessions_connection(
    sessions: sessionmaker[Session],
) -> None:
    statement = DriverSelect(select(RECORDS.c.source_id).where(RECORDS.c.version == 99))
    with transaction(sessions) as session:
        session.execute(insert(RECORDS), [_row(99)])  # not committed yet
        assert [r.source_id for r in statement.all(session, {})] == ["H-99"]
        session.rollback()
    with sessions() as session:
        assert statement.all(session, {}) == []


def test_an_in_list_given_at_the_call_is_refused(sessions: sessionmaker[Session]) -> None:
    statement = DriverSelect(
        select(RECORDS.c.id).where(RECORDS.c.id.in_(bindparam("ids", expanding=True)))
    )
    with sessions() as session, pytest.raises(ValueError, match="expanding"):
        statement.all(session, {"ids": [1, 2]})
