"""One record's way out of a department: map, validate, encrypt, index, sign, encode, produce.

:class:`RecordPipeline` is shared by file and database runs (``connectors.publisher``)
and the gateway's HTTP push API. A row either leaves as a signed, Confluent-framed
Avro record on ``std.<dataset>.v<N>`` (its sensitive fields already encrypted,
blind indexes beside encrypted identifiers) or as a dead letter on
``dlq.<dataset>`` with its original content and reasons. Sends are checked in
batches by :meth:`RecordPipeline.settle`; any send Kafka does not acknowledge
fails the run, so nothing is silently lost.

Rule of this module: no plaintext of a sensitive field is ever logged or sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.csvsource import SourceRow
from connectors.definition import ConnectorDefinition
from connectors.mapping import Problem, json_safe, map_row
from exchange import provenance
from exchange.blindindex import blind_index
from exchange.crypto import hmac_sha256, sign
from exchange.errors import WireFormatError
from exchange.keystore import FieldCipher, KeyStore
from exchange.producer import Delivery, Producer
from exchange.wire import AvroSerde
from schemas import SchemaStore
from schemas.standards import Sensitivity


def _replace_undecodable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class Keys:
    """What a connector needs to protect what it publishes."""

    keystore: KeyStore
    linkage_key: bytes

    @property
    def cipher(self) -> FieldCipher:
        return FieldCipher(self.keystore)


@dataclass(frozen=True)
class Prepared:
    """A record ready to send: its framed value and keyed content hash."""

    source_id: str
    value: bytes
    content_hash: str


@dataclass
class Tally:
    """Counts of one run (or one pushed batch); they reconcile: read = published + rejected."""

    read: int = 0
    published: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return self.read == self.published + self.rejected


class RecordPipeline:
    """Publishes rows of one connector definition through one producer."""

    def __init__(
        self,
        definition: ConnectorDefinition,
        *,
        store: SchemaStore,
        keys: Keys,
        kafka: Producer,
        period: str | None = None,
        source: str = "",
    ) -> None:
        self.definition = definition
        self.source = source
        self.standard = definition.standard
        self.wire = self.standard.wire
        self.dataset = self.standard.dataset
        self.topic = self.standard.topic
        self.dlq_topic = f"dlq.{self.dataset}"
        self.department = definition.connector.department
        self.schema_id = store.register(self.wire.subject, self.wire.schema)
        self.serde = AvroSerde(store.schema_text)
        self.cipher = keys.cipher
        self.linkage_key = keys.linkage_key
        self.signing_key_id, self._signing_key = keys.keystore.signing_key(self.department)
        self._fixed_period = period
        self.kafka = kafka
        self.pending: list[Delivery] = []
        self._sensitive = [
            f for f in self.standard.fields if f.sensitivity is Sensitivity.SENSITIVE
        ]
        self._static_headers = [
            (provenance.DEPARTMENT, self.department.encode()),
            (provenance.DATASET, self.dataset.encode()),
            (provenance.CONNECTOR_ID, definition.connector.id.encode()),
            (provenance.CONNECTOR_VERSION, definition.connector.version.encode()),
            (provenance.SIGNING_KEY_ID, self.signing_key_id.encode()),
        ]

    def record_key(self, source_id: str) -> str:
        return f"{self.department}:{source_id}"

    def prepare(self, values: dict[str, str], source_id: str) -> Prepared | list[Problem]:
        """Map, validate, encrypt, index and encode a row; or say why it cannot go."""
        record, problems = map_row(self.definition, self.standard, values)
        if problems:
            return problems
        content_hash = hmac_sha256(
            self.linkage_key,
            json.dumps(json_safe(record), sort_keys=True, ensure_ascii=False).encode(),
        ).hex()
        record_key = self.record_key(source_id)
        # Data keys are per month: a long-running pipeline (the push API) moves on with time.
        period = self._fixed_period or datetime.now(UTC).strftime("%Y-%m")
        for spec in self._sensitive:
            plain = record.get(spec.name)
            if plain is None:
                continue
            if spec.identifier:
                domain = self.standard.blind_index_domain(spec)
                record[spec.name + "_bidx"] = blind_index(self.linkage_key, domain, str(plain))
            record[spec.name] = self.cipher.encrypt(
                self.dataset,
                spec.name,
                record_key,
                json.dumps(json_safe({"v": plain})["v"], ensure_ascii=False).encode(),
                period=period,
            )
        try:
            value = self.serde.encode(self.schema_id, record)
        except WireFormatError as exc:
            return [("_row", "avro.encode", exc.message)]
        return Prepared(source_id, value, content_hash)

    def publish(self, prepared: Prepared) -> None:
        """Send a prepared record, signed, with its provenance headers."""
        source_id, value, content_hash = prepared.source_id, prepared.value, prepared.content_hash
        signature = sign(
            self._signing_key,
            provenance.signed_message(
                department=self.department,
                dataset=self.dataset,
                source_id=source_id,
                content_hash=content_hash,
                value=value,
            ),
        )
        headers = [
            *self._static_headers,
            (provenance.SOURCE_ID, source_id.encode()),
            (provenance.CONTENT_HASH, content_hash.encode()),
            (provenance.INGEST_TIME, datetime.now(UTC).isoformat().encode()),
            (provenance.SIGNATURE, signature),
        ]
        self.pending.append(
            self.kafka.send(
                self.topic, value, key=self.record_key(source_id).encode(), headers=headers
            )
        )

    def withdraw(self, source_id: str) -> None:
        """Send a signed tombstone: the department withdraws the record ``source_id``."""
        signature = sign(
            self._signing_key,
            provenance.signed_message(
                department=self.department,
                dataset=self.dataset,
                source_id=source_id,
                content_hash=provenance.WITHDRAWN,
                value=b"",
            ),
        )
        headers = [
            *self._static_headers,
            (provenance.SOURCE_ID, source_id.encode()),
            (provenance.CONTENT_HASH, provenance.WITHDRAWN.encode()),
            (provenance.INGEST_TIME, datetime.now(UTC).isoformat().encode()),
            (provenance.SIGNATURE, signature),
        ]
        self.pending.append(
            self.kafka.send(
                self.topic, None, key=self.record_key(source_id).encode(), headers=headers
            )
        )

    def dead_letter(
        self, row: SourceRow, source_id: str, problems: list[Problem]
    ) -> dict[str, Any]:
        """Send a rejected row to ``dlq.<dataset>`` with its reasons; returns the entry."""
        entry = {
            "connector": self.definition.connector.id,
            "department": self.department,
            "dataset": self.dataset,
            "source": self.source,
            "line": row.line,
            "source_id": source_id or None,
            "raw": row.raw,
            "reasons": [{"field": f, "code": c, "message": m} for f, c, m in problems],
            "at": datetime.now(UTC).isoformat(),
        }
        key = self.record_key(source_id or f"line:{row.line}")
        payload = json.dumps(entry, ensure_ascii=False).encode()
        self.pending.append(self.kafka.send(self.dlq_topic, payload, key=key.encode()))
        return entry

    def handle(
        self, row: SourceRow, key_column: str, seen: set[str], tally: Tally
    ) -> dict[str, Any] | None:
        """Publish or dead-letter one row, counting it; returns the dead letter, if any.

        ``seen`` holds the source keys met so far in this run (or pushed batch):
        a key met again is a duplicate, whether its first row was published or not.
        """
        tally.read += 1
        key = row.values.get(key_column, "").strip()
        problems = list(row.problems)
        # A row the source could not parse at all has no values: its own problem says it all.
        if row.values or not problems:
            if not key:
                problems.append(
                    (key_column, "key.missing", f"the key column {key_column!r} is empty")
                )
            elif key in seen:
                problems.append(
                    (key_column, "key.duplicate", f"key {key!r} appears earlier in this source")
                )
            else:
                seen.add(key)
            # Map even a row already known to be bad, so the clerk sees every problem at once;
            # undecodable bytes are mapped as U+FFFD (the row is rejected for them anyway).
            values = row.values
            if any(code == "encoding.invalid_bytes" for _, code, _ in problems):
                values = {k: _replace_undecodable(v) for k, v in values.items()}
            result = self.prepare(values, key)
            if isinstance(result, Prepared):
                if not problems:
                    self.publish(result)
                    tally.published += 1
                    return None
            else:
                problems += result
        tally.rejected += 1
        for _, code, _ in problems:
            tally.reasons[code] = tally.reasons.get(code, 0) + 1
        return self.dead_letter(row, key, problems)

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until Kafka acknowledged every pending send; raise BrokerError otherwise."""
        if not self.pending:
            return
        self.kafka.settle(self.pending, timeout=timeout)
        self.pending.clear()
