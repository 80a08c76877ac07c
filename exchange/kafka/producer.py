"""The exchange's Kafka producer: librdkafka (through confluent-kafka), acks=all, idempotent.

Sending is asynchronous: :meth:`Producer.send` queues a record and returns a
:class:`Delivery` that librdkafka fills in once the broker acknowledged (or gave
up on) it. :meth:`Producer.settle` waits for a set of deliveries and raises
:class:`~exchange.core.errors.BrokerError` unless every one was acknowledged, which is
what a caller checkpoints on. Idempotence means a retried send never duplicates
or reorders a record within a partition.

librdkafka does the batching, compression and retries in C threads; the Python
side of a send costs a few microseconds, where kafka-python's pure-Python
producer held the GIL for most of the connector's time (see docs/benchmarks.md).
Consumers and topic administration still use kafka-python (``exchange.kafka.clients``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as _RdKafkaProducer

from exchange.core.errors import BrokerError

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]

DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "max.in.flight.requests.per.connection": 5,
    "delivery.timeout.ms": 120_000,
    "client.id": "exchange-producer",
}


class Delivery:
    """The outcome of one send: pending until ``done``; ``error`` says why it failed."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: str | None = None

    def _report(self, err: KafkaError | None, msg: Message) -> None:
        self.done = True
        if err is not None:
            self.error = f"{msg.topic()}[{msg.partition()}]: {err.str()}"


class Producer:
    """An idempotent ``acks=all`` producer.

    ``overrides`` are librdkafka settings; a keyword in kafka-python's spelling
    (``linger_ms=0``) is accepted too and means the same (``linger.ms``).
    Raises BrokerError when no broker answers at ``bootstrap`` within ``connect_timeout``.
    """

    def __init__(self, bootstrap: str, *, connect_timeout: float = 15.0, **overrides: Any):
        config = dict(DEFAULTS)
        config.update({k.replace("_", "."): v for k, v in overrides.items()})
        config["bootstrap.servers"] = bootstrap
        config["logger"] = logging.getLogger("exchange.kafka")
        config["error_cb"] = _log_error
        self.bootstrap = bootstrap
        try:
            self._kafka = _RdKafkaProducer(config)
            # librdkafka connects lazily; ask for metadata now so a wrong address fails here.
            self._kafka.list_topics(timeout=connect_timeout)
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach Kafka at {bootstrap} ({_reason(exc)}); is the stack up?"
            ) from exc

    def send(
        self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Headers = ()
    ) -> Delivery:
        """Queue a record (``value`` None: a tombstone); waits while librdkafka's queue is full."""
        delivery = Delivery()
        while True:
            try:
                self._kafka.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=list(headers),
                    on_delivery=delivery._report,
                )
                break
            except BufferError:  # queue full: serve delivery reports until there is room
                self._kafka.poll(0.05)
        self._kafka.poll(0)
        return delivery

    def settle(self, deliveries: Iterable[Delivery], timeout: float = 120.0) -> None:
        """Wait until every delivery was acknowledged; raise BrokerError otherwise."""
        remaining = self._kafka.flush(timeout)
        failed = [d.error for d in deliveries if d.error is not None or not d.done]
        if failed:
            reasons = sorted({e or "no acknowledgement" for e in failed})
            raise BrokerError(
                f"Kafka did not acknowledge {len(failed)} record(s): {'; '.join(reasons[:3])}"
            )
        if remaining:  # other callers' records still in flight: theirs to settle
            log.debug("%d records of other senders still in flight", remaining)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for queued records; returns how many are still not acknowledged."""
        return int(self._kafka.flush(timeout))

    def close(self, timeout: float = 30.0) -> None:
        """Give pending records ``timeout`` seconds, then let go; never raises."""
        remaining = self.flush(timeout)
        if remaining:
            log.warning("producer closed with %d records not acknowledged", remaining)


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def _log_error(error: KafkaError) -> None:
    # Transient by design (a broker restarting): librdkafka retries; fatal ones fail deliveries.
    log.warning("kafka: %s", error.str())
