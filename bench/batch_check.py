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

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
_UNVERIFIED = UnverifiedRecordError.code
_UNCOVERED = UncoveredRecordError.code


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

    def __post_init__(self) -> None:
        self._serde = AvroSerde(self.schema_text)
        self._keys: dict[str, Mapping[str, bytes]] = {}
        self._held: dict[tuple[str, int, bytes], _Held] = {}
        self._next: Offsets = {}  # (topic, partition) -> the offset after the last one read

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

    def message(
        self, topic: str, partition: int, offset: int, headers: Headers, value: bytes | None
    ) -> None:
        """Take one message of a standard topic."""
        named = dict(headers or ())
        self._next[(topic, partition)] = offset + 1
        batch = named.get(_BATCH)
        if batch is not None:
            if _MANIFEST in named:
                self._manifest(topic, partition, batch, named, value or b"")
                return
            try:
                digest = manifest.record_digest(
                    department=named[_DEPARTMENT].decode(),
                    dataset=named[_DATASET].decode(),
                    source_id=named[_SOURCE_ID].decode(),
                    content_hash=named[_CONTENT_HASH].decode(),
                    value=value or b"",
                )
            except (KeyError, UnicodeDecodeError):
                self.refused[_UNVERIFIED] += 1
                return
            held = self._held.get((topic, partition, batch))
            if held is None:
                held = self._held[(topic, partition, batch)] = _Held(offset)
            held.digests.append(digest)
            return
        if _SIGNATURE in named:
            self.signatures += 1
            try:
                department = named[_DEPARTMENT].decode()
                provenance.verify_record(named, value or b"", self._department_keys(department))
                self.accepted += 1
            except (KeyError, UnicodeDecodeError):
                self.refused[_UNVERIFIED] += 1
            except ExchangeError as exc:
                self.refused[exc.code] += 1
            return
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
        covered = signed.covered()
        for digest in digests:
            if covered[digest] > 0:
                covered[digest] -= 1
                self.accepted += 1
            else:
                self.refused[_UNCOVERED] += 1

    def committable(self) -> Offsets:
        """Per partition read, the offset a consumer may commit: the first record still held
        (its manifest not read yet), else the one after the last message read."""
        offsets = dict(self._next)
        for (topic, partition, _), held in self._held.items():
            at = offsets.get((topic, partition))
            if at is None or held.first_offset < at:
                offsets[(topic, partition)] = held.first_offset
        return offsets
