"""Department sources behind one interface: CSV, JSON Lines and SQL tables or queries.

:func:`open_source` turns a definition's ``[source]`` into a :class:`Source`. Every
source yields :class:`~connectors.csvsource.SourceRow` objects whose values are
strings, so the mapper never sees a source's native types:

- **csv**: :func:`connectors.csvsource.read_csv`; positions are file line numbers.
- **jsonl**: one JSON object per line; positions are file line numbers. A line that
  is not a JSON object is yielded with a ``json.invalid`` problem, never raised.
- **sql**: a table or query through SQLAlchemy, streamed in batches. With a
  ``watermark`` column, rows come in ``(watermark, key)`` order and a run opened with
  ``since=(watermark, key)`` reads only the rows after it, so each added or changed
  row is read once per change. Positions are 1-based row numbers within the run.
- **push**: records arrive over HTTP; there is nothing to open.

Problems that stop a source from being read at all (a missing file, an unknown
encoding, an unset URL variable, an unreachable database, a missing table or
column) raise :class:`~exchange.core.errors.SourceError` when the source is opened;
library errors are translated here and never leak.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Generator, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    DateTime,
    Engine,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    column,
    create_engine,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.types import NullType

from connectors.csvsource import SourceRow, has_undecodable_bytes, printable, read_csv
from connectors.definition import (
    ConnectorDefinition,
    CsvSourceSpec,
    JsonLinesSourceSpec,
    SqlSourceSpec,
)
from exchange.core.errors import SourceError

__all__ = [
    "CsvSource",
    "JsonLinesSource",
    "Source",
    "SourceRow",
    "SqlSource",
    "open_source",
    "stringify",
    "to_text",
]


class Source(Protocol):
    """What a connector reads rows from."""

    def columns(self) -> list[str]:
        """The header or known columns; ``[]`` for an empty source."""
        ...

    def rows(self, skip: int = 0) -> Iterator[SourceRow]:
        """Stream the rows, leaving out the first ``skip`` (they still count in positions)."""
        ...

    def fingerprint(self) -> str:
        """Identifies the source's location and content, so a checkpoint fits only it."""
        ...

    def high_watermark(self) -> tuple[str, str] | None:
        """The ``(watermark, key)`` to pass as ``since`` next time (SQL with a watermark)."""
        ...

    def describe(self) -> str:
        """Where the rows come from, for reports and dead letters (never a password)."""
        ...


def open_source(definition: ConnectorDefinition, *, since: tuple[str, str] | None = None) -> Source:
    """Open a definition's source. Raises SourceError if it cannot be read.

    ``since`` is the :meth:`Source.high_watermark` of the previous run; it applies to
    SQL sources with a ``watermark`` column and is ignored by every other source.
    """
    spec = definition.source
    if isinstance(spec, CsvSourceSpec):
        return CsvSource(definition.source_path, spec)
    if isinstance(spec, JsonLinesSourceSpec):
        return JsonLinesSource(definition.source_path, spec)
    if isinstance(spec, SqlSourceSpec):
        return SqlSource(spec, since=since)
    raise SourceError(
        f"connector {definition.connector.id} has a push source: departments send its "
        "records to the exchange over HTTP, so there is nothing to read locally"
    )


# --- values ---------------------------------------------------------------------------------


