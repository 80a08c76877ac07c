"""The registry builder: consume the standard topics into the SQL registry, and link.

Each record's signature (the department's Ed25519 signature) is verified before
the record is decoded; a record that fails either goes to ``dlq.registry`` with
its reason and never enters the registry. A poll's records are applied in one
database transaction (``exchange.registry.records``: upsert, version history,
tombstones) together with their linkage (``exchange.registry.entities``), and the
consumer's offsets are committed only after that transaction commits.

Signatures are checked in chunks of up to ``VERIFY_CHUNK`` records. With
``verify_processes`` above 0 (the ``registry.verify_processes`` setting), worker
processes check them while the builder decodes and applies, in the same
transaction, the chunks already verified: verifying then costs the builder's
process next to nothing (an Ed25519 check is the largest cost of a record after
its linkage; see the registry build throughput in docs/benchmarks.md).

A crash between the transaction and the offset commit replays records that the
offset and content-hash checks then ignore, so a builder killed at any point and
restarted converges to the registry an uninterrupted run builds. If the
transaction fails, the consumer is rewound to the poll's first records; if it
fails again record by record, the failing record is dead-lettered.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction, utcnow
from exchange.core.errors import (
    BrokerError,
    DatabaseError,
    ExchangeError,
    ProvenanceMismatchError,
    UnverifiedRecordError,
)
from exchange.kafka.clients import consumer, ensure_topics
from exchange.kafka.producer import Delivery, Producer
from exchange.kafka.wire import AvroSerde
from exchange.registry import modelstore
from exchange.registry import records as registry
from exchange.registry.entities import EntityResolver
from exchange.registry.records import Incoming
from exchange.security import provenance
from exchange.security.blindindex import blind_index
from exchange.security.keystore import KeyStore
from schemas import SchemaStore
from schemas.standards import available, load_standard, standard_from_schema

log = logging.getLogger(__name__)

TOPIC_PATTERN = r"^std\..*"
DLQ_TOPIC = "dlq.registry"
GROUP_ID = "registry-builder"
KEY_REFRESH_S = 5.0  # how often an unknown signing key id makes the builder re-read the catalogue


MAX_POLL_RECORDS = 5000
VERIFY_CHUNK = 1000  # records whose signatures are checked (and then applied) together
_PLAIN = frozenset({str, int, float, bool, type(None)})  # decoded Avro values JSON keeps as is

# What checking one record's signature needs: its headers, its value (b"" for a
# tombstone) and its department's public keys by key id.
Check = tuple[dict[str, bytes], bytes, dict[str, bytes]]
Refusals = Callable[[], list[str | None]]  # a chunk's dead-letter reasons (None: verified)


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

    def add(self, other: BuildStats) -> None:
        self.applied += other.applied
        self.withdrawn += other.withdrawn
        self.unchanged += other.unchanged
        self.dead_lettered += other.dead_lettered
        self.linked += other.linked


def _json_value(value: Any) -> Any:
    """A decoded Avro value as JSON: dates in ISO 8601, ciphertext bytes in base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _text(headers: dict[str, bytes], name: str) -> str:
    """A header as text ("" if absent)."""
    value = headers.get(name)
    return "" if value is None else value.decode("utf-8", "replace")


def exit_with_parent(parent: int, interval_s: float = 1.0) -> None:
    """In a verification process: exit as soon as the builder that started it is gone.

    A builder killed outright (SIGKILL, the OOM killer) cannot shut its pool down,
    and a pool worker waiting for work would wait for ever; this thread ends it.
    """

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _chunk_bounds(count: int) -> list[tuple[int, int]]:
    """Chunks of a poll's records: small at first, so the builder soon has records to
    apply while the rest are verified, then VERIFY_CHUNK."""
    bounds: list[tuple[int, int]] = []
    start, size = 0, VERIFY_CHUNK // 4
    while start < count:
        bounds.append((start, min(start + size, count)))
        start, size = start + size, min(size * 2, VERIFY_CHUNK)
    return bounds


def verify_all(checks: list[Check]) -> list[str | None]:
    """Verify each record's signature: None if it verifies, else why not (its dead-letter
    reason). At module level, so that a worker process can run it."""
    refusals: list[str | None] = []
    for named, value, keys in checks:
        try:
            provenance.verify_record(named, value, keys)
            refusals.append(None)
        except ExchangeError as exc:
            refusals.append(f"{exc.code}: {exc.message}")
    return refusals


