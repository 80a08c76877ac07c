"""The benchmark's signed-batch publisher and manifest-verifying consumer on a real broker.

``bench.signed_batches`` publishes a department's export in transactions, a manifest a
partition after each batch; ``bench.batch_check`` (fed by a confluent-kafka consumer,
``read_committed``) accepts every record a manifest covers and refuses the one whose
value changed after its digest was listed. Signed one by one, every record verifies.
"""

from __future__ import annotations

import csv
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from bench.batch_check import BatchCheck
from bench.registry_throughput import COLUMNS, definition
from bench.signed_batches import publish_batches
from exchange.core.db import make_engine, migrate, session_factory
from exchange.local.broker import LocalKafka
from exchange.security import provenance
from schemas import SchemaStore
from tests.support.keys import keys_for

pytestmark = pytest.mark.integration

ROWS = 23
TOPIC = "std.person.v1"


def _export(folder: Path, department: str) -> tuple[Path, Path]:
    """A department's CSV export of ROWS people (valid resident ids) and its definition."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(ROWS):
        birth = f"1980{(i % 12) + 1:02d}{(i % 28) + 1:02d}"
        body = f"110101{birth}{i:03d}"
        weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
        rows.append(
            [f"L{i}", body + check, "王", f"小{i}", f"王小{i}", f"1980-{birth[4:6]}-{birth[6:]}",
             "MALE" if i % 2 else "FEMALE", "110101", ""]
        )  # fmt: skip
    csv_path = folder / f"{department}.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    toml = folder / f"{department}.toml"
    toml.write_text(definition(department), encoding="utf-8")
    return toml, csv_path


def _read(bootstrap: str, check: BatchCheck, department: str, timeout_s: float = 90.0) -> None:
    """Feed ``check`` the department's messages of the person topic until all are resolved."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([TOPIC])
    mine = department.encode()
    deadline = time.monotonic() + timeout_s
    try:
        while check.resolved < ROWS and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=500, timeout=0.5)
            check.messages(
                m
                for m in batch
                if m.error() is None and dict(m.headers() or ()).get(provenance.DEPARTMENT) == mine
            )
    finally:
        consumer.close()


@pytest.mark.parametrize("one_by_one", [False, True], ids=["batches", "one-by-one"])
def test_the_benchmarks_publisher_and_manifest_check_agree(
    kafka: LocalKafka, tmp_path: Path, one_by_one: bool
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalogue.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    keys = keys_for(sessions)
    store = SchemaStore(sessions)
    department = f"bench_{uuid.uuid4().hex[:8]}"
    tampered = "L7"
    published = publish_batches(
        kafka.bootstrap_servers,
        store,
        keys,
        [_export(tmp_path / "exports", department)],
        batch=10,
        tamper=(lambda source_id: source_id == tampered) if not one_by_one else None,
        one_by_one=one_by_one,
    )
    assert (published.records, published.batches) == (ROWS, 3)
    check = BatchCheck(keys.keystore.public_keys, store.schema_text)
    _read(kafka.bootstrap_servers, check, department)
    if one_by_one:
        assert published.manifests == 0
        assert (check.accepted, check.signatures, check.manifests) == (ROWS, ROWS, 0)
        assert not check.refused
    else:
        # One manifest for each partition each batch wrote to, each verified once.
        assert 3 <= published.manifests <= 9
        assert check.manifests == check.signatures == published.manifests
        assert check.accepted == ROWS - 1
        assert check.refused == {"not_in_manifest": 1}
    assert check.held == 0
    engine.dispose()
