"""A batch of a department's records, published in one Kafka transaction with its signed manifests.

:class:`BatchPublisher` opens a transaction on the first send of a batch. Every
record sent to the standard topic is remembered with its digest
(:func:`exchange.security.manifest.record_digest`); dead letters go in the same
transaction and are covered by no manifest. :meth:`BatchPublisher.commit` then:

1. waits until Kafka acknowledged every record of the batch (the delivery
   reports say which partition each went to);
2. groups the digests by the partition their records went to, in the order they
   were sent (:func:`by_partition`: the order they have in the partition);
3. publishes on each of those partitions, after the batch's records, one
   manifest (:class:`~exchange.security.manifest.Manifest`, Avro in the
   Confluent framing under :data:`~exchange.security.manifest.SUBJECT`, no key),
   signed once with the department's Ed25519 key;
4. commits the transaction.

Any failure aborts the transaction and raises BrokerError: ``read_committed``
readers (the registry builder) see a batch with its manifests, or nothing of it.
A batch is named ``<run id>/<sequence>`` (the ``batch`` header of each of its
records, and its manifests' ``batch``); the sequence counts the batches of the
publisher, aborted ones included, so no two batches of one publisher share a name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from exchange.kafka.producer import Delivery, Headers, Producer
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest
from exchange.security.manifest import Manifest

Clock = Callable[[], datetime]


def by_partition(sent: Iterable[tuple[str, int, bytes]]) -> dict[tuple[str, int], bytes]:
    """The digests of ``(topic, partition, digest)`` sends, concatenated per partition.

    Partitions come in the order of their first record, digests in the order sent
    (which is each partition's offset order: the producer is idempotent).
    """
    grouped: dict[tuple[str, int], list[bytes]] = {}
    for topic, partition, digest in sent:
        grouped.setdefault((topic, partition), []).append(digest)
    return {where: b"".join(digests) for where, digests in grouped.items()}


class BatchPublisher:
    """Publishes one department's batches, each in a transaction with its manifests.

    ``kafka`` must be transactional (``Producer(..., transactional_id=...)``); it may be
    shared by several publishers as long as one batch at a time is open on it (the push
    API holds a lock). ``signing_key`` is the department's ``(key id, private key)``;
    ``schema_id`` the id of :data:`exchange.security.manifest.SCHEMA` and ``serde`` an
    :class:`AvroSerde` that knows it.
    """

    def __init__(
        self,
        kafka: Producer,
        *,
        department: str,
        dataset: str,
        connector_id: str,
        signing_key: tuple[str, bytes],
        schema_id: int,
        serde: AvroSerde,
        run_id: str,
        clock: Clock | None = None,
    ) -> None:
        if not kafka.transactional:
            raise ValueError("a batch publisher needs a transactional producer")
        self.kafka = kafka
        self.department = department
        self.dataset = dataset
        self.connector_id = connector_id
        self.signing_key_id, self._signing_key = signing_key
        self.schema_id = schema_id
        self.serde = serde
        self.run_id = run_id
        self.sequence = 0
        self._clock = clock or (lambda: datetime.now(UTC))
        self._records: list[tuple[str, Delivery, bytes]] = []  # (topic, delivery, digest)
        self._others: list[Delivery] = []  # dead letters: in the transaction, in no manifest
        self._open = False

    @property
    def batch_id(self) -> str:
        """The name of the batch being filled: ``<run id>/<sequence>``."""
        return f"{self.run_id}/{self.sequence}"

    @property
    def size(self) -> int:
        """Records and dead letters sent in the open batch."""
        return len(self._records) + len(self._others)

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Headers,
        digest: bytes | None,
    ) -> None:
        """Send a record of the batch; its ``digest`` is listed in its partition's manifest
        (None: a dead letter, which no manifest covers)."""
        if not self._open:
            self.kafka.begin()
            self._open = True
        delivery = self.kafka.send(topic, value, key=key, headers=headers)
        if digest is None:
            self._others.append(delivery)
        else:
            self._records.append((topic, delivery, digest))

    def commit(self, timeout: float = 120.0) -> list[Manifest]:
        """Publish the batch's manifests and commit it; returns the manifests.

        Raises BrokerError (the batch aborted, nothing of it visible) if Kafka did not take
        every record; does nothing if no batch is open.
        """
        if not self._open:
            return []
        try:
            self.kafka.settle([d for _, d, _ in self._records] + self._others, timeout=timeout)
            manifests = self._manifests()
            for item in manifests:
                signature = manifest.sign_manifest(item, self._signing_key)
                self.kafka.send(
                    item.topic,
                    self.serde.encode(self.schema_id, item.as_record()),
                    headers=manifest.headers(item, signature),
                    partition=item.partition,
                )
            self.kafka.commit(timeout)
        except BaseException:
            self.abort()
            raise
        self._next()
        return manifests

    def abort(self) -> None:
        """Abort the open batch, if any: none of it becomes visible."""
        if not self._open:
            return
        try:
            self.kafka.abort()
        finally:
            self._next()

    def _next(self) -> None:
        self._records.clear()
        self._others.clear()
        self._open = False
        self.sequence += 1

    def _manifests(self) -> list[Manifest]:
        sent = []
        for topic, delivery, digest in self._records:
            if delivery.partition is None:  # settle() raised for any that were not delivered
                raise AssertionError(f"a record of {topic} was delivered to no partition")
            sent.append((topic, delivery.partition, digest))
        signed_at = self._clock().isoformat()
        return [
            Manifest(
                department=self.department,
                dataset=self.dataset,
                connector_id=self.connector_id,
                batch=self.batch_id,
                topic=topic,
                partition=partition,
                signing_key_id=self.signing_key_id,
                signed_at=signed_at,
                digests=digests,
            )
            for (topic, partition), digests in by_partition(sent).items()
        ]
