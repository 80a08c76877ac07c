"""A stand-in for the exchange's transactional producer, for tests that need no broker."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from exchange.core.errors import BrokerError
from exchange.kafka.producer import Delivery, Headers, Producer
from exchange.security import manifest, provenance

Sent = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]


@dataclass
class Transaction:
    """What one transaction held, in order, and how it ended."""

    sent: list[tuple[Sent, int]] = field(default_factory=list)  # (send, partition)
    outcome: str = "open"  # then "committed" or "aborted"


class RecordingProducer(Producer):
    """Keeps every send, in order, and acknowledges it at once, with a partition (the one
    asked for, or the key's CRC-32 modulo ``partitions``) and the next offset there.

    Transactional like the exchange's: ``transactions`` holds each transaction's sends and
    outcome; ``sent`` what committed transactions hold (what ``read_committed`` would see).
    ``fail_commit`` makes the next commit fail as Kafka's would (the transaction aborted).
    """

    def __init__(self, partitions: int = 3) -> None:  # no broker to reach
        self.transactional_id = "recording"
        self.in_transaction = False
        self.partitions = partitions
        self.transactions: list[Transaction] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.fail_commit = False

    @property
    def sent(self) -> list[Sent]:
        return [s for t in self.transactions if t.outcome == "committed" for s, _ in t.sent]

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> Delivery:
        if not self.in_transaction:
            raise BrokerError("send outside a transaction")
        if partition is None:
            partition = zlib.crc32(key or b"") % self.partitions
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[topic, partition] = offset + 1
        self.transactions[-1].sent.append(((topic, key, value, list(headers)), partition))
        delivery = Delivery()
        delivery.done, delivery.partition, delivery.offset = True, partition, offset
        return delivery

    def settle(self, deliveries: object, timeout: float = 120.0) -> None:
        return None

    def begin(self) -> None:
        assert not self.in_transaction, "a transaction is open already"
        self.in_transaction = True
        self.transactions.append(Transaction())

    def commit(self, timeout: float = 120.0) -> None:
        if not self.in_transaction:
            return
        if self.fail_commit:
            self.fail_commit = False
            self.abort()
            raise BrokerError("cannot commit the transaction: the transaction was aborted")
        self.in_transaction = False
        self.transactions[-1].outcome = "committed"

    def abort(self, timeout: float = 60.0) -> None:
        if not self.in_transaction:
            return
        self.in_transaction = False
        self.transactions[-1].outcome = "aborted"

    def close(self, timeout: float = 30.0) -> None:
        self.abort()


def is_manifest(headers: list[tuple[str, bytes]]) -> bool:
    return manifest.is_manifest(provenance.headers_dict(headers))
