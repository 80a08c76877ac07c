"""SQL sources for real, on SQLite and on PostgreSQL: watermarks, queries, errors, streaming."""

from __future__ import annotations

import tracemalloc
import types
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    text,
    update,
)
from sqlalchemy.engine import make_url

from connectors.definition import ConnectorDefinition
from connectors.sources import SqlSource, open_source
from exchange.core.errors import SourceError

pytestmark = pytest.mark.integration

URL_ENV = "TEST_DEPARTMENT_DB"
T0 = datetime(2024, 3, 1, 9, 0, 0)

metadata = MetaData()
departments = Table(
    "departments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(2000), nullable=False),
    Column("region", String(20), nullable=False),
    Column("updated_at", DateTime, nullable=True),
)


def _definition(**source: object) -> ConnectorDefinition:
    return ConnectorDefinition.model_validate(
        {
            "connector": {"id": "sql-test", "department": "civil_affairs", "standard": "person"},
            "source": {"type": "sql", "url_env": URL_ENV, "key": "id", **source},
            "fields": {},
        }
    )


def _rows(n: int, *, start: int = 1, region: str = "north") -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"department {i}",
            "region": region if i % 3 else "south",
            "updated_at": T0 + timedelta(minutes=i),
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def engine(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    engine = create_engine(database_url)
    metadata.create_all(engine)
    monkeypatch.setenv(URL_ENV, database_url)
    yield engine
    engine.dispose()


def _ids(source: SqlSource) -> list[int]:
    return [int(row.values["id"]) for row in source.rows()]


def _open(since: tuple[str, str] | None = None, **spec: object) -> SqlSource:
    source = open_source(_definition(**spec), since=since)
    assert isinstance(source, SqlSource)
    return source


def test_a_watermark_reads_each_added_or_changed_row_once(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(departments), _rows(5))

    first = _open(table="departments", watermark="updated_at")
    rows = list(first.rows())

    assert first.columns() == ["id", "name", "region", "updated_at"]
    assert [r.line for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].values == {
        "id": "1",
        "name": "department 1",
        "region": "north",
        "updated_at": "2024-03-01T09:01:00",
    }
    assert rows[0].watermark == "2024-03-01T09:01:00"
    high = first.high_watermark()
    assert high == ("2024-03-01T09:05:00", "5")

    # Two new rows, and row 2 changed; row 4 gets the same timestamp as the last run's
    # last row but a smaller key: it was read last time, so it is not read again.
    with engine.begin() as conn:
        conn.execute(insert(departments), _rows(2, start=6))
        conn.execute(
            update(departments)
            .where(departments.c.id == 2)
            .values(name="renamed", updated_at=T0 + timedelta(hours=1))
        )

    second = _open(since=high, table="departments", watermark="updated_at")
    changed = list(second.rows())

    assert [(r.line, r.values["id"]) for r in changed] == [(1, "6"), (2, "7"), (3, "2")]
    assert changed[2].values["name"] == "renamed"
    assert second.high_watermark() == ("2024-03-01T10:00:00", "2")

    third = _open(since=second.high_watermark(), table="departments", watermark="updated_at")
    assert list(third.rows()) == []
    assert third.high_watermark() == second.high_watermark()  # nothing new: keep the checkpoint


def test_rows_with_the_same_watermark_are_split_by_key(engine: Engine) -> None:
    same = T0 + timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(insert(departments), [{**r, "updated_at": same} for r in _rows(4)])

    source = _open(since=(same.isoformat(), "2"), table="departments", watermark="updated_at")

    assert _ids(source) == [3, 4]


def test_a_query_source_respects_the_watermark(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(departments), _rows(9))
    # % (a psycopg placeholder character) and : (a bind marker in SQLAlchemy text)
    # must reach the database as written.
    query = (
        "SELECT id, name, updated_at FROM departments "
        "WHERE region = 'north' AND name LIKE 'department%' AND name <> 'a:b';"
    )

    first = _open(query=query, watermark="updated_at")
    assert first.columns() == ["id", "name", "updated_at"]
    assert _ids(first) == [1, 2, 4, 5, 7, 8]
    high = first.high_watermark()
    assert high is not None

    with engine.begin() as conn:
        conn.execute(insert(departments), _rows(3, start=10))  # 10, 11 north; 12 south
        for changed in (1, 3):  # 1 is north, 3 is south: only 1 is read
            conn.execute(
                update(departments)
                .where(departments.c.id == changed)
                .values(updated_at=T0 + timedelta(hours=2, minutes=changed))
            )

    second = _open(since=high, query=query, watermark="updated_at")
    assert _ids(second) == [10, 11, 1]
    assert _ids(_open(since=second.high_watermark(), query=query, watermark="updated_at")) == []


def test_rows_with_a_null_watermark_are_read_on_the_first_run_only(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(departments), [*_rows(2), {**_rows(1, start=3)[0], "updated_at": None}])

    first = _open(table="departments", watermark="updated_at")
    assert sorted(_ids(first)) == [1, 2, 3]
    assert first.high_watermark() == ("2024-03-01T09:02:00", "2")
    assert (
        _ids(_open(since=first.high_watermark(), table="departments", watermark="updated_at")) == []
    )


def test_skip_resumes_with_the_same_rows_and_positions(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(departments), _rows(10))

    source = _open(table="departments", watermark="updated_at", batch_size=3)
    full = list(source.rows())

    for skip in (0, 1, 4, 9, 10, 12):
        resumed = _open(table="departments", watermark="updated_at", batch_size=3)
        assert list(resumed.rows(skip=skip)) == full[skip:]
        assert resumed.high_watermark() == source.high_watermark()


def test_a_missing_table_is_a_source_error(engine: Engine) -> None:
    with pytest.raises(
        SourceError, match="the table 'no_such_table' does not exist in the database"
    ):
        _open(table="no_such_table")


def test_a_missing_column_is_a_source_error(engine: Engine) -> None:
    with pytest.raises(
        SourceError,
        match=r"the watermark column 'changed' is not in table 'departments' "
        r"\(its columns: id, name, region, updated_at\)",
    ):
        _open(table="departments", watermark="changed")
    with pytest.raises(SourceError, match=r"the key column 'id' is not in the .*query's result"):
        _open(query="SELECT name FROM departments")


def test_a_query_on_a_missing_table_is_a_source_error(engine: Engine) -> None:
    with pytest.raises(
        SourceError, match=r"the \[source\]\.query cannot be run at .*no_such_table"
    ):
        _open(query="SELECT * FROM no_such_table")


def test_a_query_with_a_repeated_column_name(engine: Engine, database_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(departments), _rows(1))
    query = "SELECT a.id, b.id FROM departments a JOIN departments b ON a.id = b.id"

    if database_url.startswith("sqlite"):
        # SQLite renames the second column of the subquery itself.
        assert len(set(_open(query=query).columns())) == 2
    else:
        with pytest.raises(SourceError, match=r"returns the column\(s\) id more than once"):
            _open(query=query)


def test_the_password_is_neither_shown_nor_part_of_the_fingerprint(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        base = _open(table="departments", watermark="updated_at")
        assert base.describe() == f"table departments at {database_url}"
        return
    # The test server trusts local connections, so any password works.
    monkeypatch.setenv(URL_ENV, url.set(password="s3cret-one").render_as_string(False))
    one = _open(table="departments", watermark="updated_at")
    monkeypatch.setenv(URL_ENV, url.set(password="s3cret-two").render_as_string(False))
    two = _open(table="departments", watermark="updated_at")

    assert "s3cret" not in one.describe()
    assert "***" in one.describe()
    assert one.fingerprint() == two.fingerprint()
    monkeypatch.setenv(URL_ENV, url.set(database="other").render_as_string(False))
    with pytest.raises(SourceError, match="cannot connect to the database") as caught:
        _open(table="departments")
    assert "s3cret" not in caught.value.message


def test_twenty_thousand_rows_stream_in_bounded_memory(engine: Engine, database_url: str) -> None:
    total = 20_000
    # ~1 KB per row: holding every row (or every SourceRow) at once would take > 40 MB.
    filler = "x" * 1000
    with engine.begin() as conn:
        for start in range(1, total + 1, 5_000):
            batch = _rows(5_000, start=start)
            conn.execute(insert(departments), [{**r, "name": f"{filler}{r['id']}"} for r in batch])

    source = _open(table="departments", watermark="updated_at", batch_size=500)
    rows = source.rows()
    assert isinstance(rows, types.GeneratorType)

    count = 0
    tracemalloc.start()
    try:
        for row in rows:
            count += 1
            assert row.line == count
            if count == 1_234 and not database_url.startswith("sqlite"):
                # A server-side cursor, read in batch_size batches: the whole result is
                # not held by the client either (libpq's memory is not seen by tracemalloc).
                assert _last_statement_of_the_other_session(engine) == "FETCH FORWARD 500"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        rows.close()

    assert count == total
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert source.high_watermark() == ((T0 + timedelta(minutes=total)).isoformat(), str(total))


def _last_statement_of_the_other_session(engine: Engine) -> str:
    with engine.connect() as conn:
        (query,) = conn.scalars(
            text(
                "SELECT query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    return " ".join(query.split()[:3]).upper()
