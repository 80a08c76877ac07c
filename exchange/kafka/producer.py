"""The exchange's Kafka producer: librdkafka (through confluent-kafka), acks=all, idempotent.

Sending is asynchronous: :meth:`Producer.send` queues a record and returns a
:class:`Delivery` that librdkafka fills in once the broker acknowledged (or gave
up on) it. :meth:`Producer.settle` waits for a set of deliveries and raises
:class:`~exchange.core.errors.BrokerError` unless every one was acknowledged, which is
what a caller checkpoints on. Idempotence means a retried send never duplicates
or reorders a record within a partition. A delivered record's ``Delivery`` says
the partition and offset it went to.

Given a ``transactional_id``, the producer is *transactional*: :meth:`Producer.begin`
opens a Kafka transaction, every send until :meth:`Producer.commit` belongs to it,
and readers with ``isolation.level=read_committed`` (the registry builder) see all
of it or, after :meth:`Producer.abort` or a crash, nothing. Creating the producer
fences any earlier producer of the same id and aborts its open transaction, so a
restarted connector run never commits what a killed one left half done. Without
one (the registry builder's dead letters, the audit mirror) records are
acknowledged one by one, as before.

librdkafka does the batching, compression and retries in C threads; the Python
side of a send costs a few microseconds, where kafka-python's pure-Python
producer held the GIL for most of the connector's time (see docs/benchmarks.md).
Consumers and topic administration still use kafka-python (``exchange.kafka.clients``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
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
RETRIES = 3  # attempts at a transaction call librdkafka calls retriable
# A transactional producer's: a transaction a killed process left open holds back
# read_committed readers until the broker aborts it at this timeout (or the next producer
# of its id fences it); librdkafka wants a record's delivery timeout within it.
TRANSACTIONAL_DEFAULTS: dict[str, Any] = {
    "transaction.timeout.ms": 60_000,
    "delivery.timeout.ms": 60_000,
}


class Delivery:
    """The outcome of one send: pending until ``done``; ``error`` says why it failed,
    else ``partition`` and ``offset`` say where the record went."""

    __slots__ = ("done", "error", "offset", "partition")

    def __init__(self) -> None:
        self.done = False
        self.error: str | None = None
        self.partition: int | None = None
        self.offset: int | None = None

    def _report(self, err: KafkaError | None, msg: Message) -> None:
        self.done = True
        if err is not None:
            self.error = f"{msg.topic()}[{msg.partition()}]: {err.str()}"
        else:
            self.partition = msg.partition()
            self.offset = msg.offset()


class Producer:
    """An idempotent ``acks=all`` producer; transactional if given a ``transactional_id``.

    ``overrides`` are librdkafka settings; a keyword in kafka-python's spelling
    (``linger_ms=0``) is accepted too and means the same (``linger.ms``).
    Raises BrokerError when no broker answers at ``bootstrap`` within ``connect_timeout``
    (for a transactional producer: or the transaction coordinator cannot be reached).
    """

    transactional_id: str | None = None
    in_transaction = False

    def __init__(
        self,
        bootstrap: str,
        *,
        transactional_id: str | None = None,
        connect_timeout: float = 15.0,
        **overrides: Any,
    ):
        config = dict(DEFAULTS)
        if transactional_id is not None:
            config.update(TRANSACTIONAL_DEFAULTS)
        config.update({k.replace("_", "."): v for k, v in overrides.items()})
        config["bootstrap.servers"] = bootstrap
        config["logger"] = logging.getLogger("exchange.kafka")
        config["error_cb"] = _log_error
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
        self.bootstrap = bootstrap
        self.transactional_id = transactional_id
        self.in_transaction = False
        try:
            self._kafka = _RdKafkaProducer(config)
            # librdkafka connects lazily; ask for metadata now so a wrong address fails here.
            self._kafka.list_topics(timeout=connect_timeout)
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach Kafka at {bootstrap} ({_reason(exc)}); is the stack up?"
            ) from exc
        if transactional_id is not None:
            # Fences an earlier producer of this id and aborts the transaction it left open.
            self._transact("initialise transactions", self._kafka.init_transactions, 60.0)

    @property
    def transactional(self) -> bool:
        return self.transactional_id is not None

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> Delivery:
        """Queue a record (``value`` None: a tombstone) for ``partition``, or the partition its
        key hashes to; waits while librdkafka's queue is full. A transactional producer sends
        only inside a transaction (:meth:`begin`)."""
        delivery = Delivery()
        options: dict[str, Any] = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._kafka.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=list(headers),
                    on_delivery=delivery._report,
                    **options,
                )
                break
            except BufferError:  # queue full: serve delivery reports until there is room
                self._kafka.poll(0.05)
            except KafkaException as exc:  # e.g. the transaction failed and must be aborted
                raise BrokerError(f"cannot send to {topic}: {_reason(exc)}") from exc
        self._kafka.poll(0)
        return delivery

    # ------------------------------------------------------------------ transactions

    def begin(self) -> None:
        """Open a transaction: what is sent until :meth:`commit` is published atomically."""
        if not self.transactional:
            raise BrokerError("begin(): this producer was made without a transactional id")
        self._transact("begin a transaction", self._kafka.begin_transaction)
        self.in_transaction = True

    def commit(self, timeout: float = 120.0) -> None:
        """Deliver what the transaction holds and commit it; BrokerError if that failed, the
        transaction then aborted (nothing of it visible to ``read_committed`` readers)."""
        if not self.in_transaction:
            return
        self._transact("commit the transaction", self._kafka.commit_transaction, timeout)
        self.in_transaction = False

    def abort(self, timeout: float = 60.0) -> None:
        """Abort the open transaction (if any): what it held is never visible to
        ``read_committed`` readers. BrokerError if the broker could not be told; the
        transaction is then aborted by the broker at its timeout, or fenced by the next
        producer of the same transactional id."""
        if not self.in_transaction:
            return
        self.in_transaction = False
        self._transact("abort the transaction", self._kafka.abort_transaction, timeout)

    def _transact(self, doing: str, call: Callable[..., None], *args: float) -> None:
        """Call a transaction API, retrying what librdkafka calls retriable (a timeout, a
        coordinator moving) a few times; an abortable failure aborts the transaction."""
        for attempt in range(1, RETRIES + 1):
            try:
                call(*args)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if not isinstance(error, KafkaError):
                    raise BrokerError(f"cannot {doing}: {exc}") from exc
                if error.retriable() and attempt < RETRIES:
                    log.warning("cannot %s (%s): trying again", doing, error.str())
                    continue
                if error.txn_requires_abort() and self.in_transaction:
                    self.in_transaction = False
                    try:
                        self._kafka.abort_transaction(60.0)
                    except KafkaException as abort_exc:
                        log.warning("cannot abort the transaction: %s", _reason(abort_exc))
                    raise BrokerError(
                        f"cannot {doing} ({error.str()}): the transaction was aborted"
                    ) from exc
                if error.fatal():
                    self.in_transaction = False
                raise BrokerError(f"cannot {doing}: {error.str()}") from exc

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
        """Give pending records ``timeout`` seconds, then let go; never raises. An open
        transaction is aborted: only :meth:`commit` publishes."""
        if self.in_transaction:
            try:
                self.abort(timeout)
            except BrokerError as exc:
                log.warning("producer closed with its transaction open: %s", exc.message)
        remaining = self.flush(timeout)
        if remaining:
            log.warning("producer closed with %d records not acknowledged", remaining)


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def _log_error(error: KafkaError) -> None:
    # Transient by design (a broker restarting): librdkafka retries; fatal ones fail deliveries.
    log.warning("kafka: %s", error.str())
