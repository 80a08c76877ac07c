"""Kafka consumers and topic administration, with their errors translated.

:func:`consumer` and :func:`ensure_topics` use kafka-python; :func:`fast_consumer` is
librdkafka's consumer (through confluent-kafka), which the registry builder reads
with: it fetches and parses records in C threads, about a tenth of kafka-python's
CPU a record (see the registry build throughput in docs/benchmarks.md). The
producer is in ``exchange.kafka.producer`` (librdkafka).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer as _RdKafkaConsumer
from confluent_kafka import KafkaException
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


def fast_consumer(
    bootstrap: str,
    group_id: str,
    topics: Iterable[str] = (),
    *,
    pattern: str | None = None,
    on_assign: Callable[[Any, list[Any]], None] | None = None,
    on_revoke: Callable[[Any, list[Any]], None] | None = None,
    connect_timeout: float = 15.0,
    **overrides: Any,
) -> _RdKafkaConsumer:
    """librdkafka's consumer of ``topics`` (or a regex ``pattern``, e.g. ``^std\\..*``),
    from the earliest offset, ``read_committed``, never committing on its own.

    ``overrides`` are librdkafka settings. Raises BrokerError when no broker answers.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "client.id": f"exchange-{group_id}",
        # A topic made later (a new standard) is found within seconds by the pattern.
        "topic.metadata.refresh.interval.ms": 3000,
        "logger": logging.getLogger("exchange.kafka"),
    }
    config.update(overrides)
    subscription = [pattern] if pattern is not None else list(topics)
    callbacks: dict[str, Any] = {}
    if on_assign is not None:
        callbacks["on_assign"] = on_assign
    if on_revoke is not None:
        callbacks["on_revoke"] = on_revoke
        callbacks["on_lost"] = on_revoke
    try:
        kafka_consumer = _RdKafkaConsumer(config)
        kafka_consumer.list_topics(timeout=connect_timeout)  # connects lazily: fail here
        kafka_consumer.subscribe(subscription, **callbacks)
        return kafka_consumer
    except KafkaException as exc:
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
