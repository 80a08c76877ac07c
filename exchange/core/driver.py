"""Reads on the database driver's own cursor, for statements run on every request.

A Core statement executed through a :class:`~sqlalchemy.orm.Session` costs the
gateway about 0.3 ms of CPU before the database does anything: the session's
transaction, the connection checkout, the compiled-cache lookup, the result
object. The same read on the driver's cursor costs about 0.05 ms. A
:class:`DriverSelect` is written as an ordinary Core ``select``, compiled once
for each dialect, and its parameters and values are converted exactly as
SQLAlchemy converts them (each type's own bind and result processors), so its
rows hold what a Core execution's rows would.

A read that runs outside any transaction of the session takes a connection for
that one statement and gives it back at once (nothing is held while another
connection is awaited). On SQLite it is taken from a stack of idle connections of
the engine's own (:class:`_IdleReads`), not from the engine's pool: a checkout and
return through SQLAlchemy's pool cost the gateway about 0.1 ms of CPU a read under
load (its queue's condition variable, the reset on return, the events), about 6%
of a lookup. On other databases it is a pooled connection, which the pool checks
and resets. A session already in a transaction reads on its own connection, so
it sees its own writes and never waits for a second connection.
"""

from __future__ import annotations

import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, SelectBase, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

IDLE_READS_KEPT = 8  # idle SQLite connections kept for reads outside a transaction


class _IdleReads:
    """An engine's idle SQLite connections for reads outside a transaction, last in,
    first out.

    A connection is opened by the engine (so its ``connect`` set-up, the pragmas, has
    run) and detached from the engine's pool: it is only ever here or in the hands of
    one read. A read gives it back with no transaction open; one that failed closes it
    instead. At most :data:`IDLE_READS_KEPT` are kept; ``Engine.dispose()`` closes them.
    """

    def __init__(self, engine: Engine) -> None:
        # No reference to the engine (it is the key of _IDLE_READS, held weakly).
        self._idle: list[PoolProxiedConnection] = []
        self._lock = threading.Lock()
        event.listen(engine, "engine_disposed", self._on_dispose)

    @classmethod
    def of(cls, engine: Engine) -> _IdleReads:
        reads = _IDLE_READS.get(engine)
        if reads is None:
            with _IDLE_READS_LOCK:
                reads = _IDLE_READS.get(engine)
                if reads is None:
                    reads = _IDLE_READS[engine] = cls(engine)
        return reads

    def take(self, engine: Engine) -> PoolProxiedConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        raw = engine.raw_connection()
        raw.detach()  # closing it now closes the DBAPI connection
        return raw

    def give_back(self, raw: PoolProxiedConnection) -> None:
        if raw.dbapi_connection is not None and raw.dbapi_connection.in_transaction:
            raw.dbapi_connection.rollback()  # a read must not keep a snapshot open
        with self._lock:
            if len(self._idle) < IDLE_READS_KEPT:
                self._idle.append(raw)
                return
        raw.close()

    def close(self) -> None:
        """Close every idle connection (reads may go on: they open new ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for raw in idle:
            raw.close()

    def _on_dispose(self, engine: Engine) -> None:
        del engine
        self.close()


_IDLE_READS: weakref.WeakKeyDictionary[Engine, _IdleReads] = weakref.WeakKeyDictionary()
_IDLE_READS_LOCK = threading.Lock()


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
        if bind.dialect.name == "sqlite":
            reads = _IdleReads.of(bind)
            raw = reads.take(bind)
            try:
                rows = self._run(bind.dialect, raw.dbapi_connection, params)
            except BaseException:
                raw.close()  # in whatever state the failure left it: not reused
                raise
            reads.give_back(raw)
            return rows
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
