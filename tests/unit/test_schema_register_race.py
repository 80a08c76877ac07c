"""Processes that register the same schema under one subject at once (the demo's connectors
start together) all get its id, and the subject gets one version: the loser of the race for
a version number registers again and finds the winner's registration."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from exchange.core.models import SubjectVersion
from schemas.store import SchemaStore
from tests.support.database import migrated

SCHEMA = {
    "type": "record",
    "name": "Raced",
    "namespace": "test",
    "fields": [{"name": "id", "type": "string"}],
}


def test_concurrent_registrations_of_one_schema_agree(tmp_path: Path) -> None:
    with migrated(f"sqlite:///{tmp_path}/r.db") as sessions:
        workers = 12
        start = threading.Barrier(workers)
        ids: list[int] = []
        errors: list[BaseException] = []

        def register() -> None:
            store = SchemaStore(sessions)
            start.wait()
            try:
                ids.append(store.register("raced-value", SCHEMA))
            except BaseException as exc:  # the assertion below names it
                errors.append(exc)

        threads = [threading.Thread(target=register) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(ids)) == 1
        assert len(ids) == workers
        with sessions() as session:
            versions = session.scalar(
                select(func.count()).where(SubjectVersion.subject == "raced-value")
            )
        assert versions == 1
