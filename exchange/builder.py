"""The registry builder: consume the standard topics into the SQL registry, and link.

Each poll's records are verified (the department's Ed25519 signature) and
decoded first; a record that fails goes to ``dlq.registry`` with its reason and
never enters the registry. The rest are applied in one database transaction
(``exchange.registry``: upsert, version history, tombstones) together with
their linkage (``exchange.entities``), and the consumer's offsets are committed
only after that transaction commits. A crash between the two replays records
that the offset and content-hash checks then ignore, so a builder killed at any
point and restarted converges to the registry an uninterrupted run builds.
If the transaction fails, the consumer is rewound to the poll's first records;
if it fails again record by record, the failing record is dead-lettered.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from kafka import OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange import provenance, registry
from exchange.blindindex import blind_index
from exchange.clients import consumer, ensure_topics
from exchange.db import DatabaseError, transaction, utcnow
from exchange.entities import EntityResolver
from exchange.errors import BrokerError, ExchangeError
from exchange.keystore import KeyStore
from exchange.producer import Delivery, Producer
from exchange.registry import Incoming
from exchange.wire import AvroSerde
from schemas import SchemaStore
from schemas.standards import available, load_standard, standard_from_schema

log = logging.getLogger(__name__)

TOPIC_PATTERN = r"^std\..*"
DLQ_TOPIC = "dlq.registry"
GROUP_ID = "registry-builder"
KEY_REFRESH_S = 5.0  # how often an unknown signing key id makes the builder re-read the catalogue


MAX_POLL_RECORDS = 5000


@dataclass
class BuildStats:
    applied: int = 0
    withdrawn: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    linked: int = 0  # records whose linkage was (re)computed

    @property
    def seen(self) -> int:
        return self.applied + self.withdrawn + self.unchanged + self.dead_lettered


def _json_value(value: Any) -> Any:
    """A decoded Avro value as JSON: dates in ISO 8601, ciphertext bytes in base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _header(headers: list[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or []:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


class RegistryBuilder:
    """Consumes ``std.*`` topics into ``source_records``."""

    def __init__(
        self,
        bootstrap: str,
        sessions: sessionmaker[Session],
        *,
        linkage_key: bytes,
        keystore: KeyStore,
        group_id: str = GROUP_ID,
    ) -> None:
        self.bootstrap = bootstrap
        self.sessions = sessions
        self.linkage_key = linkage_key
        self.keystore = keystore
        self.store = SchemaStore(sessions)
        self.serde = AvroSerde(self.store.schema_text)
        self.stats = BuildStats()
        # The shipped standards' topics exist before the group first joins, so the first
        # assignment covers them; topics made later are found by the pattern's metadata refresh.
        ensure_topics(bootstrap, [DLQ_TOPIC, *(load_standard(n).topic for n in available())])
        self._consumer = consumer(
            bootstrap, group_id, pattern=TOPIC_PATTERN, metadata_max_age_ms=3000
        )
        self._dlq = Producer(bootstrap)
        self._identifier_fields = cache(self._identifier_fields_uncached)
        self._key_cache: dict[str, dict[str, bytes]] = {}
        self._key_read_at: dict[str, float] = {}
        self.resolver = EntityResolver()

    def _identifier_fields_uncached(self, schema_id: int) -> tuple[str, str, str | None]:
        """(dataset, linkage field, blind index domain or None if the field is an index)."""
        standard = standard_from_schema(json.loads(self.store.schema_text(schema_id)))
        for spec in standard.fields:
            if spec.blind_index_of:
                return standard.dataset, spec.name, None
        for spec in standard.identifier_fields:
            if not spec.encrypted:
                return standard.dataset, spec.name, standard.blind_index_domain(spec)
        return standard.dataset, "", None

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Apply one poll's records; returns how many records were seen."""
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=MAX_POLL_RECORDS)
        except KafkaError as exc:
            raise BrokerError(f"registry builder cannot poll Kafka: {exc}") from exc
        if not batches:
            return 0
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        first: dict[TopicPartition, int] = {}
        items: list[Incoming] = []
        messages_at: dict[tuple[str, int, int], Any] = {}
        dead: list[tuple[Any, str]] = []
        count = 0
        for tp, messages in batches.items():
            first[tp] = messages[0].offset
            offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
            for msg in messages:
                count += 1
                try:
                    items.append(self._parse(msg))
                    messages_at[(msg.topic, msg.partition, msg.offset)] = msg
                except ExchangeError as exc:
                    dead.append((msg, f"{exc.code}: {exc.message}"))
                except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                    dead.append((msg, f"malformed_record: {exc.__class__.__name__}: {exc}"))
        try:
            self._apply_all(items, dead, messages_at)
            if dead:
                deliveries = [self._dead_letter(msg, reason) for msg, reason in dead]
                try:
                    self._dlq.settle(deliveries, timeout=60)
                except BrokerError as exc:
                    raise BrokerError(f"cannot dead-letter to {DLQ_TOPIC}: {exc.message}") from exc
        except BaseException:
            # Nothing of this poll is committed: read it again next time, nothing is lost.
            for tp, offset in first.items():
                self._consumer.seek(tp, offset)
            raise
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:  # the records are applied; a replay will find them unchanged
            log.warning("offset commit failed, records will be replayed idempotently: %s", exc)
        return count

    def _apply_all(
        self,
        items: list[Incoming],
        dead: list[tuple[Any, str]],
        messages_at: dict[tuple[str, int, int], Any],
    ) -> None:
        """Apply ``items`` and their linkage in one transaction, or one by one if that fails."""
        if not items:
            return
        try:
            with transaction(self.sessions) as session:
                self._apply_items(session, items)
            return
        except DatabaseError as exc:
            if len(items) == 1:
                raise
            log.warning("batch of %d failed (%s); applying one by one", len(items), exc)
        for item in items:
            try:
                with transaction(self.sessions) as session:
                    self._apply_items(session, [item])
            except DatabaseError as exc:
                if not isinstance(exc.__cause__, (DataError, IntegrityError)):
                    raise  # the database is unwell, not the record: retry the poll later
                message = messages_at.get((item.topic, item.partition, item.offset))
                if message is None:
                    raise
                dead.append((message, f"database_refused: {exc.__cause__.__class__.__name__}"))

    def _apply_items(self, session: Session, items: list[Incoming]) -> None:
        applied = registry.apply(session, items)
        linked = self.resolver.link(session, applied.changed)
        self.stats.applied += applied.applied
        self.stats.withdrawn += applied.withdrawn
        self.stats.unchanged += applied.unchanged
        self.stats.linked += linked

    def _parse(self, msg: Any) -> Incoming:
        """Verify and decode one message, or raise ExchangeError saying why it cannot enter."""
        headers = msg.headers
        department = _header(headers, provenance.DEPARTMENT)
        source_id = _header(headers, provenance.SOURCE_ID)
        content_hash = _header(headers, provenance.CONTENT_HASH)
        header_dataset = _header(headers, provenance.DATASET)
        if not department or not source_id or not content_hash or not header_dataset:
            raise provenance.UnverifiedRecordError(
                "record is unsigned or lacks provenance headers "
                "(department, dataset, source-id, content-hash)"
            )
        # A record enters the registry only if its department signed exactly these bytes.
        named = provenance.headers_dict(headers)
        keys = self._public_keys(department)
        if named.get(provenance.SIGNING_KEY_ID, b"").decode("utf-8", "replace") not in keys:
            keys = self._public_keys(department, refresh=True)  # a key rotated since
        ingest = _header(headers, provenance.INGEST_TIME)
        ingested_at = datetime.fromisoformat(ingest) if ingest else utcnow()
        if msg.value is None:  # a tombstone: the department withdraws the record
            if content_hash != provenance.WITHDRAWN:
                raise ExchangeError(
                    f"a withdrawal must carry content-hash {provenance.WITHDRAWN!r}"
                )
            provenance.verify_record(named, b"", keys)
            if not msg.topic.startswith(f"std.{header_dataset}.v"):
                raise ExchangeError(f"dataset {header_dataset!r} does not belong on {msg.topic}")
            incoming = Incoming(
                header_dataset, department, source_id, content_hash, None, None, None,
                msg.topic, msg.partition, msg.offset, ingested_at,
            )  # fmt: skip
        else:
            provenance.verify_record(named, msg.value, keys)
            schema_id, record = self.serde.decode(msg.value)
            dataset, id_field, domain = self._identifier_fields(schema_id)
            if dataset != header_dataset:
                raise ExchangeError(
                    f"header dataset {header_dataset!r} does not match the schema's {dataset!r}"
                )
            lookup = record.get(id_field) if id_field else None
            if lookup is not None and domain is not None:
                lookup = blind_index(self.linkage_key, domain, str(lookup))
            payload = {k: _json_value(v) for k, v in record.items()}
            incoming = Incoming(
                dataset, department, source_id, content_hash, schema_id, payload,
                None if lookup is None else str(lookup),
                msg.topic, msg.partition, msg.offset, ingested_at,
            )  # fmt: skip
        return incoming

    def _public_keys(self, department: str, *, refresh: bool = False) -> dict[str, bytes]:
        """The department's public keys, cached; re-read at most every few seconds."""
        keys = self._key_cache.get(department)
        now = time.monotonic()
        stale = refresh and now - self._key_read_at.get(department, 0.0) > KEY_REFRESH_S
        if keys is None or stale:
            keys = self._key_cache[department] = self.keystore.public_keys(department)
            self._key_read_at[department] = now
        return keys

    def _dead_letter(self, msg: Any, reason: str) -> Delivery:
        entry = {
            "topic": msg.topic,
            "partition": msg.partition,
            "offset": msg.offset,
            "reason": reason,
            "value_hex": (msg.value or b"")[:4096].hex(),
            "at": datetime.now(UTC).isoformat(),
        }
        log.warning("dead-lettering %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        self.stats.dead_lettered += 1
        return self._dlq.send(DLQ_TOPIC, json.dumps(entry).encode(), key=msg.key)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set."""
        while not stop.is_set():
            self.poll_once(500)

    def run_until_idle(self, idle_s: float = 3.0, timeout_s: float = 120.0) -> BuildStats:
        """Consume until nothing arrives for ``idle_s`` (for tests and the demo)."""
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.poll_once(500):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= idle_s:
                break
        return self.stats

    def close(self) -> None:
        self._consumer.close()
        self._dlq.close(timeout=10)
