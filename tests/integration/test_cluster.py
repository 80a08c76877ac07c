"""A 3-broker KRaft cluster on loopback: replication factor 3, min.insync.replicas 2.

acks=all writes succeed with all three brokers and with one broker down, and are
refused once two are down (fewer in-sync replicas than min.insync.replicas).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from exchange.core.errors import BrokerError
from exchange.kafka.clients import ensure_topics
from exchange.kafka.producer import Producer
from exchange.local.broker import LocalKafka, pid_alive
from tests.support.kafka import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

TOPIC = "std.cluster_test.v1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    nodes = LocalKafka(tmp_path_factory.mktemp("cluster"), size=3, heap="384m")
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def _send(kafka: Producer, values: list[bytes]) -> None:
    kafka.settle([kafka.send(TOPIC, v, key=b"k") for v in values], timeout=60)


def _read_all(bootstrap: str) -> list[bytes]:
    """Every record on the topic up to its end offsets now (not until it is quiet for a few
    seconds: just after two brokers restart, the first fetch can take longer than that)."""
    return [m.value for m in read_topic(bootstrap, TOPIC, b"")]


def test_three_brokers_replicate_and_enforce_min_insync(
    cluster: LocalKafka, tmp_path: Path
) -> None:
    assert cluster.replication_factor == 3
    pids = cluster.pids()
    assert len(pids) == 3
    assert all(pid_alive(pid) for pid in pids.values())

    ensure_topics(cluster.bootstrap_servers, [TOPIC], partitions=1)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    try:
        assert len(admin.describe_cluster()["brokers"]) == 3
        [topic] = admin.describe_topics([TOPIC])
        [partition] = topic["partitions"]
        assert len(partition["replica_nodes"]) == 3
        assert len(partition["isr_nodes"]) == 3
    finally:
        admin.close()

    kafka = Producer(cluster.bootstrap_servers)
    try:
        _send(kafka, [b"all-three-%d" % i for i in range(50)])
    finally:
        kafka.close()

    # One broker down: two in-sync replicas remain, acks=all still succeeds.
    first, second = cluster.nodes[2], cluster.nodes[1]
    cluster.stop_node(first)
    assert not pid_alive(pids[first.node_id])
    alive = f"{cluster.nodes[0].address},{second.address}"
    kafka = Producer(alive)
    try:
        _send(kafka, [b"two-of-three-%d" % i for i in range(50)])
    finally:
        kafka.close()

    # Two brokers down: only one replica, below min.insync.replicas=2: writes are refused.
    cluster.stop_node(second)
    kafka = Producer(
        cluster.nodes[0].address, delivery_timeout_ms=8000, request_timeout_ms=4000, linger_ms=0
    )
    try:
        with pytest.raises(BrokerError, match="did not acknowledge"):
            _send(kafka, [b"must-not-be-acknowledged"])
    finally:
        kafka.close(timeout=5)

    # Back to three: every acknowledged record is there, the refused one is not reported as sent.
    cluster.start_node(second)
    cluster.start_node(first)
    values = _read_all(cluster.bootstrap_servers)
    expected = {b"all-three-%d" % i for i in range(50)} | {
        b"two-of-three-%d" % i for i in range(50)
    }
    assert expected <= set(values)