class _Verifier:
    """Checks signatures chunk by chunk (see _chunk_bounds): in the builder's own process, or,
    with ``processes`` above 0, in that many worker processes, which verify the next chunks
    of a poll while the builder decodes and applies the ones already verified."""

    def __init__(self, processes: int) -> None:
        if processes < 0:
            raise ValueError(f"verify processes must be 0 or more, got {processes}")
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the builder runs Kafka clients' threads that a fork would copy
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def start(self, checks: list[Check]) -> list[tuple[int, int, Refusals]]:
        """The chunks of ``checks`` as ``(start, end, refusals)``, in order; ``refusals()``
        gives that chunk's (waiting for its worker if need be)."""
        bounds = _chunk_bounds(len(checks))
        if not self.processes:
            return [(a, b, functools.partial(verify_all, checks[a:b])) for a, b in bounds]
        pool = self._executor()
        return [
            (
                a,
                b,
                functools.partial(self._result, pool.submit(verify_all, checks[a:b]), checks[a:b]),
            )
            for a, b in bounds
        ]

    def _result(self, future: Future[list[str | None]], chunk: list[Check]) -> list[str | None]:
        try:
            return future.result()
        except BrokenProcessPool:  # a worker died: verify here, start new workers next time
            log.warning("a signature verification process died; verifying in the builder")
            self.close()
            return verify_all(chunk)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


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
        verify_processes: int = 0,
    ) -> None:
        """``verify_processes``: worker processes that verify signatures while the builder
        applies (the ``registry.verify_processes`` setting); 0 verifies in this process."""
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
        self._identifier_fields = functools.cache(self._identifier_fields_uncached)
        self._key_cache: dict[str, dict[str, bytes]] = {}
        self._key_read_at: dict[str, float] = {}
        # Linked with the active models; a `model use` is seen at the next transaction.
        self.resolver = EntityResolver()
        self._model_versions: dict[str, int] | None = None
        self._verifier = _Verifier(verify_processes)

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
        checked: list[Any] = []  # messages whose signature is checked, in poll order
        checks: list[Check] = []
        dead: list[tuple[Any, str]] = []
        count = 0
        for tp, messages in batches.items():
            first[tp] = messages[0].offset
            offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
            count += len(messages)
            for msg in messages:
                try:
                    checks.append(self._check(msg))
                    checked.append(msg)
                except ExchangeError as exc:
                    dead.append((msg, f"{exc.code}: {exc.message}"))
                except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                    dead.append((msg, f"malformed_record: {exc.__class__.__name__}: {exc}"))
        messages_at: dict[tuple[str, int, int], Any] = {}
        try:
            if checked:
                chunks = self._verifier.start(checks)
                parts = self._verified(checked, checks, chunks, dead, messages_at)
                self._apply_all(parts, dead, messages_at)
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

    def _verified(
        self,
        checked: list[Any],
        checks: list[Check],
        chunks: list[tuple[int, int, Refusals]],
        dead: list[tuple[Any, str]],
        messages_at: dict[tuple[str, int, int], Any],
    ) -> Iterator[list[Incoming]]:
        """The checked messages, chunk by chunk as their signatures are verified: each
        verified one decoded; the others (and the unreadable) added to ``dead``."""
        for start, end, refusals in chunks:
            part: list[Incoming] = []
            for msg, check, refusal in zip(
                checked[start:end], checks[start:end], refusals(), strict=True
            ):
                if refusal is not None:
                    dead.append((msg, refusal))
                    continue
                try:
                    part.append(self._decode(msg, check[0]))
                    messages_at[(msg.topic, msg.partition, msg.offset)] = msg
                except ExchangeError as exc:
                    dead.append((msg, f"{exc.code}: {exc.message}"))
                except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                    dead.append((msg, f"malformed_record: {exc.__class__.__name__}: {exc}"))
            yield part

    def _apply_all(
        self,
        parts: Iterator[list[Incoming]],
        dead: list[tuple[Any, str]],
        messages_at: dict[tuple[str, int, int], Any],
    ) -> None:
        """Apply the records and their linkage in one transaction, or one by one if that fails.

        The parts are applied as they come (while the next part's signatures are checked);
        nothing is committed before every part was verified and applied.
        """
        items: list[Incoming] = []
        stats = BuildStats()
        try:
            with transaction(self.sessions) as session:
                for part in parts:
                    items.extend(part)
                    if part:
                        self._apply_items(session, part, stats)
            self.stats.add(stats)
            return
        except DatabaseError as exc:
            items.extend(item for part in parts for item in part)  # the rest, verified
            if len(items) == 1:
                raise
            log.warning("batch of %d failed (%s); applying one by one", len(items), exc)
        for item in items:
            stats = BuildStats()
            try:
                with transaction(self.sessions) as session:
                    self._apply_items(session, [item], stats)
                self.stats.add(stats)
            except DatabaseError as exc:
                if not isinstance(exc.__cause__, (DataError, IntegrityError)):
                    raise  # the database is unwell, not the record: retry the poll later
                message = messages_at.get((item.topic, item.partition, item.offset))
                if message is None:
                    raise
                dead.append((message, f"database_refused: {exc.__cause__.__class__.__name__}"))

    def _apply_items(self, session: Session, items: list[Incoming], stats: BuildStats) -> None:
        versions = modelstore.active_versions(session)  # one small read a transaction
        if versions != self._model_versions:
            self.resolver = EntityResolver(modelstore.active_models(session))
            self._model_versions = versions
        applied = registry.apply(session, items)
        stats.linked += self.resolver.link(session, applied.changed)
        stats.applied += applied.applied
        stats.withdrawn += applied.withdrawn
        stats.unchanged += applied.unchanged

    def _check(self, msg: Any) -> Check:
        """What verifying a message's signature needs, or ExchangeError saying why it cannot
        be verified at all."""
        # One dict of the headers for everything: the registry keeps exactly what was signed.
        named = provenance.headers_dict(msg.headers)
        department = _text(named, provenance.DEPARTMENT)
        source_id = _text(named, provenance.SOURCE_ID)
        content_hash = _text(named, provenance.CONTENT_HASH)
        dataset = _text(named, provenance.DATASET)
        if not department or not source_id or not content_hash or not dataset:
            raise UnverifiedRecordError(
                "record is unsigned or lacks provenance headers "
                "(department, dataset, source-id, content-hash)"
            )
        keys = self._public_keys(department)
        if _text(named, provenance.SIGNING_KEY_ID) not in keys:
            keys = self._public_keys(department, refresh=True)  # a key rotated since
        if msg.value is None and content_hash != provenance.WITHDRAWN:
            raise ProvenanceMismatchError(
                f"a withdrawal must carry content-hash {provenance.WITHDRAWN!r}"
            )
        return named, msg.value or b"", keys

    def _decode(self, msg: Any, named: dict[str, bytes]) -> Incoming:
        """Decode a verified message (``named``: its headers), or raise ExchangeError
        saying why it cannot enter."""
        department = _text(named, provenance.DEPARTMENT)
        source_id = _text(named, provenance.SOURCE_ID)
        content_hash = _text(named, provenance.CONTENT_HASH)
        header_dataset = _text(named, provenance.DATASET)
        ingest = _text(named, provenance.INGEST_TIME)
        ingested_at = datetime.fromisoformat(ingest) if ingest else utcnow()
        if msg.value is None:  # a tombstone: the department withdraws the record
            if not msg.topic.startswith(f"std.{header_dataset}.v"):
                raise ProvenanceMismatchError(
                    f"dataset {header_dataset!r} does not belong on {msg.topic}"
                )
            return Incoming(
                header_dataset, department, source_id, content_hash, None, None, None,
                msg.topic, msg.partition, msg.offset, ingested_at,
            )  # fmt: skip
        schema_id, record = self.serde.decode(msg.value)
        dataset, id_field, domain = self._identifier_fields(schema_id)
        if dataset != header_dataset:
            raise ProvenanceMismatchError(
                f"header dataset {header_dataset!r} does not match the schema's {dataset!r}"
            )
        lookup = record.get(id_field) if id_field else None
        if lookup is not None and domain is not None:
            lookup = blind_index(self.linkage_key, domain, str(lookup))
        payload = {k: v if v.__class__ in _PLAIN else _json_value(v) for k, v in record.items()}
        return Incoming(
            dataset, department, source_id, content_hash, schema_id, payload,
            None if lookup is None else str(lookup),
            msg.topic, msg.partition, msg.offset, ingested_at,
        )  # fmt: skip

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
        """Consume until caught up: nothing arrived for ``idle_s`` and, on every partition
        assigned, the position is at the end (for tests, the demo and ``--until-idle``).

        Idle alone is not enough: after a builder was killed, its successor waits for the
        dead member's session to expire before it gets partitions, and reads nothing.
        """
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.poll_once(500):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= idle_s and self.caught_up():
                break
        return self.stats

    def caught_up(self) -> bool:
        """Partitions are assigned and the position of each is at its end offset."""
        try:
            assigned = self._consumer.assignment()
            if not assigned:
                return False
            ends = self._consumer.end_offsets(list(assigned))
            return all(self._consumer.position(tp) >= ends[tp] for tp in assigned)
        except KafkaError as exc:
            log.warning("cannot tell whether the builder is caught up: %s", exc)
            return False

    def close(self) -> None:
        self._verifier.close()
        self._consumer.close()
        self._dlq.close(timeout=10)
