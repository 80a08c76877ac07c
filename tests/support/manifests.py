"""Reading a standard topic as the registry builder does (``read_committed``) and checking
that every record is covered by its batch's signed manifest, on its own partition."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from exchange.kafka.clients import ensure_topics
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Where each partition of ``topic`` ends now (where a test starts reading)."""
    ensure_topics(bootstrap, [topic])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = _partitions(consumer, topic)
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + 30
    while not (partitions := consumer.partitions_for_topic(topic)):
        assert time.monotonic() < deadline, f"no metadata for {topic}"
        time.sleep(0.2)
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def read(
    bootstrap: str, topic: str, start: Mapping[int, int], *, committed: bool = True
) -> dict[int, list[Any]]:
    """Every message of ``topic`` from ``start`` to its end, by partition in offset order:
    as a ``read_committed`` reader sees them (``committed``), or every one in the log."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        max_partition_fetch_bytes=4 << 20,
    )
    try:
        tps = _partitions(consumer, topic)
        consumer.assign(tps)
        end = consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        found: dict[int, list[Any]] = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + 120
        pending = [tp for tp in tps if consumer.position(tp) < end[tp]]
        while pending:
            assert time.monotonic() < deadline, f"reading {topic} did not reach its end"
            for tp, messages in consumer.poll(timeout_ms=500, max_records=10_000).items():
                found[tp.partition] += [m for m in messages if m.offset < end[tp]]
            pending = [tp for tp in pending if consumer.position(tp) < end[tp]]
        return found
    finally:
        consumer.close()


def headers(message: Any) -> dict[str, bytes]:
    return provenance.headers_dict([(k, bytes(v)) for k, v in message.headers or []])


def digest_of(message: Any) -> bytes:
    """The digest a manifest lists for a record (a tombstone: of the value b"")."""
    named = headers(message)
    return manifest.record_digest(
        department=named[provenance.DEPARTMENT].decode(),
        dataset=named[provenance.DATASET].decode(),
        source_id=named[provenance.SOURCE_ID].decode(),
        content_hash=named[provenance.CONTENT_HASH].decode(),
        value=message.value if message.value is not None else b"",
    )


@dataclass
class Batch:
    """A batch's records on one partition and the manifest that covered them."""

    partition: int
    manifest: manifest.Manifest
    records: list[Any] = field(default_factory=list)


def covered_batches(
    by_partition: Mapping[int, list[Any]],
    department: str,
    public_keys: Mapping[str, bytes],
    serde: AvroSerde,
) -> list[Batch]:
    """The department's batches, each checked: its manifest comes after its records on their
    partition, verifies, and lists exactly their digests in their order; no record of the
    department is left without one. Other departments' messages are skipped."""
    batches: list[Batch] = []
    for partition, messages in sorted(by_partition.items()):
        waiting: dict[str, list[Any]] = {}
        for message in messages:
            named = headers(message)
            if named.get(provenance.DEPARTMENT) != department.encode():
                continue
            if manifest.is_manifest(named):
                item = manifest.Manifest.from_record(serde.decode(message.value)[1])
                manifest.verify_manifest(item, named[provenance.SIGNATURE], public_keys)
                assert named[manifest.BATCH].decode() == item.batch
                assert (item.topic, item.partition) == (message.topic, partition)
                records = waiting.pop(item.batch, [])
                assert records, f"manifest of {item.batch} on {partition} covers no record here"
                assert item.digests == b"".join(digest_of(r) for r in records)
                batches.append(Batch(partition, item, records))
                continue
            assert provenance.SIGNATURE not in named, "a record of a batch is not signed alone"
            waiting.setdefault(named[manifest.BATCH].decode(), []).append(message)
        assert not waiting, f"records without a manifest on partition {partition}: {list(waiting)}"
    return batches


def source_ids(batches: list[Batch]) -> list[str]:
    """The source ids of the batches' records, with repeats."""
    return [
        headers(record)[provenance.SOURCE_ID].decode()
        for batch in batches
        for record in batch.records
    ]
