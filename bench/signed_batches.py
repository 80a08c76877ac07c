"""Publish departments' exports as signed batches, the way DESIGN.md says a connector does.

The benchmark's own publisher, for input in the manifest format before (and
independently of) the connectors' own: each department's rows are prepared by
the connector's :class:`connectors.pipeline.RecordPreparer` (map, validate, hash,
encrypt, blind-index, encode, digest; no per-record signature) and sent in batches of
``batch`` records, each batch in one Kafka transaction of a transactional
confluent-kafka producer. Every record carries the provenance headers and
``batch`` = ``<run id>/<sequence>``; once the batch is flushed, the delivery
reports say which partition each record went to, and one manifest a partition
(:class:`exchange.security.manifest.Manifest`, Avro of ``manifest.SCHEMA`` framed
with the id registered under ``manifest.SUBJECT``, signed once with the
department's key) follows that partition's records before the commit.

``tamper`` (tests) changes one byte of the value of the records it names after
their digests were listed, so a reader must refuse exactly those.
"""

from __future__ import annotations

import contextlib
import csv
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from connectors import load_definition
from connectors.pipeline import Keys, PreparerSpec, RecordPreparer, dlq_topic
from exchange.kafka.clients import ensure_topics
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance
from exchange.security.crypto import sign
from exchange.security.keystore import period_of
from schemas import SchemaStore

BATCH = 5_000


class PublishError(RuntimeError):
    """A row could not be prepared or Kafka did not take a batch."""


@dataclass
class Published:
    records: int = 0
    manifests: int = 0
    batches: int = 0