def to_text(value: Any) -> str:
    """A source value as the mapper's text: None is empty, dates ISO 8601, nested JSON compact."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=to_text)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def stringify(record: dict[str, Any]) -> dict[str, str]:
    """A JSON object's values as the mapper's text (see :func:`to_text`)."""
    return {name: to_text(value) for name, value in record.items()}


# --- files ----------------------------------------------------------------------------------


def _file_fingerprint(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError as exc:
        raise SourceError(f"cannot open source file {path}: {exc.strerror}") from exc
    identity = f"file\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()


def _skip(rows: Iterator[SourceRow], skip: int) -> Iterator[SourceRow]:
    if skip < 0:
        raise ValueError("skip must be 0 or more")
    try:
        for index, row in enumerate(rows):
            if index >= skip:
                yield row
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


class CsvSource:
    """A CSV file read with :func:`connectors.csvsource.read_csv`."""

    def __init__(self, path: Path, spec: CsvSourceSpec) -> None:
        self.path = path
        self.spec = spec
        self._header = self._read_header()
        self._fingerprint = _file_fingerprint(path)
        if self._header and spec.key not in self._header:
            raise SourceError(f"the key column {spec.key!r} is not in the header of {path}")

    def _open(self) -> tuple[list[str], Iterator[SourceRow]]:
        spec = self.spec
        return read_csv(
            self.path, encoding=spec.encoding, delimiter=spec.delimiter, quotechar=spec.quotechar
        )

    def _read_header(self) -> list[str]:
        header, rows = self._open()
        close = getattr(rows, "close", None)
        if close is not None:
            next(rows, None)  # start the generator, so that closing it closes the file
            close()
        return header

    def columns(self) -> list[str]:
        return list(self._header)

    def rows(self, skip: int = 0) -> Iterator[SourceRow]:
        _, rows = self._open()
        yield from _skip(rows, skip)

    def fingerprint(self) -> str:
        return self._fingerprint

    def high_watermark(self) -> tuple[str, str] | None:
        return None

    def describe(self) -> str:
        return str(self.path)


class JsonLinesSource:
    """JSON Lines: one JSON object per line, blank lines skipped."""

    def __init__(self, path: Path, spec: JsonLinesSourceSpec) -> None:
        self.path = path
        self.spec = spec
        try:
            codecs.lookup(spec.encoding)
        except LookupError as exc:
            raise SourceError(f"unknown encoding {spec.encoding!r} for {path}") from exc
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise SourceError(f"cannot open source file {path}: {exc.strerror}") from exc
        self._fingerprint = _file_fingerprint(path)
        self._columns: list[str] | None = None

    def _parsed(self) -> Generator[tuple[SourceRow, list[str] | None]]:
        """Each non-blank line as a row, with the object's keys if it is a JSON object."""
        encoding = self.spec.encoding
        try:
            handle = self.path.open("r", encoding=encoding, errors="surrogateescape")
        except OSError as exc:
            raise SourceError(f"cannot open source file {self.path}: {exc.strerror}") from exc
        with handle:
            for number, line in enumerate(handle, 1):
                if number == 1:
                    line = line.removeprefix("\ufeff")  # a UTF-8 byte-order mark
                if line.strip():
                    yield _parse_json_line(number, line.rstrip("\r\n"), encoding)

    def columns(self) -> list[str]:
        if self._columns is None:
            self._columns = []
            parsed = self._parsed()
            for _, keys in parsed:
                if keys is not None:
                    self._columns = keys
                    break
            parsed.close()
        return list(self._columns)

    def rows(self, skip: int = 0) -> Iterator[SourceRow]:
        yield from _skip((row for row, _ in self._parsed()), skip)

    def fingerprint(self) -> str:
        return self._fingerprint

    def high_watermark(self) -> tuple[str, str] | None:
        return None

    def describe(self) -> str:
        return str(self.path)


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json_line(number: int, line: str, encoding: str) -> tuple[SourceRow, list[str] | None]:
    row = SourceRow(number, {}, printable(line))
    if has_undecodable_bytes(line):
        row.problems.append(
            (
                "_row",
                "encoding.invalid_bytes",
                f"line holds bytes that are not valid {encoding}; "
                "re-export the file in the declared encoding",
            )
        )
    try:
        parsed = json.loads(line, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        message = f"line is not valid JSON: {exc.msg} (column {exc.colno})"
        row.problems.append(("_row", "json.invalid", message))
        return row, None
    except ValueError as exc:  # NaN, Infinity
        row.problems.append(("_row", "json.invalid", f"line is not valid JSON: {exc}"))
        return row, None
    except RecursionError:
        row.problems.append(("_row", "json.invalid", "line is nested too deeply to read"))
        return row, None
    if not isinstance(parsed, dict):
        kind = _JSON_KINDS.get(type(parsed), "a number")
        message = f"line is {kind}, not a JSON object"
        row.problems.append(("_row", "json.invalid", message))
        return row, None
    row.values = stringify(parsed)
    return row, list(parsed)


# --- SQL ------------------------------------------------------------------------------------


def _cause(exc: BaseException) -> str:
    """The driver's own message, on one line, without SQLAlchemy's SQL and parameters."""
    cause = getattr(exc, "orig", None) or exc
    return " ".join(str(cause).split()) or type(cause).__name__


def _like(value: str, example: Any, what: str) -> Any:
    """Turn a checkpoint's text back into the column's Python type, like ``example``."""
    try:
        if isinstance(example, str):
            return value
        if isinstance(example, bool):
            if value not in ("true", "false"):
                raise ValueError(value)
            return value == "true"
        if isinstance(example, int):
            return int(value)
        if isinstance(example, float):
            return float(value)
        if isinstance(example, Decimal):
            return Decimal(value)
        if isinstance(example, datetime):
            return datetime.fromisoformat(value)
        if isinstance(example, date):
            return date.fromisoformat(value)
        if isinstance(example, time):
            return time.fromisoformat(value)
    except (ValueError, ArithmeticError) as exc:
        raise SourceError(
            f"the last run's {what} {value!r} does not fit the column's "
            f"{type(example).__name__} values; publish the whole source again (--restart)"
        ) from exc
    raise SourceError(
        f"the {what} column holds {type(example).__name__} values, which cannot be "
        "used to resume; use a timestamp, date, number or text column"
    )


class SqlSource:
    """A table or query read through SQLAlchemy, optionally incremental by a watermark."""

    def __init__(self, spec: SqlSourceSpec, *, since: tuple[str, str] | None = None) -> None:
        self.spec = spec
        self._since = since if spec.watermark is not None else None
        self._high = self._since
        url_text = os.environ.get(spec.url_env, "").strip()
        if not url_text:
            raise SourceError(
                f"the environment variable {spec.url_env} is not set; [source].url_env names "
                "it, and it must hold the SQLAlchemy URL of the department's database"
            )
        try:
            url = make_url(url_text)
        except (ArgumentError, ValueError) as exc:
            raise SourceError(
                f"the environment variable {spec.url_env} does not hold a SQLAlchemy URL "
                "(e.g. postgresql+psycopg://user:password@host/db)"
            ) from exc
        self.safe_url = url.render_as_string(hide_password=True)
        target = f"table {spec.table}" if spec.table is not None else "query"
        self._what = f"{target} at {self.safe_url}"
        database = url.database or ""
        if (
            url.get_backend_name() == "sqlite"
            and database not in ("", ":memory:")
            and not database.startswith("file:")
            and not Path(database).is_file()
        ):
            # SQLite would create an empty file, then report a missing table.
            raise SourceError(
                f"the SQLite database file {database} (from {spec.url_env}) does not exist"
            )
        try:
            self._engine: Engine = create_engine(url, poolclass=NullPool)
        except (SQLAlchemyError, ImportError) as exc:
            raise SourceError(
                f"cannot use the database URL in {spec.url_env} ({self.safe_url}): {_cause(exc)}"
            ) from exc
        identity = "\0".join(
            [
                "sql",
                self.safe_url,  # the password shows as ***, so rotating it keeps the fingerprint
                f"table:{spec.table}" if spec.table is not None else f"query:{spec.query}",
                spec.watermark or "",
                spec.key,
            ]
        )
        self._fingerprint = hashlib.sha256(identity.encode()).hexdigest()
        self._from, self._columns = self._inspect()

    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot connect to the database {self.safe_url} (from {self.spec.url_env}): "
                f"{_cause(exc)}"
            ) from exc

    def _inspect(self) -> tuple[FromClause, list[str]]:
        """Check the table or query and its key and watermark columns; return (from, columns)."""
        spec = self.spec
        with self._connect() as conn:
            if spec.table is not None:
                schema, _, name = spec.table.rpartition(".")
                try:
                    table = Table(name, MetaData(), schema=schema or None, autoload_with=conn)
                except NoSuchTableError as exc:
                    raise SourceError(
                        f"the table {spec.table!r} does not exist in the database {self.safe_url}"
                    ) from exc
                except SQLAlchemyError as exc:
                    raise SourceError(
                        f"cannot read the table {spec.table!r} at {self.safe_url}: {_cause(exc)}"
                    ) from exc
                source: FromClause = table
                columns = [c.name for c in table.columns]
                where = f"table {spec.table!r}"
            else:
                query = _query_text(spec.query or "")
                probe: Select[Any] = select(literal_column("*")).select_from(
                    text(query).columns().subquery("src")
                )
                try:
                    columns = list(conn.execute(probe.limit(0)).keys())
                except SQLAlchemyError as exc:
                    raise SourceError(
                        f"the [source].query cannot be run at {self.safe_url}: {_cause(exc)}"
                    ) from exc
                repeated = sorted({c for c in columns if columns.count(c) > 1})
                if repeated:
                    raise SourceError(
                        f"the [source].query returns the column(s) {', '.join(repeated)} more "
                        "than once; give every column a distinct name (... AS name)"
                    )
                source = text(query).columns(*(column(c) for c in columns)).subquery("src")
                where = "the [source].query's result"
        for role, wanted in (("key", spec.key), ("watermark", spec.watermark)):
            if wanted is not None and wanted not in columns:
                raise SourceError(
                    f"the {role} column {wanted!r} is not in {where} "
                    f"(its columns: {', '.join(columns)})"
                )
        return source, columns

    def columns(self) -> list[str]:
        return list(self._columns)

    def fingerprint(self) -> str:
        return self._fingerprint

    def high_watermark(self) -> tuple[str, str] | None:
        """The greatest ``(watermark, key)`` read so far, else ``since``; None without one."""
        return self._high

    def describe(self) -> str:
        return self._what

    def _statement(self, conn: Connection) -> Select[Any] | None:
        """The ordered SELECT for this run; None if no row can be newer than ``since``."""
        spec = self.spec
        key = self._from.c[spec.key]
        statement = select(self._from)
        if spec.watermark is None:
            return statement.order_by(key)
        mark = self._from.c[spec.watermark]
        statement = statement.order_by(mark, key)
        if self._since is None:
            return statement
        # Read one row to learn the columns' Python types, so that the checkpoint's
        # text compares as the database's own values do.
        example = conn.execute(
            select(mark, key).where(mark.is_not(None), key.is_not(None)).limit(1)
        ).first()
        if example is None:
            return None
        last_mark = _bind(mark, "since_mark", _like(self._since[0], example[0], "watermark"))
        last_key = _bind(key, "since_key", _like(self._since[1], example[1], "key"))
        return statement.where(or_(mark > last_mark, and_(mark == last_mark, key > last_key)))

    def rows(self, skip: int = 0) -> Iterator[SourceRow]:
        if skip < 0:
            raise ValueError("skip must be 0 or more")
        spec = self.spec
        try:
            with self._connect() as conn:
                statement = self._statement(conn)
                if statement is None:
                    return
                result = conn.execution_options(
                    stream_results=True, yield_per=spec.batch_size
                ).execute(statement)
                try:
                    names = list(result.keys())
                    key_at = names.index(spec.key)
                    mark_at = names.index(spec.watermark) if spec.watermark else None
                    for position, record in enumerate(result, 1):
                        mark = None
                        if mark_at is not None and record[mark_at] is not None:
                            mark = to_text(record[mark_at])
                            self._high = (mark, to_text(record[key_at]))
                        if position <= skip:
                            continue
                        values = {n: to_text(v) for n, v in zip(names, record, strict=True)}
                        raw = json.dumps(values, ensure_ascii=False)
                        yield SourceRow(position, values, raw, watermark=mark)
                finally:
                    result.close()
        except SQLAlchemyError as exc:
            raise SourceError(f"reading the {self._what} failed: {_cause(exc)}") from exc


def _query_text(query: str) -> str:
    """The definition's query, ready to be a subquery.

    A trailing ``;`` is dropped, a newline ends it (so a trailing ``--`` comment cannot
    swallow the closing parenthesis), and colons are escaped: a definition's query has
    no bind parameters, so ``':x'`` and PostgreSQL's ``::date`` stay as written.
    """
    body = query.strip().rstrip(";").rstrip()
    return body.replace(":", "\\:") + "\n"


def _bind(col: ColumnElement[Any], name: str, value: Any) -> ColumnElement[Any]:
    """A parameter compared with ``col``: typed by the column, else by the value."""
    if isinstance(col.type, NullType) and isinstance(value, datetime):
        return bindparam(name, value, type_=DateTime(timezone=value.tzinfo is not None))
    return bindparam(name, value, type_=None if isinstance(col.type, NullType) else col.type)
