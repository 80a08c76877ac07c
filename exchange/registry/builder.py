"""The registry builder: consume the standard topics into the SQL registry, and link.

A record enters the registry only once its department's signature is verified.
Connectors publish signed batches (``exchange.security.manifest``): each batch in
one Kafka transaction, its records carrying the header ``batch``, followed on
each partition by a manifest listing their digests, signed once. The builder
(librdkafka's consumer, ``read_committed``) holds a batch's records, per
partition, until the batch's manifest arrives; it verifies the manifest once and
accepts each record whose digest the manifest lists. A record the manifest does
not list (altered after signing), the records of a batch whose manifest does not
verify, and those whose manifest has not followed within ``manifest_window``
offsets of their partition go to ``dlq.registry`` with their reason, as does a
record neither signed nor in a batch; each is also kept in ``registry_rejections``
(:mod:`exchange.registry.rejections`), for the sharing indicators. The decision
depends only on what the partition holds, so a replay or a rebuild decides the
same. Records published before signed batches carry their own Ed25519
signature and are verified one by one, as before (in ``verify_processes``
worker processes, chunk by chunk, while the builder applies the chunks already
verified), so older topics rebuild.

A poll's accepted records are applied in one database transaction
(``exchange.registry.records``: upsert, version history, tombstones) together
with their linkage (``exchange.registry.entities``). The consumer's offsets are
committed only after that transaction commits, and never past a record still
waiting for its manifest: after a restart it is read again, with its batch.

A crash between the transaction and the offset commit replays records that the
offset and content-hash checks then ignore, so a builder killed at any point and
restarted converges to the registry an uninterrupted run builds. If the
transaction fails, the consumer is rewound to the poll's first records (or the
first record still waiting); if it fails again record by record, the failing
record is dead-lettered.

Several builders may share the partitions in one consumer group: a manifest lives
in the partition of the records it covers, so each builder verifies the batches
of its own partitions and needs nothing from the others.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from confluent_kafka import KafkaException, Message, TopicPartition
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import concurrent_conflict, transaction, utcnow
from exchange.core.errors import (
    BrokerError,
    DatabaseError,
    ExchangeError,
    ProvenanceMismatchError,
    UncoveredRecordError,
    UnverifiedRecordError,
)
from exchange.kafka.clients import ensure_topics, fast_consumer
from exchange.kafka.producer import Delivery, Producer
from exchange.kafka.wire import AvroSerde
from exchange.registry import modelstore, rejections
from exchange.registry import records as registry
from exchange.registry.entities import EntityResolver
from exchange.registry.records import Incoming
from exchange.security import manifest, provenance
from exchange.security.blindindex import blind_index
from exchange.security.keystore import KeyStore
from exchange.security.manifest import Manifest
from schemas import SchemaStore
from schemas.standards import available, load_standard, standard_from_schema

log = logging.getLogger(__name__)

TOPIC_PATTERN = r"^std\..*"
DLQ_TOPIC = "dlq.registry"
GROUP_ID = "registry-builder"
KEY_REFRESH_S = 5.0  # how often an unknown signing key id makes the builder re-read the catalogue


MAX_POLL_RECORDS = 5000
CONFLICT_RETRIES = 5  # a batch that lost a deadlock to another builder is applied again
# How many offsets of its partition a record of a signed batch waits for the batch's manifest
# (the ``registry.manifest_window`` setting): a connector's batch is at most 5,000 records,
# and other departments' transactions may interleave with it.
MANIFEST_WINDOW = 100_000
Partition = tuple[str, int]  # (topic, partition)
VERIFY_CHUNK = 1000  # records whose signatures are checked (and then applied) together

# What checking one record's signature needs: its headers, its value (b"" for a
# tombstone) and its department's public keys by key id.
Check = tuple[dict[str, bytes], bytes, dict[str, bytes]]
Refusals = Callable[[], list[str | None]]  # a chunk's dead-letter reasons (None: verified)


@dataclass(slots=True)
class Read:
    """A message as the builder reads it: where it is, its key, value and headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    named: dict[str, bytes]  # the headers by name

    @classmethod
    def of(cls, msg: Message) -> Read:
        headers = cast(list[tuple[str, bytes]] | None, msg.headers())
        return cls(
            cast(str, msg.topic()),
            cast(int, msg.partition()),
            cast(int, msg.offset()),
            msg.key(),
            msg.value(),
            provenance.headers_dict(headers),
        )


