"""Kafka helpers for tests that share the session broker's topics with other tests."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from exchange.clients import ensure_topics


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The topic's current end offset per partition (creating the topic if missing)."""
    ensure_topics(bootstrap, [topic])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 30
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} has no partitions")
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def start_group_at(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``offsets`` for a new consumer group, so it starts where a test began publishing.

    Records other tests left on a shared topic are then not this test's concern.
    """
    seed = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        seed.commit(
            {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        )
    finally:
        seed.close()
