"""The migrations build exactly the tables the models declare (no drift either way)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exchange.core.db import Base, make_engine, migrate


def test_migrated_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    # Only tables and columns: SQLite reflects indexes and server defaults loosely.
    kinds = ("add_table", "remove_table", "add_column", "remove_column")
    relevant = [d for d in diff if isinstance(d, tuple) and d[0] in kinds]
    assert relevant == []
