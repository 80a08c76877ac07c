"""A real throwaway PostgreSQL server: start, use through SQLAlchemy, stop."""

import socket
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_postgres_server_round_trip(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path)
    started = time.monotonic()
    server.start()
    print(f"postgres started in {time.monotonic() - started:.2f}s on port {server.port}")
    try:
        url = server.create_database("registry_test")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/registry_test"
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE datasets (id int PRIMARY KEY, name text)"))
                conn.execute(
                    sa.text("INSERT INTO datasets VALUES (:id, :name)"),
                    {"id": 7, "name": "tax-records-ü"},
                )
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, name FROM datasets")).all()
                db = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        finally:
            engine.dispose()
        assert [tuple(r) for r in rows] == [(7, "tax-records-ü")]
        assert db == "registry_test"
    finally:
        server.stop()
    server.stop()  # idempotent

    with pytest.raises(OSError):  # noqa: PT011 - refused, whatever the exact subclass
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
