"""What a consumer must do to accept records signed by batch manifests, and nothing more.

:class:`BatchCheck` is fed the messages of the standard topics in the order a
consumer reads them (per partition, in offset order). A record carrying the
header ``batch`` is held, with its digest (:func:`exchange.security.manifest.record_digest`),
under (topic, partition, batch) until that partition's manifest of the batch
(header ``manifest``) arrives; the manifest is decoded (Avro in the Confluent
framing, :class:`exchange.kafka.wire.AvroSerde` over the schema store), checked
against where it was read (topic, partition, batch, department), its signature
verified once (:func:`exchange.security.manifest.verify_manifest`), and each held
record accepted if the manifest lists its digest (as many times as it is
listed), refused otherwise. A record with a per-record ``signature`` header
(published before manifests) is verified on its own, as the builder does today.

It decodes no record and writes nothing: it is the bound the registry builder's
verification cannot beat on one core, measured by ``bench.registry_throughput``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exchange.core.errors import ExchangeError, UncoveredRecordError, UnverifiedRecordError
from exchange.kafka.wire import AvroSerde
from exchange.security import manifest, provenance

Headers = Sequence[tuple[str, bytes]] | None
Offsets = dict[tuple[str, int], int]

_SIGNATURE = provenance.SIGNATURE
_BATCH = manifest.BATCH
_MANIFEST = manifest.MANIFEST
_DEPARTMENT = provenance.DEPARTMENT
_DATASET = provenance.DATASET
_SOURCE_ID = provenance.SOURCE_ID
_CONTENT_HASH = provenance.CONTENT_HASH
_CHANGED_AT = provenance.SOURCE_CHANGED_AT
_RECORD_TAG = b"exchange-record-v1\x00"  # provenance.signed_message's first bytes
_LENGTHS = [n.to_bytes(4, "big") for n in range(256)]  # signed_message's length prefixes
_UNVERIFIED = UnverifiedRecordError.code
_UNCOVERED = UncoveredRecordError.code


def _prefix(department: bytes, dataset: bytes) -> bytes:
    """The start of :func:`exchange.security.provenance.signed_message` for a department's
    dataset: its tag and the first two length-prefixed parts, from the headers' bytes.

    :meth:`BatchCheck.messages` finishes the message from the source id's and content hash's
    header bytes and the value's SHA-256, without decoding a header to text and encoding it
    again; tests/unit/test_bench_batch_check.py holds it equal to
    :func:`exchange.security.manifest.record_digest` for any text. (A source id or content
    hash that is not UTF-8 is hashed as it is, where record_digest's caller would refuse it:
    its department cannot have listed such a digest from text.)
    """
    department.decode()  # UnicodeDecodeError, as signed_message's caller would raise
    dataset.decode()
    return (
        _RECORD_TAG
        + len(department).to_bytes(4, "big")
        + department
        + len(dataset).to_bytes(4, "big")
        + dataset
    )


@dataclass
class _Held:
    first_offset: int
    digests: list[bytes] = field(default_factory=list)


@dataclass
class BatchCheck:
    """Accepts or refuses each record; ``public_keys(department)`` gives a department's
    keys by key id (read once and cached here), ``schema_text(id)`` the manifest's schema."""

    public_keys: Callable[[str], Mapping[str, bytes]]
    schema_text: Callable[[int], str]
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    manifests: int = 0
    signatures: int = 0  # Ed25519 checks made (manifests and per-record signatures)
    errors: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._serde = AvroSerde(self.schema_text)
        self._keys: dict[str, Mapping[str, bytes]] = {}
        self._held: dict[tuple[str, int, bytes], _Held] = {}
        self._prefixes: dict[tuple[bytes, bytes], bytes] = {}

    @property
    def resolved(self) -> int:
        """Records accepted or refused (manifests are not records)."""
        return self.accepted + sum(self.refused.values())

    @property
    def held(self) -> int:
        return sum(len(h.digests) for h in self._held.values())

    def _department_keys(self, department: str) -> Mapping[str, bytes]:
        keys = self._keys.get(department)
        if keys is None:
            keys = self._keys[department] = self.public_keys(department)
        return keys

    def messages(self, batch: Iterable[Any]) -> None:
        """Take a consumer's batch of confluent-kafka ``Message``s in the order read (an
        error event is kept in ``errors`` for the consumer to judge). The hot path: a
        record of a signed batch costs a dict of its headers, its digest and an append."""
        held_by = self._held
        prefixes = self._prefixes
        sha256 = hashlib.sha256
        lengths = _LENGTHS
        for msg in batch:
            if msg.error() is not None:
                self.errors.append(msg.error())
                continue
            named = dict(msg.headers() or ())
            topic, partition = msg.topic(), msg.partition()
            batch_id = named.get(_BATCH)
            if batch_id is None or _MANIFEST in named:
                self._other(topic, partition, named, msg.value())
                continue
            try:
                owner = (named[_DEPARTMENT], named[_DATASET])
                source_id, content_hash = named[_SOURCE_ID], named[_CONTENT_HASH]
            except KeyError:
                self.refused[_UNVERIFIED] += 1
                continue
            prefix = prefixes.get(owner)
            if prefix is None:
                try:
                    prefix = prefixes[owner] = _prefix(*owner)
                except UnicodeDecodeError:
                    self.refused[_UNVERIFIED] += 1
                    continue
            changed = named.get(_CHANGED_AT)
            if changed is not None:
                # A record carrying its source's change time signs it too, under another
                # tag: the reference digest, not the fast copy of the v1 message.
                try:
                    digest = manifest.record_digest(
                        department=owner[0].decode(),
                        dataset=owner[1].decode(),
                        source_id=source_id.decode(),
                        content_hash=content_hash.decode(),
                        value=msg.value() or b"",
                        source_changed_at=changed.decode(),
                    )
                except UnicodeDecodeError:
                    self.refused[_UNVERIFIED] += 1
                    continue
                self._hold(topic, partition, batch_id, msg.offset(), digest)
                continue
            n, m = len(source_id), len(content_hash)
            digest = sha256(
                b"".join(
                    (
                        prefix,
                        lengths[n] if n < 256 else n.to_bytes(4, "big"),
                        source_id,
                        lengths[m] if m < 256 else m.to_bytes(4, "big"),
                        content_hash,
                        sha256(msg.value() or b"").digest(),
                    )
                )
            ).digest()
            held = held_by.get((topic, partition, batch_id))
            if held is None:
                held = held_by[(topic, partition, batch_id)] = _Held(msg.offset())
            held.digests.append(digest)

    def _hold(
        self, topic: str, partition: int, batch_id: bytes, offset: int, digest: bytes
    ) -> None:
        held = self._held.get((topic, partition, batch_id))
        if held is None:
            held = self._held[(topic, partition, batch_id)] = _Held(offset)
        held.digests.append(digest)

    def _other(
        self, topic: str, partition: int, named: dict[str, bytes], value: bytes | None
    ) -> None:
        """A manifest, a record signed on its own, or a record with neither."""
        batch = named.get(_BATCH)
        if batch is not None:
            self._manifest(topic, partition, batch, named, value or b"")
        elif _SIGNATURE in named:
            self.signatures += 1
            try:
                department = named[_DEPARTMENT].decode()
                provenance.verify_record(named, value or b"", self._department_keys(department))
                self.accepted += 1
            except (KeyError, UnicodeDecodeError):
                self.refused[_UNVERIFIED] += 1
            except ExchangeError as exc:
                self.refused[exc.code] += 1
        else:
            self.refused[_UNVERIFIED] += 1

    def _manifest(
        self, topic: str, partition: int, batch: bytes, named: dict[str, bytes], value: bytes
    ) -> None:
        self.manifests += 1
        held = self._held.pop((topic, partition, batch), None)
        digests = held.digests if held is not None else []
        try:
            _, record = self._serde.decode(value)
            signed = manifest.Manifest.from_record(record)
            where = (signed.topic, signed.partition, signed.batch.encode())
            if where != (topic, partition, batch):
                raise ValueError(f"manifest of {where} read on {(topic, partition, batch)}")
            if signed.department.encode() != named.get(_DEPARTMENT):
                raise ValueError("manifest's department differs from its header")
            self.signatures += 1
            manifest.verify_manifest(
                signed, named[_SIGNATURE], self._department_keys(signed.department)
            )
        except ExchangeError as exc:
            self.refused[exc.code] += len(digests)
            return
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            self.refused["malformed_manifest"] += len(digests)
            return
        listed = signed.digests
        size = manifest.DIGEST_SIZE
        entries = {listed[i : i + size] for i in range(0, len(listed), size)}
        distinct = set(digests)
        if len(entries) == signed.count and len(distinct) == len(digests):  # no digest twice
            covered = len(distinct & entries)
            self.accepted += covered
            if covered < len(digests):
                self.refused[_UNCOVERED] += len(digests) - covered
            return
        counts = signed.covered()  # a record sent twice in a batch is listed twice
        for digest in digests:
            if counts[digest] > 0:
                counts[digest] -= 1
                self.accepted += 1
            else:
                self.refused[_UNCOVERED] += 1

    def committable(self, positions: Offsets) -> Offsets:
        """The offsets a consumer at ``positions`` (per partition, the offset after the last
        message read) may commit: on a partition where records are held (their manifest not
        read yet), the first of them."""
        offsets = dict(positions)
        for (topic, partition, _), held in self._held.items():
            at = offsets.get((topic, partition))
            if at is None or held.first_offset < at:
                offsets[(topic, partition)] = held.first_offset
        return offsets
