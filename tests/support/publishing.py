"""Running a department's connector as the integration tests do: one call, the tests' keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from connectors import load_definition, run_connector
from connectors.publisher import RunReport
from schemas import SchemaStore
from tests.support.keys import keys_for


def publish(
    bootstrap: str,
    sessions: sessionmaker[Session],
    definition: Path,
    *,
    store: SchemaStore | None = None,
    **options: Any,
) -> RunReport:
    """Run the connector ``definition`` (a TOML file) against the broker at ``bootstrap``,
    with the schema store (``store``, or a new one) and the tests' keys over ``sessions``;
    ``options`` are run_connector's (restart, workers, ...). Returns the run's report."""
    return run_connector(
        load_definition(definition),
        bootstrap=bootstrap,
        store=store if store is not None else SchemaStore(sessions),
        keys=keys_for(sessions),
        **options,
    )