@dataclass
class BuildStats:
    applied: int = 0
    withdrawn: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    linked: int = 0  # records whose linkage was (re)computed
    manifests: int = 0  # batch manifests verified (not records: not in ``seen``)
    dead_reasons: dict[str, int] = field(default_factory=dict)  # dead-lettered by reason code

    @property
    def seen(self) -> int:
        return self.applied + self.withdrawn + self.unchanged + self.dead_lettered

    def add(self, other: BuildStats) -> None:
        self.applied += other.applied
        self.withdrawn += other.withdrawn
        self.unchanged += other.unchanged
        self.dead_lettered += other.dead_lettered
        self.linked += other.linked
        self.manifests += other.manifests
        for code, count in other.dead_reasons.items():
            self.dead_reasons[code] = self.dead_reasons.get(code, 0) + count


def _text(headers: dict[str, bytes], name: str) -> str:
    """A header as text ("" if absent)."""
    value = headers.get(name)
    return "" if value is None else value.decode("utf-8", "replace")


def _aware(value: datetime) -> datetime:
    """A source change time as a UTC timestamp; ValueError (a malformed record) if it
    names no time zone (connectors send UTC)."""
    if value.tzinfo is None:
        raise ValueError("source_changed_at names no time zone")
    return value.astimezone(UTC)


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
        manifest_window: int = MANIFEST_WINDOW,
    ) -> None:
        """``verify_processes``: worker processes that verify per-record signatures (records
        published before signed batches) while the builder applies the records already
        verified (the ``registry.verify_processes`` setting); 0 verifies in this process.
        ``manifest_window``: how many offsets of its partition a record of a signed batch
        waits for its batch's manifest before it is dead-lettered (``registry.manifest_window``).
        """
        if manifest_window < 1:
            raise ValueError(f"manifest window must be at least 1, got {manifest_window}")
        self.bootstrap = bootstrap
        self.sessions = sessions
        self.linkage_key = linkage_key
        self.keystore = keystore
        self.manifest_window = manifest_window
        self.store = SchemaStore(sessions)
        self.serde = AvroSerde(self.store.schema_text)
        self.stats = BuildStats()
        # The shipped standards' topics exist before the group first joins, so the first
        # assignment covers them; topics made later are found by the pattern's metadata refresh.
        ensure_topics(bootstrap, [DLQ_TOPIC, *(load_standard(n).topic for n in available())])
        # Records of signed batches waiting for their manifest: by partition, then batch id.
        self._pending: dict[Partition, dict[str, list[Read]]] = {}
        self._next: dict[Partition, int] = {}  # the offset after the last one read, by partition
        self._consumer = fast_consumer(
            bootstrap, group_id, pattern=TOPIC_PATTERN, on_revoke=self._revoked
        )
        self._dlq = Producer(bootstrap)
        self._identifier_fields = functools.cache(self._identifier_fields_uncached)
        self._key_cache: dict[str, dict[str, bytes]] = {}
        self._key_read_at: dict[str, float] = {}
        # Linked with the active models; a `model use` is seen at the next transaction.
        self.resolver = EntityResolver()
        self._model_versions: dict[str, int] | None = None
        self._verifier = _Verifier(verify_processes)
        # Told after every poll (how many messages it read, the partitions they came from):
        # exchange.registry.metrics counts and logs each batch there, off the hot loop.
        self.on_poll: Callable[[int, list[Partition]], None] | None = None

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

    def _revoked(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        """Partitions taken away in a rebalance: forget what waits on them. Nothing past
        a waiting record was committed, so the partition's next owner reads it again."""
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._pending.pop(key, None)
            self._next.pop(key, None)

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Apply one poll's records; returns how many messages were read."""
        try:
            messages = self._consumer.consume(MAX_POLL_RECORDS, timeout_ms / 1000)
        except KafkaException as exc:
            raise BrokerError(f"registry builder cannot poll Kafka: {exc}") from exc
        polled = [Read.of(m) for m in messages if self._usable(m)]
        if not polled:
            if self.on_poll is not None:
                self.on_poll(0, [])
            return 0
        # Where to read again if this poll fails: its first message on each partition, or an
        # earlier record still waiting for its manifest there.
        rewind: dict[Partition, int] = {}
        for msg in polled:
            rewind.setdefault((msg.topic, msg.partition), msg.offset)
        for tp in rewind:
            rewind[tp] = min([rewind[tp], *self._waiting_from(tp)])
        accepted: list[tuple[Read, dict[str, bytes]]] = []  # covered by a valid manifest
        checked: list[Read] = []  # signed one by one, in poll order
        checks: list[Check] = []
        dead: list[tuple[Read, str]] = []
        messages_at: dict[tuple[str, int, int], Read] = {}
        try:
            for msg in polled:
                tp = (msg.topic, msg.partition)
                self._next[tp] = msg.offset + 1
                if tp in self._pending:  # decided by offsets alone, not by where a poll ended
                    self._expire(tp, msg.offset, dead)
                named = msg.named
                if manifest.MANIFEST in named:
                    self._settle_batch(tp, msg, named, accepted, dead)
                elif provenance.SIGNATURE in named:
                    try:
                        checks.append(self._check(msg, named))
                        checked.append(msg)
                    except ExchangeError as exc:
                        dead.append((msg, f"{exc.code}: {exc.message}"))
                    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
                        dead.append((msg, f"malformed_record: {exc.__class__.__name__}: {exc}"))
                elif manifest.BATCH in named:
                    batch = named[manifest.BATCH].decode("utf-8", "replace")
                    self._pending.setdefault(tp, {}).setdefault(batch, []).append(msg)
                else:
                    dead.append(
                        (msg, "unverified_record: record is neither signed nor in a signed batch")
                    )
            parts = self._covered(accepted, dead, messages_at)
            if checked:
                chunks = self._verifier.start(checks)
                parts = itertools.chain(
                    parts, self._verified(checked, checks, chunks, dead, messages_at)
                )
            self._apply_all(parts, dead, messages_at)
            if dead:
                deliveries = [self._dead_letter(msg, reason) for msg, reason in dead]
                try:
                    self._dlq.settle(deliveries, timeout=60)
                except BrokerError as exc:
                    raise BrokerError(f"cannot dead-letter to {DLQ_TOPIC}: {exc.message}") from exc
                self._record_rejections(dead)
        except BaseException:
            # Nothing of this poll is committed: read it again next time, nothing is lost.
            for (topic, partition), offset in rewind.items():
                self._pending.pop((topic, partition), None)
                self._next.pop((topic, partition), None)
                try:
                    self._consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:  # revoked meanwhile: its next owner reads it
                    log.warning("cannot rewind %s[%d]: %s", topic, partition, exc)
            raise
        self._commit()
        if self.on_poll is not None:
            self.on_poll(len(polled), list(rewind))
        return len(polled)

    def _usable(self, msg: Message) -> bool:
        """A message to process (not an error event); raise BrokerError on a fatal error."""
        error = msg.error()
        if error is None:
            return True
        if error.fatal():
            raise BrokerError(f"registry builder cannot consume from Kafka: {error.str()}")
        log.warning("kafka: %s", error.str())
        return False

    def _waiting_from(self, tp: Partition) -> list[int]:
        """The first offset of each batch still waiting for its manifest on ``tp``."""
        return [batch[0].offset for batch in self._pending.get(tp, {}).values()]

    def _commit(self) -> None:
        """Commit, on each partition read, the offset after the last message read, or the first
        record still waiting for its manifest (read again after a restart)."""
        offsets = [
            TopicPartition(topic, partition, min([end, *self._waiting_from((topic, partition))]))
            for (topic, partition), end in self._next.items()
        ]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # the records are applied; a replay will find them unchanged
            log.warning("offset commit failed, records will be replayed idempotently: %s", exc)

    def _settle_batch(
        self,
        tp: Partition,
        msg: Read,
        named: dict[str, bytes],
        accepted: list[tuple[Read, dict[str, bytes]]],
        dead: list[tuple[Read, str]],
    ) -> None:
        """A manifest arrived: the records of its batch waiting on this partition are
        accepted if it verifies and lists them, dead-lettered otherwise."""
        batch = named.get(manifest.BATCH, b"").decode("utf-8", "replace")
        waiting = self._pending.get(tp, {}).pop(batch, [])
        try:
            found = self._manifest(msg, named, tp)
        except ExchangeError as exc:
            reason = f"{exc.code}: {exc.message} (batch manifest {batch!r})"
            dead.append((msg, reason))
            dead.extend((m, reason) for m in waiting)
            return
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            reason = f"malformed_record: batch manifest {batch!r}: {exc.__class__.__name__}: {exc}"
            dead.append((msg, reason))
            dead.extend((m, reason) for m in waiting)
            return
        self.stats.manifests += 1
        covered = found.covered()
        for record in waiting:
            rnamed = record.named
            digest = self._digest(record, rnamed, found)
            if digest is not None and covered[digest] > 0:
                covered[digest] -= 1
                accepted.append((record, rnamed))
            else:
                dead.append(
                    (
                        record,
                        f"{UncoveredRecordError.code}: record is not covered by the manifest "
                        f"of batch {batch!r} (altered after signing?)",
                    )
                )

    def _manifest(self, msg: Read, named: dict[str, bytes], tp: Partition) -> Manifest:
        """The manifest in ``msg``, verified; ExchangeError saying why it is not valid."""
        value = msg.value
        if not value:
            raise ProvenanceMismatchError("a batch manifest has no value")
        _, record = self.serde.decode(value)
        found = Manifest.from_record(record)
        if (found.topic, found.partition) != tp:
            raise ProvenanceMismatchError(
                f"the manifest is for {found.topic}[{found.partition}], found on {tp[0]}[{tp[1]}]"
            )
        if found.batch != named.get(manifest.BATCH, b"").decode("utf-8", "replace"):
            raise ProvenanceMismatchError("the manifest's batch does not match its header")
        if not tp[0].startswith(f"std.{found.dataset}.v"):
            raise ProvenanceMismatchError(f"dataset {found.dataset!r} does not belong on {tp[0]}")
        keys = self._public_keys(found.department)
        if found.signing_key_id not in keys:
            keys = self._public_keys(found.department, refresh=True)  # a key rotated since
        signature = named.get(provenance.SIGNATURE, b"")
        manifest.verify_manifest(found, signature, keys)
        return found

    @staticmethod
    def _digest(record: Read, named: dict[str, bytes], found: Manifest) -> bytes | None:
        """The record's digest, if its headers name the manifest's department and dataset."""
        if (
            _text(named, provenance.DEPARTMENT) != found.department
            or _text(named, provenance.DATASET) != found.dataset
        ):
            return None
        value = record.value
        content_hash = _text(named, provenance.CONTENT_HASH)
        if value is None and content_hash != provenance.WITHDRAWN:
            return None
        return manifest.record_digest(
            department=found.department,
            dataset=found.dataset,
            source_id=_text(named, provenance.SOURCE_ID),
            content_hash=content_hash,
            value=value or b"",
            source_changed_at=(
                _text(named, provenance.SOURCE_CHANGED_AT)
                if provenance.SOURCE_CHANGED_AT in named
                else None
            ),
        )

    def _expire(self, tp: Partition, offset: int, dead: list[tuple[Read, str]]) -> None:
        """Reading ``offset`` of ``tp``: dead-letter the batches waiting there whose first
        record is more than the window before it (their manifest did not follow in time)."""
        waiting = self._pending[tp]
        for batch in [
            b for b, msgs in waiting.items() if offset - msgs[0].offset > self.manifest_window
        ]:
            reason = (
                f"{UncoveredRecordError.code}: no manifest of batch {batch!r} followed within "
                f"{self.manifest_window} offsets of its partition"
            )
            dead.extend((m, reason) for m in waiting.pop(batch))
        if not waiting:
            del self._pending[tp]

    def _covered(
        self,
        accepted: list[tuple[Read, dict[str, bytes]]],
        dead: list[tuple[Read, str]],
        messages_at: dict[tuple[str, int, int], Read],
    ) -> Iterator[list[Incoming]]:
        """The records a valid manifest covered, decoded (the undecodable added to ``dead``)."""
        part: list[Incoming] = []
        # In each partition's order already: a batch's records wait in the order read, and
        # batches are accepted in the order of their manifests. Across partitions the order
        # does not matter (one record's messages share a key, so a partition).
        for msg, named in accepted:
            self._decode_into(part, msg, named, dead, messages_at)
        yield part

    def _decode_into(
        self,
        part: list[Incoming],
        msg: Read,
        named: dict[str, bytes],
        dead: list[tuple[Read, str]],
        messages_at: dict[tuple[str, int, int], Read],
    ) -> None:
        """Decode a verified message into ``part``, or add it to ``dead`` with the reason."""
        try:
            part.append(self._decode(msg, named))
            messages_at[(msg.topic, msg.partition, msg.offset)] = msg
        except ExchangeError as exc:
            dead.append((msg, f"{exc.code}: {exc.message}"))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            dead.append((msg, f"malformed_record: {exc.__class__.__name__}: {exc}"))

    def _verified(
        self,
        checked: list[Read],
        checks: list[Check],
        chunks: list[tuple[int, int, Refusals]],
        dead: list[tuple[Read, str]],
        messages_at: dict[tuple[str, int, int], Read],
    ) -> Iterator[list[Incoming]]:
        """The records signed one by one, chunk by chunk as their signatures are verified:
        each verified one decoded; the others (and the unreadable) added to ``dead``."""
        for start, end, refusals in chunks:
            part: list[Incoming] = []
            for msg, check, refusal in zip(
                checked[start:end], checks[start:end], refusals(), strict=True
            ):
                if refusal is not None:
                    dead.append((msg, refusal))
                else:
                    self._decode_into(part, msg, check[0], dead, messages_at)
            yield part

    def _apply_all(
        self,
        parts: Iterator[list[Incoming]],
        dead: list[tuple[Read, str]],
        messages_at: dict[tuple[str, int, int], Read],
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
            failure = exc
        # Another builder's transaction won a deadlock (several builders on PostgreSQL, see
        # exchange.registry.assignment): the same batch, applied again, goes through.
        for attempt in range(CONFLICT_RETRIES):
            if not concurrent_conflict(failure):
                break
            log.info("batch of %d lost to a concurrent builder; applying it again", len(items))
            time.sleep(0.05 * 2**attempt)
            stats = BuildStats()
            try:
                with transaction(self.sessions) as session:
                    self._apply_items(session, items, stats)
                self.stats.add(stats)
                return
            except DatabaseError as exc:
                failure = exc
        if len(items) == 1 or concurrent_conflict(failure):
            raise failure
        log.warning("batch of %d failed (%s); applying one by one", len(items), failure)
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

    def _check(self, msg: Read, named: dict[str, bytes]) -> Check:
        """What verifying a record's own signature needs (records published before signed
        batches), or ExchangeError saying why it cannot be verified at all."""
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
        value = msg.value
        if value is None and content_hash != provenance.WITHDRAWN:
            raise ProvenanceMismatchError(
                f"a withdrawal must carry content-hash {provenance.WITHDRAWN!r}"
            )
        return named, value or b"", keys

    def _decode(self, msg: Read, named: dict[str, bytes]) -> Incoming:
        """Decode a verified message (``named``: its headers), or raise ExchangeError
        saying why it cannot enter."""
        topic, partition, offset = msg.topic, msg.partition, msg.offset
        department = _text(named, provenance.DEPARTMENT)
        source_id = _text(named, provenance.SOURCE_ID)
        content_hash = _text(named, provenance.CONTENT_HASH)
        header_dataset = _text(named, provenance.DATASET)
        if not department or not source_id or not content_hash or not header_dataset:
            raise UnverifiedRecordError(
                "record lacks provenance headers (department, dataset, source-id, content-hash)"
            )
        ingest = _text(named, provenance.INGEST_TIME)
        ingested_at = datetime.fromisoformat(ingest) if ingest else utcnow()
        changed = _text(named, provenance.SOURCE_CHANGED_AT)  # signed with the record
        changed_at = _aware(datetime.fromisoformat(changed)) if changed else None
        value = msg.value
        if value is None:  # a tombstone: the department withdraws the record
            if content_hash != provenance.WITHDRAWN:
                raise ProvenanceMismatchError(
                    f"a withdrawal must carry content-hash {provenance.WITHDRAWN!r}"
                )
            if not topic.startswith(f"std.{header_dataset}.v"):
                raise ProvenanceMismatchError(
                    f"dataset {header_dataset!r} does not belong on {topic}"
                )
            return Incoming(
                header_dataset, department, source_id, content_hash, None, None, None,
                topic, partition, offset, ingested_at,
            )  # fmt: skip
        schema_id, payload = self.serde.decode_json(value)
        dataset, id_field, domain = self._identifier_fields(schema_id)
        if dataset != header_dataset:
            raise ProvenanceMismatchError(
                f"header dataset {header_dataset!r} does not match the schema's {dataset!r}"
            )
        lookup = payload.get(id_field) if id_field else None
        if lookup is not None and domain is not None:
            lookup = blind_index(self.linkage_key, domain, str(lookup))
        return Incoming(
            dataset, department, source_id, content_hash, schema_id, payload,
            None if lookup is None else str(lookup),
            topic, partition, offset, ingested_at, source_changed_at=changed_at,
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

    def _record_rejections(self, dead: list[tuple[Read, str]]) -> None:
        """Keep the poll's dead-lettered records (not manifests) in ``registry_rejections``,
        for the sharing indicators; before the offsets are committed, so a failure here
        replays the poll (and a replay records nothing twice)."""
        found = [
            rejections.Rejection(
                msg.topic,
                msg.partition,
                msg.offset,
                *rejections.claimed(msg.topic, msg.key, msg.named),
                reason,
            )
            for msg, reason in dead
            if manifest.MANIFEST not in msg.named
        ]
        if found:
            with transaction(self.sessions) as session:
                rejections.record(session, found, at=utcnow())

    def _dead_letter(self, msg: Read, reason: str) -> Delivery:
        value = msg.value
        entry = {
            "topic": msg.topic,
            "partition": msg.partition,
            "offset": msg.offset,
            "reason": reason,
            "value_hex": (value or b"")[:4096].hex(),
            "at": datetime.now(UTC).isoformat(),
        }
        log.warning("dead-lettering %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        self.stats.dead_lettered += 1
        code = reason.partition(":")[0]  # an error code, or malformed_record, database_refused
        self.stats.dead_reasons[code] = self.stats.dead_reasons.get(code, 0) + 1
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

    def positions(self) -> dict[Partition, int] | None:
        """The read position on every partition assigned (None if none is): the offset after
        the last message read, or, where nothing was read yet, the group's committed offset
        (-1 if none)."""
        try:
            assigned = self._consumer.assignment()
            if not assigned:
                return None
            found: dict[Partition, int] = {}
            unread = []
            for tp in self._consumer.position(assigned):
                if tp.offset >= 0:
                    found[(tp.topic, tp.partition)] = tp.offset
                else:
                    unread.append(TopicPartition(tp.topic, tp.partition))
            if unread:
                for tp in self._consumer.committed(unread, timeout=10):
                    found[(tp.topic, tp.partition)] = tp.offset
            return found
        except KafkaException as exc:
            log.warning("cannot read the builder's positions: %s", exc)
            return None

    def reached(self, ends: dict[Partition, int]) -> bool:
        """Every partition of ``ends`` is assigned to this builder and read to its end offset."""
        if not ends:
            return True
        found = self.positions()
        if found is None:
            return False
        try:
            return all(
                end == 0 or (tp in found and self._at_end(tp, found[tp], end))
                for tp, end in ends.items()
            )
        except KafkaException as exc:
            log.warning("cannot tell whether the builder reached the end offsets: %s", exc)
            return False

    def caught_up(self) -> bool:
        """Partitions are assigned and the position of each is at its end offset."""
        found = self.positions()
        if found is None:
            return False
        try:
            return all(self._at_end(tp, position, None) for tp, position in found.items())
        except KafkaException as exc:
            log.warning("cannot tell whether the builder is caught up: %s", exc)
            return False

    def _at_end(self, tp: Partition, position: int, end: int | None) -> bool:
        """Whether ``position`` on ``tp`` is at ``end`` (None: the partition's end offset now).
        A partition with nothing to read has no position: it is at its end if it holds no
        offset to read (its low and high watermarks are equal)."""
        low, high = self._consumer.get_watermark_offsets(
            TopicPartition(*tp), timeout=10, cached=False
        )
        end = high if end is None else end
        if position >= 0:
            return position >= end
        return low >= end

    def high_watermark(self, tp: Partition) -> int:
        """The end offset of ``tp``: as the last fetch saw it, or asked of the broker when no
        fetch has told it yet (for the lag metric)."""
        _, high = self._consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
        if high < 0:
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(*tp), timeout=10, cached=False
            )
        return int(high)

    def close(self) -> None:
        self._verifier.close()
        self._consumer.close()
        self._dlq.close(timeout=10)
