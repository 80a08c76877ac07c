"""The record store's bulk statements, at the driver's level.

:func:`exchange.registry.records.apply` writes a whole poll in a few statements.
Through SQLAlchemy's Core, each row's parameters pass through the statement's
bind processors and the result rows through its result processors, which cost
more than the database's own work (issue 19's profile: statement execution was
half of the builder's time). Here the SQL is written once per dialect, the
values are given in the form the driver stores (timestamps through the column
type's own bind processor, so SQLite holds the text SQLAlchemy would write;
JSON already encoded) and the statements run through
``Connection.exec_driver_sql`` (so errors are SQLAlchemy's, as before):

* on SQLite (3.35 or later, for ``RETURNING``), multi-row ``VALUES`` lists (one
  statement per thousand rows) and ``IN`` lists, ``executemany`` for updates;
* on PostgreSQL, one array a column (``INSERT ... SELECT * FROM unnest(...)``,
  ``UPDATE ... FROM unnest(...)``, ``= ANY(...)``), sent in the binary format
  (psycopg's ``%b``): a short statement that psycopg parses once and the
  server prepares, where a long ``VALUES`` list is parsed by psycopg on every
  call (its query cache keeps short statements only; that parse was nine
  tenths of the insert's CPU here), and arrays in the text format are escaped
  element by element in Python. Measured on the versions' insert, 10,000
  rows: 3 µs of the builder's CPU a row, against 10 for ``executemany`` and 36
  for multi-row ``VALUES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Dialect, Table

from exchange.core.db import UTCDateTime
from exchange.core.models import RecordVersion, SourceRecord

ROWS_PER_STATEMENT = 1000  # 16 parameters a row: well inside SQLite's 32,766 and PG's 65,535
KEYS_PER_READ = 900  # source ids per IN (...) list

RECORD_COLUMNS = (
    "dataset", "department", "source_id", "version", "content_hash", "deleted", "topic",
    "partition", "offset", "ingested_at", "valid_from", "updated_at", "schema_id", "payload",
    "lookup_key", "source_changed_at",
)  # fmt: skip
# Set by every update; with a payload, also schema_id, payload, lookup_key and
# source_changed_at (in that order: what describes the payload).
UPDATED_COLUMNS = RECORD_COLUMNS[3:12]
PAYLOAD_COLUMNS = RECORD_COLUMNS[12:]
VERSION_COLUMNS = (
    "record_id", "version", "deleted", "content_hash", "schema_id", "payload", "valid_from",
    "topic", "partition", "offset", "ingested_at", "source_changed_at", "applied_at",
)  # fmt: skip
CURRENT_COLUMNS = (
    "id", "version", "content_hash", "deleted", "topic", "partition", "offset", "entity_id",
    "dataset", "department", "source_id",
)  # fmt: skip

Key = tuple[str, str, str]  # (dataset, department, source_id)


class Statements:
    """The statements of one SQL dialect; see :func:`statements`."""

    def __init__(self, dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._to_driver = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        self.arrays = dialect.name == "postgresql"

        def names(columns: Iterable[str]) -> str:
            return ", ".join(quote(c) for c in columns)

        def unnest(table: Table, columns: Sequence[str]) -> str:
            """SELECT from one array parameter a column, typed as the column."""
            typed = (f"%b::{table.c[c].type.compile(dialect)}[]" for c in columns)
            return f"SELECT * FROM unnest({', '.join(typed)})"

        self._select = (
            f"SELECT {names(CURRENT_COLUMNS)} FROM source_records "
            "WHERE dataset IN ({}) AND department IN ({}) AND source_id IN ({})"
        )
        self._insert_records = f"INSERT INTO source_records ({names(RECORD_COLUMNS)}) VALUES "
        self._returning = " RETURNING id, dataset, department, source_id"
        self._insert_versions = f"INSERT INTO record_versions ({names(VERSION_COLUMNS)}) VALUES "
        updated = {True: UPDATED_COLUMNS + PAYLOAD_COLUMNS, False: UPDATED_COLUMNS}
        if self.arrays:
            records = _table(SourceRecord)
            self._updates = {
                with_payload: "UPDATE source_records AS r SET "
                + ", ".join(f"{quote(c)} = u.{quote(c)}" for c in columns)
                + f" FROM ({unnest(records, (*columns, 'id'))}) AS u({names((*columns, 'id'))})"
                " WHERE r.id = u.id"
                for with_payload, columns in updated.items()
            }
        else:
            self._updates = {
                with_payload: "UPDATE source_records SET "
                + ", ".join(f"{quote(c)} = {self._mark}" for c in columns)
                + f" WHERE id = {self._mark}"
                for with_payload, columns in updated.items()
            }
        self._values: dict[tuple[int, int], str] = {}
        if self.arrays:
            self._select_any = (
                f"SELECT {names(CURRENT_COLUMNS)} FROM source_records WHERE dataset = ANY(%b) "
                "AND department = ANY(%b) AND source_id = ANY(%b)"
            )
            records, versions = _table(SourceRecord), _table(RecordVersion)
            self._insert_records_unnest = (
                f"INSERT INTO source_records ({names(RECORD_COLUMNS)}) "
                f"{unnest(records, RECORD_COLUMNS)}{self._returning}"
            )
            self._insert_versions_unnest = (
                f"INSERT INTO record_versions ({names(VERSION_COLUMNS)}) "
                f"{unnest(versions, VERSION_COLUMNS)}"
            )

    def datetimes(self) -> Callable[[datetime], Any]:
        """A function giving a timestamp as the driver stores it (memoised: a batch's
        records share few ingest times)."""
        process = self._to_driver
        if process is None:
            return _aware
        seen: dict[datetime, Any] = {}

        def to_driver(value: datetime) -> Any:
            stored = seen.get(value)
            if stored is None:
                stored = seen[value] = process(value)
            return stored

        return to_driver

    def current(self, connection: Connection, keys: set[Key]) -> list[tuple[Any, ...]]:
        """The stored rows among ``keys``, as ``CURRENT_COLUMNS``."""
        datasets = sorted({k[0] for k in keys})
        departments = sorted({k[1] for k in keys})
        source_ids = sorted({k[2] for k in keys})
        found: list[tuple[Any, ...]] = []
        if self.arrays:
            rows = connection.exec_driver_sql(self._select_any, (datasets, departments, source_ids))
            return [r for r in rows.fetchall() if (r[8], r[9], r[10]) in keys]
        for start in range(0, len(source_ids), KEYS_PER_READ):
            chunk = source_ids[start : start + KEYS_PER_READ]
            # served by the unique (dataset, department, source_id) index
            sql = self._select.format(
                self._marks(len(datasets)), self._marks(len(departments)), self._marks(len(chunk))
            )
            rows = connection.exec_driver_sql(sql, (*datasets, *departments, *chunk))
            found.extend(r for r in rows.fetchall() if (r[8], r[9], r[10]) in keys)
        return found

    def insert_records(
        self, connection: Connection, rows: Sequence[tuple[Any, ...]]
    ) -> dict[Key, int]:
        """Insert ``rows`` (as ``RECORD_COLUMNS``); returns the new ids by key."""
        ids: dict[Key, int] = {}
        if not rows:
            return ids
        if self.arrays:
            result = connection.exec_driver_sql(self._insert_records_unnest, _columns(rows))
            return {(d, p, s): i for i, d, p, s in result.fetchall()}
        for chunk in _chunks(rows):
            sql = self._insert_records + self._rows(len(chunk), len(RECORD_COLUMNS))
            result = connection.exec_driver_sql(
                sql + self._returning, tuple(chain.from_iterable(chunk))
            )
            for new_id, dataset, department, source_id in result.fetchall():
                ids[(dataset, department, source_id)] = new_id
        return ids

    def update_records(
        self, connection: Connection, rows: Sequence[tuple[Any, ...]], *, payload: bool
    ) -> None:
        """Update stored records: ``rows`` as ``UPDATED_COLUMNS`` (then ``PAYLOAD_COLUMNS``
        if ``payload``), then the id."""
        if self.arrays:
            connection.exec_driver_sql(self._updates[payload], _columns(rows))
        else:
            connection.exec_driver_sql(self._updates[payload], list(rows))

    def insert_versions(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (as ``VERSION_COLUMNS``) into the version history."""
        if not rows:
            return
        if self.arrays:
            connection.exec_driver_sql(self._insert_versions_unnest, _columns(rows))
            return
        for chunk in _chunks(rows):
            sql = self._insert_versions + self._rows(len(chunk), len(VERSION_COLUMNS))
            connection.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))

    def _marks(self, count: int) -> str:
        return ", ".join([self._mark] * count)

    def _rows(self, rows: int, columns: int) -> str:
        text = self._values.get((rows, columns))
        if text is None:
            row = f"({self._marks(columns)})"
            text = self._values[(rows, columns)] = ", ".join([row] * rows)
        return text


_BY_DIALECT: dict[tuple[str, str, str], Statements] = {}


def statements(connection: Connection) -> Statements:
    """The statements for ``connection``'s dialect (built once per dialect and driver)."""
    dialect = connection.dialect
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    found = _BY_DIALECT.get(key)
    if found is None:
        found = _BY_DIALECT[key] = Statements(dialect)
    return found


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:  # what UTCDateTime refuses, refused here too
        raise ValueError("naive datetime given; use datetime.now(UTC)")
    return value


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _columns(rows: Sequence[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    """``rows`` as one list a column (psycopg sends a list as an array)."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def _chunks(rows: Sequence[tuple[Any, ...]]) -> Iterable[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start : start + ROWS_PER_STATEMENT]
