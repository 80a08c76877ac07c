"""Withdrawing published records: a department takes back what it published.

A withdrawal is a Kafka tombstone (null value) on the standard topic, keyed like
the record (``<department>:<source id>``, so it lands on the record's partition,
after it), with the same provenance headers as a record and the header ``batch``.
The withdrawals are published as batches like any records (:mod:`connectors.batches`):
in one Kafka transaction with, on each partition they went to, a manifest signed by
the department listing their digests (content hash ``withdrawn``, value b""). The
registry builder checks a withdrawal against its manifest like any record, marks
the record withdrawn (a new version in its history), and takes it out of its
entity; the gateway no longer serves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from connectors.definition import ConnectorDefinition
from connectors.pipeline import Keys, RecordPipeline
from connectors.publisher import BATCH
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
    """Publish a withdrawal for each source id, :data:`~connectors.publisher.BATCH` to a
    transaction; returns how many were committed. Raises BrokerError if Kafka did not take
    them (the batch that failed is aborted: none of its withdrawals is visible)."""
    wanted = list(dict.fromkeys(s.strip() for s in source_ids if s.strip()))
    if not wanted:
        return 0
    ensure_topics(bootstrap, [definition.standard.topic])
    # An id of its own: a withdrawal neither fences nor waits for a connector's run.
    attempt = uuid.uuid4().hex
    kafka = Producer(
        bootstrap, transactional_id=f"exchange-withdraw-{definition.connector.id}-{attempt}"
    )
    try:
        pipeline = RecordPipeline(
            definition, store=store, keys=keys, kafka=kafka, source="withdrawal", run_id=attempt
        )
        for source_id in wanted:
            pipeline.withdraw(source_id)
            if pipeline.pending >= BATCH:
                pipeline.settle()
        pipeline.settle()
    finally:
        kafka.close()  # aborts a batch left open by a failure
    return len(wanted)
