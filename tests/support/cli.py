"""Running the command line in a test: as from a fresh shell in the test's own directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings, load_settings
from tests.support.database import migrated

WIDE = {"COLUMNS": "250"}  # rich fits tables to the terminal: wide enough for every row


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the caller's EXCHANGE_ variables and work in ``tmp_path``, with the data
    directory under it (``var``): the command line's settings are the defaults there."""
    for name in list(os.environ):
        if name.startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "var"))


@contextmanager
def cli_database() -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    """The settings the command line loads here and sessions on its database, migrated."""
    settings = load_settings()
    with migrated(settings.db_url) as sessions:
        yield settings, sessions
