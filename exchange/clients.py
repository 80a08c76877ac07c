"""Kafka clients as the exchange uses them, with kafka-python's errors translated.

Producers always run with ``acks=all`` and idempotence, so a retried send never
duplicates or reorders a record within a partition.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from exchange.errors import BrokerError

log = logging.getLogger(__name__)


def producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """An idempotent producer that waits for every in-sync replica."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 5,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "client_id": "exchange-producer",
    }
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap} ({exc}); is the stack up?") from exc


def close_producer(kafka: KafkaProducer, timeout: float = 30.0) -> None:
    """Close a producer, giving pending sends ``timeout`` seconds, and never raise.

    kafka-python's ``close`` raises KafkaTimeoutError from its final flush when a
    send is still in flight (e.g. a broker refused acks=all) and then leaves the
    sender thread running; here the sender is force-closed instead.
    """
    try:
        kafka.close(timeout=timeout)
    except KafkaError as exc:
        log.warning("producer closed with sends still pending: %s", exc)
        sender = getattr(kafka, "_sender", None)
        if sender is not None:
            sender.force_close()
        kafka._closed = True  # so kafka-python's __del__ does not try to flush again


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
