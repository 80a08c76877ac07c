"""Signed batches published by hand, as a connector publishes them: records and their
manifests in one Kafka transaction (confluent-kafka's transactional producer), with
ways to break them (a tampered record, a bad signature, an aborted transaction).

Independent of the connectors' own publishing code, so the builder's tests check the
wire format, not one implementation of it."""

from __future__ import annotations

import functools
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from confluent_kafka import Producer

from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance
from exchange.security.keystore import KeyStore
from exchange.security.manifest import Manifest
from schemas import SchemaStore, load_standard


def person(source_id: str, **fields: Any) -> dict[str, Any]:
    """A Person record of the wire schema (no resident id: the record links by other fields)."""
    n = int.from_bytes(source_id.encode()[-4:], "big") % 97
    return {
        "resident_id": None,
        "resident_id_bidx": None,
        "family_name": "王",
        "given_name": f"测{n}",
        "full_name": f"王测{n}",
        "birth_date": date(1980, 1, 1 + n % 28),
        "sex": "MALE",
        "nationality": "CHN",
        "residence_division_code": "110105",
        "phone": None,
        "address_line": None,
        "postcode": None,
        "current_division_code": None,
        "current_address_line": None,
    } | fields


@dataclass
class Published:
    """What a batch put on each partition: ``source id -> partition``, and the manifests."""

    partitions: dict[str, int] = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)


class BatchPublisher:
    """Publishes Person records of ``department`` to ``topic`` in signed batches."""

    def __init__(
        self, bootstrap: str, topic: str, department: str, store: SchemaStore, keystore: KeyStore
    ) -> None:
        self.topic = topic
        self.department = department
        wire = load_standard("person").wire
        self.schema_id = store.register(wire.subject, wire.schema)
        self.manifest_schema_id = store.register(manifest.SUBJECT, json.dumps(manifest.SCHEMA))
        self.serde = AvroSerde(store.schema_text)
        self.key_id, self.private = keystore.signing_key(department)
        self.run = uuid.uuid4().hex[:8]
        self.sequence = 0
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": f"test-{self.run}",
                "enable.idempotence": True,
                "acks": "all",
            }
        )
        self.producer.init_transactions(60)

    def close(self) -> None:
        self.producer.flush(30)

    def publish(
        self,
        records: Mapping[str, dict[str, Any] | None],
        *,
        tamper: set[str] = frozenset(),  # type: ignore[assignment]
        bad_signature: bool = False,
        abort: bool = False,
        manifests: bool = True,
    ) -> Published:
        """One batch: ``source id -> record`` (None: a withdrawal), in one transaction.

        ``tamper``: these records' values change after their digests were taken.
        ``bad_signature``: the manifests are signed over other bytes.
        ``abort``: the transaction is aborted instead of committed.
        ``manifests``: False publishes the records alone (no manifest follows).
        """
        self.sequence += 1
        batch = f"{self.run}/{self.sequence}"
        published = Published()
        digests: dict[int, list[bytes]] = defaultdict(list)

        errors: list[str] = []

        def delivered(source_id: str, err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                published.partitions[source_id] = msg.partition()

        self.producer.begin_transaction()
        order: list[tuple[str, bytes]] = []
        for source_id, record in records.items():
            value = None if record is None else self.serde.encode(self.schema_id, record)
            content_hash = (
                provenance.WITHDRAWN if record is None else f"h-{source_id}-{value!r}"[:64]
            )
            digest = manifest.record_digest(
                department=self.department,
                dataset="person",
                source_id=source_id,
                content_hash=content_hash,
                value=value or b"",
            )
            order.append((source_id, digest))
            if source_id in tamper and value is not None:
                value = value[:-1] + bytes([value[-1] ^ 1])
            self.producer.produce(
                self.topic,
                value=value,
                key=f"{self.department}:{source_id}".encode(),
                headers=[
                    (provenance.DEPARTMENT, self.department.encode()),
                    (provenance.DATASET, b"person"),
                    (provenance.CONNECTOR_ID, b"test-batches"),
                    (provenance.CONNECTOR_VERSION, b"1"),
                    (provenance.SOURCE_ID, source_id.encode()),
                    (provenance.CONTENT_HASH, content_hash.encode()),
                    (provenance.INGEST_TIME, datetime.now(UTC).isoformat().encode()),
                    (manifest.BATCH, batch.encode()),
                ],
                on_delivery=functools.partial(delivered, source_id),
            )
        self.producer.flush(60)
        assert not errors, errors[:3]
        for source_id, digest in order:
            digests[published.partitions[source_id]].append(digest)
        if manifests:
            for partition, listed in sorted(digests.items()):
                found = Manifest(
                    department=self.department,
                    dataset="person",
                    connector_id="test-batches",
                    batch=batch,
                    topic=self.topic,
                    partition=partition,
                    signing_key_id=self.key_id,
                    signed_at=datetime.now(UTC).isoformat(),
                    digests=b"".join(listed),
                )
                signature = manifest.sign_manifest(found, self.private)
                if bad_signature:
                    signature = manifest.sign_manifest(
                        Manifest(**{**found.as_record(), "batch": "forged"}), self.private
                    )
                self.producer.produce(
                    self.topic,
                    value=self.serde.encode(self.manifest_schema_id, found.as_record()),
                    key=f"{self.department}:manifest".encode(),
                    partition=partition,
                    headers=list[tuple[str, str | bytes | None]](
                        manifest.headers(found, signature)
                    ),
                )
                published.manifests.append(found)
        if abort:
            self.producer.abort_transaction(60)
        else:
            self.producer.commit_transaction(60)
        return published
