"""The SQL database: engine creation, sessions, and migrations.

SQLite (a file under the data directory) is the embedded default; PostgreSQL is
the production database. Both are reached through SQLAlchemy 2 and migrated with
Alembic (``exchange/core/migrations``); :func:`migrate` brings any database to head.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from exchange.core.errors import ConfigError, DatabaseError

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every table the exchange stores."""


def utcnow() -> datetime:
    return datetime.now(UTC)


SQLITE_POOL_SIZE = 40  # connections a SQLite engine keeps open (plus 10 more at peaks)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        if url.startswith("sqlite:///") and ":memory:" not in url:
            # A local file: no connection to go stale, so no ping before each checkout; and
            # enough kept open for the gateway's threadpool (AnyIO's 40 threads), so that
            # requests reuse connections instead of opening (and setting up) new ones.
            engine = create_engine(
                url, pool_size=SQLITE_POOL_SIZE, max_overflow=10, hide_parameters=True
            )
        else:
            engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise ConfigError(f"cannot use database URL: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first, so the pragmas below wait too
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def described(exc: SQLAlchemyError) -> str:
    """A database error for the log, without the values it carried: the driver's first
    line (the kind of error, the constraint or column) and the statement, never its
    parameters (engines hide them, :func:`make_engine`) nor PostgreSQL's ``DETAIL``
    (a unique key's values: a department may key its records by identity number)."""
    cause = getattr(exc, "orig", None)
    first = (str(cause) if cause is not None else str(exc)).strip().splitlines()
    kind = type(cause).__name__ if cause is not None else type(exc).__name__
    text = f"{kind}: {first[0] if first else ''}"
    statement = getattr(exc, "statement", None)
    return f"{text} [SQL: {statement}]" if statement else text


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            log.error("database operation failed: %s", described(exc))
            raise DatabaseError(
                f"database operation failed ({exc.__class__.__name__}); see the server log"
            ) from exc
        except BaseException:
            session.rollback()
            raise


def concurrent_conflict(exc: DatabaseError) -> bool:
    """Whether a failed transaction lost to a concurrent one (PostgreSQL's deadlock or
    serialization failure): the same work, run again, may well succeed."""
    cause = exc.__cause__
    return isinstance(cause, OperationalError) and getattr(cause.orig, "sqlstate", None) in {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            enforced = sqlite and bool(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
            if sqlite:
                # A migration that rebuilds a table (Alembic's batch mode) drops the old
                # one, which SQLite refuses while other tables' foreign keys point at it.
                # The pragma is a no-op inside a transaction, so it is set before one.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                        raise DatabaseError(
                            f"cannot migrate the database at {engine.url}: a foreign key "
                            "no longer holds after the upgrade (PRAGMA foreign_key_check)"
                        )
            finally:
                if enforced:  # as the connection had it (make_engine's engines do)
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=True)
        cause = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"cannot migrate the database at {url}: {cause}") from exc


def schema_heads() -> frozenset[str]:
    """The revisions a migrated database is at (Alembic's heads of the migrations shipped)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def schema_revisions(session: Session) -> frozenset[str]:
    """The revisions the database of ``session`` is at (empty if never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return frozenset(MigrationContext.configure(session.connection()).get_current_heads())