def _rows(path: Path, key: str) -> Iterator[tuple[str, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield row[key], row


def publish_batches(
    bootstrap: str,
    store: SchemaStore,
    keys: Keys,
    exports: list[tuple[Path, Path]],
    *,
    batch: int = BATCH,
    tamper: Callable[[str], bool] | None = None,
    one_by_one: bool = False,
) -> Published:
    """Publish each ``(definition, CSV export)`` pair as signed batches; return the counts.

    ``one_by_one``: sign each record on its own instead (the headers ``signing-key-id`` and
    ``signature``, no ``batch``, no manifests), as connectors did before batch manifests:
    the topics an old registry rebuilds from.
    """
    manifest_id = store.register(manifest.SUBJECT, manifest.SCHEMA)
    serde = AvroSerde(store.schema_text)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"bench-batches-{uuid.uuid4().hex[:8]}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    producer.init_transactions(60)
    published = Published()
    period = period_of(datetime.now(UTC))
    try:
        for definition_path, csv_path in exports:
            definition = load_definition(definition_path)
            standard = definition.standard
            department = definition.connector.department
            ensure_topics(bootstrap, [standard.topic, dlq_topic(department, standard.dataset)])
            schema_id = store.register(standard.wire.subject, standard.wire.schema)
            key_id, private = keys.keystore.signing_key(department)
            preparer = RecordPreparer(
                PreparerSpec(
                    definition,
                    schema_id=schema_id,
                    schema_text=store.schema_text(schema_id),
                    linkage_key=keys.linkage_key,
                ),
                keys.cipher,
            )
            static = [
                (provenance.DEPARTMENT, department.encode()),
                (provenance.DATASET, standard.dataset.encode()),
                (provenance.CONNECTOR_ID, definition.connector.id.encode()),
                (provenance.CONNECTOR_VERSION, definition.connector.version.encode()),
            ]
            sender = _BatchSender(
                producer, serde, manifest_id, standard.topic, department, standard.dataset,
                definition.connector.id, key_id, private, uuid.uuid4().hex, published,
                manifests=not one_by_one,
            )  # fmt: skip
            for source_id, values in _rows(csv_path, definition.source.key):
                prepared = preparer.prepare(values, source_id, period=period)
                if isinstance(prepared, list):
                    raise PublishError(f"{department} row {source_id}: {prepared}")
                headers = [
                    *static,
                    (provenance.SOURCE_ID, source_id.encode()),
                    (provenance.CONTENT_HASH, prepared.content_hash.encode()),
                    (provenance.INGEST_TIME, datetime.now(UTC).isoformat().encode()),
                ]
                if one_by_one:
                    message = provenance.signed_message(
                        department=department,
                        dataset=standard.dataset,
                        source_id=source_id,
                        content_hash=prepared.content_hash,
                        value=prepared.value,
                    )
                    headers.append((provenance.SIGNING_KEY_ID, key_id.encode()))
                    headers.append((provenance.SIGNATURE, sign(private, message)))
                sender.add(
                    source_id,
                    prepared.value,
                    prepared.digest,
                    headers,
                    tampered=tamper is not None and tamper(source_id),
                )
                if sender.size >= batch:
                    sender.commit()
            sender.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # no transaction open, or the broker is gone
            producer.abort_transaction(30)
        raise
    return published


class _BatchSender:
    """One department's run (its own run id): each batch's records sent in an open
    transaction, then its manifests, then the commit."""

    def __init__(
        self,
        producer: Producer,
        serde: AvroSerde,
        manifest_id: int,
        topic: str,
        department: str,
        dataset: str,
        connector_id: str,
        key_id: str,
        private: bytes,
        run_id: str,
        published: Published,
        *,
        manifests: bool = True,
    ) -> None:
        self.producer, self.serde, self.manifest_id = producer, serde, manifest_id
        self.topic, self.department, self.dataset = topic, department, dataset
        self.connector_id, self.key_id, self._private = connector_id, key_id, private
        self.run_id, self.published = run_id, published
        self.manifests = manifests  # False: records signed one by one, no batch, no manifest
        self.sequence = 0
        self.size = 0
        self._digests: dict[int, list[bytes]] = defaultdict(list)
        self._errors: list[str] = []
        self._open = False

    @property
    def batch_id(self) -> str:
        return f"{self.run_id}/{self.sequence}"

    def add(
        self,
        source_id: str,
        value: bytes,
        digest: bytes,
        headers: list[tuple[str, bytes]],
        *,
        tampered: bool = False,
    ) -> None:
        """Send a prepared record (``digest``: :func:`exchange.security.manifest.record_digest`
        of it) in the open transaction, opening one if need be."""
        if not self._open:
            self.producer.begin_transaction()
            self._open = True
        if tampered:
            value = value[:-1] + bytes([value[-1] ^ 1])
        partitions = self._digests
        errors = self._errors

        def delivered(err: KafkaError | None, msg: Message, digest: bytes = digest) -> None:
            if err is not None:
                errors.append(err.str())
            else:
                partitions[msg.partition() or 0].append(digest)

        self._produce(
            value=value,
            key=f"{self.department}:{source_id}".encode(),
            headers=[*headers, (manifest.BATCH, self.batch_id.encode())]
            if self.manifests
            else headers,
            on_delivery=delivered,
        )
        self.size += 1

    def _produce(self, **kwargs: Any) -> None:
        while True:
            try:
                self.producer.produce(self.topic, **kwargs)
                break
            except BufferError:  # queue full: serve delivery reports until there is room
                self.producer.poll(0.05)
        self.producer.poll(0)

    def commit(self) -> None:
        """Flush the open batch, publish a manifest on each partition it wrote to, commit."""
        if not self._open:
            return
        if self.producer.flush(120):
            raise PublishError("Kafka did not acknowledge the batch in 120 s")
        if self._errors:
            raise PublishError(f"Kafka refused records: {self._errors[:3]}")
        signed_at = datetime.now(UTC).isoformat()
        for partition, digests in sorted(self._digests.items()) if self.manifests else []:
            signed = manifest.Manifest(
                department=self.department,
                dataset=self.dataset,
                connector_id=self.connector_id,
                batch=self.batch_id,
                topic=self.topic,
                partition=partition,
                signing_key_id=self.key_id,
                signed_at=signed_at,
                digests=b"".join(digests),
            )
            signature = manifest.sign_manifest(signed, self._private)
            self._produce(
                value=self.serde.encode(self.manifest_id, signed.as_record()),
                partition=partition,
                headers=manifest.headers(signed, signature),
            )
            self.published.manifests += 1
        self.producer.commit_transaction(120)
        self.published.records += self.size
        self.published.batches += 1
        self._open = False
        self._digests.clear()
        self.size = 0
        self.sequence += 1
