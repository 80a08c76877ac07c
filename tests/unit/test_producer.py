"""The producer's own behaviour that needs no broker: refusing an address nobody answers at,
delivery reports, and how the transaction calls' failures become BrokerError (librdkafka
replaced by a stand-in that fails as it documents)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from exchange.core.errors import BrokerError
from exchange.kafka.producer import DEFAULTS, RETRIES, Delivery, Producer
from exchange.local.broker import free_port


def test_no_broker_at_the_address_is_a_clear_error_not_a_hang() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(BrokerError, match=rf"cannot reach Kafka at 127.0.0.1:{port}.*stack up"):
        Producer(f"127.0.0.1:{port}", connect_timeout=2.0)
    assert time.monotonic() - started < 10


def test_the_defaults_wait_for_every_in_sync_replica_and_never_duplicate() -> None:
    assert DEFAULTS["acks"] == "all"
    assert DEFAULTS["enable.idempotence"] is True


class _Message:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return "std.person.v1"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def test_a_delivery_says_which_partition_and_offset_the_record_went_to() -> None:
    delivery = Delivery()
    assert (delivery.done, delivery.partition, delivery.offset) == (False, None, None)
    delivery._report(None, _Message(2, 41))  # type: ignore[arg-type]
    assert (delivery.done, delivery.error, delivery.partition, delivery.offset) == (
        True,
        None,
        2,
        41,
    )
    failed = Delivery()
    failed._report(KafkaError(KafkaError._MSG_TIMED_OUT), _Message(1, -1))  # type: ignore[arg-type]
    assert failed.done
    assert failed.error is not None
    assert failed.error.startswith("std.person.v1[1]: ")
    assert failed.partition is None


class _Rdkafka:
    """librdkafka's transaction calls: each fails with the errors queued for it, in turn."""

    def __init__(self, **failures: list[KafkaError]) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*_: Any) -> None:
            self.calls.append(name)
            queued = self.failures.get(name) or []
            if queued:
                raise KafkaException(queued.pop(0))

        return call


def _transactional(rdkafka: _Rdkafka) -> Producer:
    producer = Producer.__new__(Producer)
    producer.transactional_id = "tx-test"
    producer.in_transaction = False
    producer._kafka = rdkafka  # type: ignore[assignment]
    return producer


def _error(*, retriable: bool = False, abortable: bool = False, fatal: bool = False) -> KafkaError:
    return KafkaError(
        KafkaError._STATE,
        "the test's failure",
        fatal=fatal,
        retriable=retriable,
        txn_requires_abort=abortable,
    )


def test_a_transaction_begins_and_commits() -> None:
    rdkafka = _Rdkafka()
    producer = _transactional(rdkafka)
    producer.commit()  # nothing open: nothing to do
    producer.begin()
    assert producer.in_transaction
    producer.commit()
    assert not producer.in_transaction
    assert rdkafka.calls == ["begin_transaction", "commit_transaction"]


def test_a_commit_kafka_refuses_aborts_the_transaction_and_raises() -> None:
    rdkafka = _Rdkafka(commit_transaction=[_error(abortable=True)])
    producer = _transactional(rdkafka)
    producer.begin()
    with pytest.raises(BrokerError, match=r"commit the transaction.*was aborted"):
        producer.commit()
    assert rdkafka.calls == ["begin_transaction", "commit_transaction", "abort_transaction"]
    assert not producer.in_transaction
    producer.abort()  # aborted already: nothing more to do
    assert rdkafka.calls[-1] == "abort_transaction"
    assert rdkafka.calls.count("abort_transaction") == 1


def test_a_retriable_failure_is_tried_again_a_few_times() -> None:
    rdkafka = _Rdkafka(commit_transaction=[_error(retriable=True)] * (RETRIES - 1))
    producer = _transactional(rdkafka)
    producer.begin()
    producer.commit()
    assert rdkafka.calls.count("commit_transaction") == RETRIES
    assert not producer.in_transaction

    always = _Rdkafka(begin_transaction=[_error(retriable=True)] * RETRIES)
    with pytest.raises(BrokerError, match="cannot begin a transaction"):
        _transactional(always).begin()
    assert always.calls == ["begin_transaction"] * RETRIES


def test_a_fatal_failure_is_a_broker_error_and_leaves_no_transaction_open() -> None:
    rdkafka = _Rdkafka(commit_transaction=[_error(fatal=True)])
    producer = _transactional(rdkafka)
    producer.begin()
    with pytest.raises(BrokerError, match=r"cannot commit the transaction: .*the test's failure"):
        producer.commit()
    assert not producer.in_transaction
    assert "abort_transaction" not in rdkafka.calls


def test_a_producer_without_a_transactional_id_refuses_to_begin() -> None:
    producer = _transactional(_Rdkafka())
    producer.transactional_id = None
    assert not producer.transactional
    with pytest.raises(BrokerError, match="without a transactional id"):
        producer.begin()
