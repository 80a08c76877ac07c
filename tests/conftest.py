"""Fixtures shared by every tier: real services, started on free ports for the session.

An integration test never skips because a service is missing: if the broker or
PostgreSQL cannot start, the fixture raises and the run fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from exchange.local.broker import LocalKafka
from tests.support.postgres import PostgresServer

pytest_plugins = [
    "tests.support.markers",  # every integration / e2e test carries its marker
    "tests.support.nodeids",  # every test has a node id of its own (xdist runs them all)
    "tests.support.workers",  # several pytest-xdist workers share the machine safely
]

# Property tests are not timed: on a busy machine (two workers, a neighbour using a core) an
# example may take longer than Hypothesis' default 200 ms deadline, or its data longer to
# draw than the too_slow health check allows, and neither says anything about the code.
# The number of examples stays what each test asks for.
settings.register_profile("exchange", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("exchange")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One real Kafka broker (KRaft, combined mode) for the whole session."""
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), size=1)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend: SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
