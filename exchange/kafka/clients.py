"""Kafka consumers and topic administration (kafka-python), with its errors translated.

The producer is in ``exchange.kafka.producer`` (librdkafka).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from exchange.core.errors import BrokerError

log = logging.getLogger(__name__)


def consumer(
    bootstrap: str,
    group_id: str | None,
    topics: Iterable[str] = (),
    *,
    pattern: str | None = None,
    **overrides: Any,
) -> KafkaConsumer:
    """A consumer of ``topics`` (or a regex ``pattern``) from the earliest offset.

    It never commits on its own: the caller commits after applying what it read.
    """
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "client_id": f"exchange-{group_id or 'reader'}",
    }
    config.update(overrides)
    try:
        kafka_consumer = KafkaConsumer(**config)
        if pattern is not None:
            kafka_consumer.subscribe(pattern=pattern)
        else:
            kafka_consumer.subscribe(list(topics))
        return kafka_consumer
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap} ({exc}); is the stack up?") from exc


def ensure_topics(
    bootstrap: str, topics: Iterable[str], *, partitions: int = 3, replication: int | None = None
) -> None:
    """Create the topics that do not exist yet; replication defaults to min(3, brokers)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="exchange-admin")
    except KafkaError as exc:
        raise BrokerError(f"no Kafka broker answers at {bootstrap}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if not wanted:
            return
        rf = replication or min(3, len(admin.describe_cluster()["brokers"]))
        # Created concurrently by another process: that is what we wanted.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(t, partitions, rf) for t in wanted], timeout_ms=30_000)
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics {wanted}: {exc}") from exc
    finally:
        admin.close()
