"""Withdrawing published records: a department takes back what it published.

A withdrawal is a Kafka tombstone (null value) on the standard topic, keyed like
the record (``<department>:<source id>``, so it lands on the record's partition,
after it), with the same provenance headers and an Ed25519 signature over the
withdrawal (content hash ``withdrawn``, empty value). The registry builder
verifies it like any record, marks the record withdrawn (a new version in its
history), and takes it out of its entity; the gateway no longer serves it.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.definition import ConnectorDefinition
from connectors.pipeline import Keys, RecordPipeline
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from schemas import SchemaStore


def withdraw_records(
    definition: ConnectorDefinition,
    source_ids: Iterable[str],
    *,
    bootstrap: str,
    store: SchemaStore,
    keys: Keys,
) -> int:
    """Publish a signed withdrawal for each source id; returns how many Kafka acknowledged."""
    wanted = list(dict.fromkeys(s.strip() for s in source_ids if s.strip()))
    if not wanted:
        return 0
    ensure_topics(bootstrap, [definition.standard.topic])
    kafka = Producer(bootstrap)
    try:
        pipeline = RecordPipeline(
            definition, store=store, keys=keys, kafka=kafka, source="withdrawal"
        )
        for source_id in wanted:
            pipeline.withdraw(source_id)
        pipeline.settle()
    finally:
        kafka.close()
    return len(wanted)
