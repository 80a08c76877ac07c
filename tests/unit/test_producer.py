"""The producer's own behaviour that needs no broker: refusing an address nobody answers at."""

from __future__ import annotations

import time

import pytest

from exchange.core.errors import BrokerError
from exchange.kafka.producer import DEFAULTS, Producer
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
