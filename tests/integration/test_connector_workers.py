"""A connector run with a worker process publishes what a run in one process publishes.

The same export (valid rows and every kind of bad row) is published twice to the
session's Kafka broker, by ``run_connector`` with ``workers=1`` (every record
prepared in the run's process) and with ``workers=2`` (a worker process too), each
under its own department so each run's records can be told apart. Read back from
Kafka, the two runs hold the same records under the same source ids: the same
content (sensitive fields decrypted), content hashes and provenance, each covered by
its batch's manifest signed by its department (read ``read_committed``); the same
dead letters with the same reasons; and each partition in source order.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connectors import load_definition, run_connector
from connectors import workers as workers_module
from exchange.core.db import make_engine, migrate, session_factory
from exchange.kafka.wire import AvroSerde
from exchange.local.broker import LocalKafka
from exchange.security import manifest, provenance
from exchange.security.keystore import FieldCipher
from schemas import SchemaStore, load_standard
from schemas.standards import Sensitivity
from tests.support.deadletters import dead_letters
from tests.support.exports import write_definition, write_export
from tests.support.keys import keys_for
from tests.support.manifests import covered_batches, end_offsets, read

pytestmark = pytest.mark.integration

ROWS = 20_000
VARYING = (manifest.BATCH, provenance.INGEST_TIME, provenance.CONNECTOR_ID)
# Headers that name the department (each run has its own), compared separately.
OWN = (provenance.DEPARTMENT,)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    return session_factory(engine)


def _number(source_id: str) -> int:
    return int(source_id.rsplit("-", 1)[1])


def _records(
    bootstrap: str, department: str, sessions: sessionmaker[Session], start: dict[int, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The department's records by source id and its dead letters by line, checked."""
    keys = keys_for(sessions)
    serde = AvroSerde(SchemaStore(sessions).schema_text)
    cipher = FieldCipher(keys.keystore)
    public = keys.keystore.public_keys(department)
    standard = load_standard("person")
    records: dict[str, Any] = {}
    last: dict[int, int] = {}
    batches = covered_batches(read(bootstrap, "std.person.v1", start), department, public, serde)
    for message in (record for batch in batches for record in batch.records):
        headers = provenance.headers_dict([(k, bytes(v)) for k, v in message.headers])
        source_id = headers[provenance.SOURCE_ID].decode()
        assert message.key == f"{department}:{source_id}".encode()
        # Each partition holds its records in source order (no row was sent twice here).
        assert _number(source_id) > last.get(message.partition, -1)
        last[message.partition] = _number(source_id)
        schema_id, record = serde.decode(message.value)
        for spec in standard.fields:
            token = record.get(spec.name)
            if spec.sensitivity is Sensitivity.SENSITIVE and token is not None:
                plain = cipher.decrypt(standard.dataset, spec.name, message.key.decode(), token)
                record[spec.name] = json.loads(plain)
        kept = {k: v for k, v in headers.items() if k not in VARYING + OWN}
        assert source_id not in records
        records[source_id] = (schema_id, record, kept)
    dead: dict[str, Any] = {}
    for entry in dead_letters(bootstrap, sessions, department):
        assert entry["department"] == department
        # Sealed values differ run to run (fresh nonces); their opened values do not.
        for varying in ("at", "connector", "department", "raw_sealed"):
            entry.pop(varying)
        entry["reasons"] = [
            {k: v for k, v in r.items() if k != "message_sealed"} for r in entry["reasons"]
        ]
        dead[entry["line"]] = entry
    return records, dead


@pytest.mark.timeout(600)
def test_one_worker_process_and_none_publish_the_same_records(
    kafka: LocalKafka,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "export"
    export = write_export(folder, ROWS)
    bootstrap = kafka.bootstrap_servers
    chunks: list[int] = []
    real_send = workers_module._Worker.send

    def send(self: workers_module._Worker, message: object) -> None:
        if isinstance(message, tuple):
            chunks.append(self.number)
        real_send(self, message)

    monkeypatch.setattr(workers_module._Worker, "send", send)
    runs = {}
    for workers in (1, 2):
        department = f"wk{workers}_{uuid.uuid4().hex[:8]}"
        path = write_definition(folder, connector_id=department, department=department)
        start = end_offsets(bootstrap, "std.person.v1")
        report = run_connector(
            load_definition(path),
            bootstrap=bootstrap,
            store=SchemaStore(sessions),
            keys=keys_for(sessions),
            sessions=sessions,
            workers=workers,
        )
        assert report.reconciled
        assert (report.read, report.published, report.rejected) == (
            ROWS,
            len(export.valid),
            export.invalid,
        )
        runs[workers] = (report, _records(bootstrap, department, sessions, start))
    assert chunks, "no chunk went to the worker process"
    assert set(chunks) == {1}

    (one, (records_one, dead_one)), (two, (records_two, dead_two)) = runs[1], runs[2]
    assert two.reasons == one.reasons
    assert set(records_one) == set(records_two) == export.valid
    assert records_two == records_one
    assert len(dead_one) == export.invalid
    assert dead_two == dead_one
