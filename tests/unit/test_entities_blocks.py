"""A blocking key shared by too many records finds no candidates (a placeholder value)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert

from exchange.core.db import migrate
from exchange.core.models import LinkKey
from exchange.registry.entities import MAX_BLOCK, EntityResolver


def test_a_crowded_key_is_skipped_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A plain engine (foreign keys not enforced): the keys' records need not exist here.
    engine = create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    with engine.begin() as db:
        crowded = [{"key": "d:19000101", "record_id": i} for i in range(1, MAX_BLOCK + 2)]
        db.execute(insert(LinkKey), crowded)
        db.execute(insert(LinkKey), [{"key": "p:13800000001", "record_id": i} for i in (7, 8)])
        found = EntityResolver()._candidates(db, {8: {"d:19000101", "p:13800000001"}})
    assert found == {8: {7}}
    assert "blocking key d:... is shared by 1001 records" in caplog.text
    assert "19000101" not in caplog.text
