"""Reads on the database driver's own cursor, for statements run on every request.

A Core statement executed through a :class:`~sqlalchemy.orm.Session` costs the
gateway about 0.3 ms of CPU before the database does anything: the session's
transaction, the connection checkout, the compiled-cache lookup, the result
object. The same read on the driver's cursor costs about 0.05 ms. A
:class:`DriverSelect` is written as an ordinary Core ``select``, compiled once
for each dialect, and its parameters and values are converted exactly as
SQLAlchemy converts them (each type's own bind and result processors), so its
rows hold what a Core execution's rows would.

A read that runs outside any transaction of the session takes a pooled connection
for that one statement and gives it back at once (nothing is held while another
connection is awaited). A session already in a transaction reads on its own
connection, so it sees its own writes and never waits for a second connection.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, SelectBase
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...] | None  # the order of the parameters, for positional drivers
    defaults: dict[str, Any]  # values bound in the statement itself (e.g. an IN list)
    converters: dict[str, Callable[[Any], Any]]  # the given parameters' bind processors
    processors: tuple[Callable[[Any], Any] | None, ...]  # the columns' result processors


class DriverSelect:
    """A Core ``select`` run on the driver's cursor; its rows have the columns' names.

    Parameters are ``bindparam``s given by name at each call, converted by their
    types' bind processors as in a Core execution; an IN list must be bound in the
    statement itself (it is expanded once, when compiled), not given at the call.
    """

    def __init__(self, statement: SelectBase) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        row_type = namedtuple(  # type: ignore[misc]
            "DriverRow", [str(column.key) for column in statement.selected_columns]
        )
        self._make: Callable[[Iterable[Any]], Any] = row_type._make

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            # An IN of values bound in the statement is expanded here, one parameter a
            # value, so the SQL is fixed (and the driver caches its plan); the parameters
            # given at execution keep their names.
            done = self.statement.compile(dialect=dialect)
            given = {name for name, bind in done.binds.items() if bind.required}
            if any(done.binds[name].expanding for name in given):
                raise ValueError("an expanding parameter must be bound in the statement")
            expanded = done.construct_expanded_state(dict.fromkeys(given))
            # Bind processors: the expanded IN lists' from the expansion, the others' from
            # their types.
            convert: dict[str, Callable[[Any], Any]] = dict(expanded.processors)
            for name, bind in done.binds.items():
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None and not bind.expanding:
                    convert[name] = processor
            processors = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.statement.selected_columns
            )
            names = tuple(expanded.positiontup) if expanded.positiontup is not None else None
            defaults = {
                k: convert[k](v) if k in convert else v
                for k, v in expanded.parameters.items()
                if k not in given
            }
            converters = {k: p for k, p in convert.items() if k in given}
            compiled = _Compiled(expanded.statement, names, defaults, converters, processors)
            self._compiled[dialect.name] = compiled
        return compiled

    def all(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        """Every row, converted as a Core execution would convert it."""
        bind = session.get_bind()
        if session.in_transaction() or isinstance(bind, Connection):
            connection = session.connection()
            return self._run(connection.dialect, connection.connection.dbapi_connection, params)
        assert isinstance(bind, Engine)
        raw = bind.raw_connection()
        try:
            return self._run(bind.dialect, raw.dbapi_connection, params)
        finally:
            raw.close()  # back to the pool, which rolls back whatever the read began

    def _run(self, dialect: Dialect, dbapi_connection: Any, params: Mapping[str, Any]) -> list[Any]:
        compiled = self._for(dialect)
        values = {**compiled.defaults, **params}
        for name, convert in compiled.converters.items():
            values[name] = convert(values[name])
        arguments: Any = (
            tuple(values[name] for name in compiled.names) if compiled.names is not None else values
        )
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        make, processors = self._make, compiled.processors
        if not any(processors):
            return [make(row) for row in rows]
        pairs = [list(zip(processors, row, strict=True)) for row in rows]
        return [make([v if p is None or v is None else p(v) for p, v in pair]) for pair in pairs]
