"""Signed batch manifests: a department signs what it publishes once a batch, not once a record.

A connector publishes a batch of records in one Kafka transaction. Every record
of the batch carries the header ``batch`` (the batch id, ``<run id>/<sequence>``)
and no signature of its own. Before the transaction commits, the connector
publishes one *manifest* on every partition the batch wrote to, after that
partition's records: the department, dataset, connector, batch id, topic and
partition, and the digest (:func:`record_digest`) of every record of the batch on
that partition, signed once with the department's Ed25519 key.

So a manifest lives in the partition of the records it covers: a builder that
owns a partition sees both, in order, and builders sharing a topic's partitions
share nothing else. Read with ``read_committed``, a batch and its manifests
appear together or (an aborted transaction) not at all, so a replay or a rebuild
sees exactly what the first build saw.

A record's digest binds its department, dataset, source id, content hash, its
source change time if it carries one, and the exact value bytes
(``exchange.security.provenance.signed_message``): any change to one of them
after signing leaves the record uncovered. A single record's provenance stays
provable: its bytes, the manifest of its batch in the same partition, and the
manifest's signature.

The manifest's value is Avro in the Confluent framing (its schema registered as
:data:`SUBJECT`), so tools reading a standard topic through the schema registry
decode it too; the header ``manifest`` tells it from a record. What is signed is
:meth:`Manifest.message`, built from the fields, not the encoding.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchange.core.errors import UnverifiedRecordError
from exchange.security import provenance
from exchange.security.crypto import sign, verify

# Headers.
MANIFEST = "manifest"  # on a manifest: its format version (b"v1")
BATCH = "batch"  # on a record of a signed batch: the batch id
VERSION = b"v1"

DIGEST_SIZE = 32
SUBJECT = "exchange.batch-manifest-value"
SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BatchManifest",
    "namespace": "exchange",
    "doc": "The records of one batch on one partition, signed once by their department.",
    "fields": [
        {"name": "department", "type": "string"},
        {"name": "dataset", "type": "string"},
        {"name": "connector_id", "type": "string"},
        {"name": "batch", "type": "string", "doc": "<run id>/<sequence>"},
        {"name": "topic", "type": "string"},
        {"name": "partition", "type": "int"},
        {"name": "signing_key_id", "type": "string"},
        {"name": "signed_at", "type": "string", "doc": "ISO 8601, UTC"},
        {
            "name": "digests",
            "type": "bytes",
            "doc": "the records' SHA-256 digests, 32 bytes each, in publishing order",
        },
    ],
}


def record_digest(
    *,
    department: str,
    dataset: str,
    source_id: str,
    content_hash: str,
    value: bytes,
    source_changed_at: str | None = None,
) -> bytes:
    """The 32-byte digest a manifest lists for one record (a withdrawal: ``value`` b"";
    ``source_changed_at``: its header of that name, covered when set)."""
    return hashlib.sha256(
        provenance.signed_message(
            department=department,
            dataset=dataset,
            source_id=source_id,
            content_hash=content_hash,
            value=value,
            source_changed_at=source_changed_at,
        )
    ).digest()


@dataclass(frozen=True, slots=True)
class Manifest:
    department: str
    dataset: str
    connector_id: str
    batch: str
    topic: str
    partition: int
    signing_key_id: str
    signed_at: str
    digests: bytes  # concatenated 32-byte digests

    def __post_init__(self) -> None:
        if len(self.digests) % DIGEST_SIZE:
            raise ValueError(f"digests must be a multiple of {DIGEST_SIZE} bytes")

    @property
    def count(self) -> int:
        return len(self.digests) // DIGEST_SIZE

    def covered(self) -> Counter[bytes]:
        """How many times each digest is listed (a record re-sent within a batch counts twice)."""
        d = self.digests
        return Counter(d[i : i + DIGEST_SIZE] for i in range(0, len(d), DIGEST_SIZE))

    def message(self) -> bytes:
        """The bytes the department signs (length-prefixed fields, then the digests' hash)."""
        parts = [
            self.department,
            self.dataset,
            self.connector_id,
            self.batch,
            self.topic,
            str(self.partition),
            self.signing_key_id,
            self.signed_at,
        ]
        encoded = [p.encode() for p in parts]
        prefix = b"".join(len(p).to_bytes(4, "big") + p for p in encoded)
        return b"exchange-manifest-v1\x00" + prefix + hashlib.sha256(self.digests).digest()

    def as_record(self) -> dict[str, Any]:
        """The Avro record of :data:`SCHEMA`."""
        return {
            "department": self.department,
            "dataset": self.dataset,
            "connector_id": self.connector_id,
            "batch": self.batch,
            "topic": self.topic,
            "partition": self.partition,
            "signing_key_id": self.signing_key_id,
            "signed_at": self.signed_at,
            "digests": self.digests,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Manifest:
        """A manifest from its decoded Avro record; ValueError/KeyError/TypeError if malformed."""
        digests = record["digests"]
        if not isinstance(digests, bytes):
            raise TypeError("digests must be bytes")
        return cls(
            department=str(record["department"]),
            dataset=str(record["dataset"]),
            connector_id=str(record["connector_id"]),
            batch=str(record["batch"]),
            topic=str(record["topic"]),
            partition=int(record["partition"]),
            signing_key_id=str(record["signing_key_id"]),
            signed_at=str(record["signed_at"]),
            digests=digests,
        )


def sign_manifest(manifest: Manifest, private_key: bytes) -> bytes:
    """The department's 64-byte Ed25519 signature of the manifest."""
    return sign(private_key, manifest.message())


def headers(manifest: Manifest, signature: bytes) -> list[tuple[str, bytes]]:
    """The headers a manifest is published with."""
    return [
        (MANIFEST, VERSION),
        (provenance.DEPARTMENT, manifest.department.encode()),
        (provenance.DATASET, manifest.dataset.encode()),
        (BATCH, manifest.batch.encode()),
        (provenance.SIGNING_KEY_ID, manifest.signing_key_id.encode()),
        (provenance.SIGNATURE, signature),
    ]


def is_manifest(named: Mapping[str, bytes]) -> bool:
    return MANIFEST in named


def verify_manifest(manifest: Manifest, signature: bytes, public_keys: Mapping[str, bytes]) -> None:
    """Raise unless ``signature`` is the manifest signed by one of its department's keys.

    UnverifiedRecordError if the key is not the department's; SignatureError if the
    signature does not match.
    """
    public = public_keys.get(manifest.signing_key_id)
    if public is None:
        raise UnverifiedRecordError(
            f"manifest signing key {manifest.signing_key_id!r} is not in the "
            f"department's catalogue of public keys"
        )
    verify(public, manifest.message(), signature)
