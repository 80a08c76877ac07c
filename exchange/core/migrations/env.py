"""Alembic environment: migrates the connection handed in by exchange.core.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from exchange.core import models  # noqa: F401  (registers the tables)
from exchange.core.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` run by hand: sqlalchemy.url from the ini
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata)
            context.run_migrations()
        return
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


run()
