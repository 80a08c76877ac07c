"""A failed database statement is logged without the values it carried.

A department may key its records by the resident identity number (many do) and a row
carries names and birth dates: SQLAlchemy's error text holds the statement's parameters,
and PostgreSQL's a unique key's values (``DETAIL: Key (...)=(...)``). The log line of
:func:`exchange.core.db.transaction` and the error raised keep the error's kind and the
constraint, never a value. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.errors import DatabaseError
from exchange.core.models import SourceRecord
from schemas.validators import resident_id_check_character

pytestmark = pytest.mark.integration

NUMBER = "11010519491231002" + resident_id_check_character("11010519491231002")
NAME = "王秀英"
AT = datetime(2026, 12, 1, tzinfo=UTC)


def _record() -> SourceRecord:
    return SourceRecord(
        dataset="person", department="household_registry", source_id=NUMBER,
        lookup_key=None, version=1, content_hash="0" * 64, schema_id=1,
        payload={"full_name": NAME, "birth_date": "1949-12-31"}, topic="std.person.v1",
        partition=0, offset=1, ingested_at=AT,
    )  # fmt: skip


def test_a_refused_statement_is_logged_without_its_values(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    try:
        with transaction(sessions) as session:
            session.add(_record())
        caplog.set_level(logging.DEBUG)
        with pytest.raises(DatabaseError) as raised, transaction(sessions) as session:
            session.add(_record())  # the same key again
    finally:
        engine.dispose()

    [line] = [r for r in caplog.records if r.getMessage().startswith("database operation")]
    logged = line.getMessage()
    assert "IntegrityError" in logged or "UniqueViolation" in logged
    assert "source_records" in logged or "source_id" in logged  # what was refused
    for value in (NUMBER, NAME, "1949-12-31"):
        assert value not in caplog.text
        assert value not in str(raised.value)
