"""A fresh, migrated registry database for a test, its engine disposed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import make_engine, migrate, session_factory


@contextmanager
def migrated(url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the database at ``url``, migrated to the latest schema; the engine is
    disposed when the block ends, so no connection is left for the collector to find."""
    engine = make_engine(url)
    try:
        migrate(engine)
        yield session_factory(engine)
    finally:
        engine.dispose()
