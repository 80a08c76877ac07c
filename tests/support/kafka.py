"""Kafka helpers for tests that share the session broker's topics with other tests."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from exchange.kafka.clients import ensure_topics


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


def read_topic(bootstrap: str, topic: str, key_prefix: bytes) -> list[Any]:
    """Every message of ``topic`` whose key starts with ``key_prefix``, up to the end offsets
    taken now (so everything acknowledged before the call is seen)."""
    ensure_topics(bootstrap, [topic])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            assert time.monotonic() < deadline, f"no metadata for {topic}"
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        found: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                found += [m for m in batch if (m.key or b"").startswith(key_prefix)]
        return found
    finally:
        consumer.close()
