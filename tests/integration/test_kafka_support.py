"""The tests' topic reader (tests.support.kafka.read_topic) finds what a full scan finds.

It reads only what arrived since its last call, and of the records before, only the
spans where keys with the prefix can be: a record it missed would let a test that
expects "nothing was published" pass without looking.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from exchange.local.broker import LocalKafka
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

PREFIXES = [b"", b"a", b"a:", b"a:1", b"ab", b"ab:", b"b:3", b"plain", b"plainer", b"zz"]
ROUNDS = [
    [b"a:1", b"ab:2", b"b:3", b"plain", None],
    [b"a:4", b"a:5", b"c:6", b"a:1"],
    [],  # nothing new: everything comes from the earlier spans
    [b"ab:7", b"plain", b"a:1x", b"plainer", b"b:3"],
]


def _full_scan(bootstrap: str, topic: str, prefix: bytes) -> list[tuple[int, int]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        found: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=500).values():
                found += [m for m in batch if (m.key or b"").startswith(prefix)]
        return sorted((m.partition, m.offset) for m in found)
    finally:
        consumer.close()


def test_read_topic_finds_what_a_full_scan_finds(kafka: LocalKafka) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = f"test.read-topic.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=3)
    producer = Producer(bootstrap)
    try:
        for n, keys in enumerate(ROUNDS):
            producer.settle([producer.send(topic, b"%d" % n, key=k) for k in keys], timeout=60)
            for prefix in PREFIXES:
                read = [(m.partition, m.offset) for m in read_topic(bootstrap, topic, prefix)]
                assert read == _full_scan(bootstrap, topic, prefix), (n, prefix)
    finally:
        producer.close()
    assert len(read_topic(bootstrap, topic, b"")) == sum(len(keys) for keys in ROUNDS)
    assert read_topic(bootstrap, topic, b"zz") == []
