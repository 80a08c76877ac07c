"""The baselines of the registry build: bare consumers reading the standard topics to the end.

Each function runs in a spawned child process (:func:`bench.children.run_child`)
and sends back a :class:`bench.children.ChildResult`:

* :func:`kafka_bare`: kafka-python's ``KafkaConsumer`` with the settings of
  :func:`exchange.kafka.clients.consumer` (pattern ``^std\\..*``, a fresh group,
  ``read_committed``, no auto-commit), polling up to 5,000 records and committing
  after each poll;
* :func:`kafka_verify`: the same, checking each record's own Ed25519 signature
  (:func:`exchange.security.provenance.verify_record`; records published before
  batch manifests);
* :func:`confluent_bare`: confluent-kafka's ``Consumer`` (librdkafka) with the same
  settings, ``consume(num_messages=5000)`` and a synchronous commit after each batch;
* :func:`confluent_manifests`: the same consumer accepting records as the builder
  must (:class:`bench.batch_check.BatchCheck`: held per batch until their
  partition's manifest, the manifest verified once, each digest checked; a
  per-record signature verified on its own), committing after each batch only
  what is resolved.

The bare consumers read ``messages`` messages (records and manifests); the
verifying ones stop once ``records`` records were accepted or refused.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from confluent_kafka import Consumer, KafkaError
from confluent_kafka import TopicPartition as RdTopicPartition
from kafka import KafkaConsumer

from bench.batch_check import BatchCheck
from bench.children import ChildResult, Progress, own_cpu_s
from bench.procstat import status_kib
from exchange.core.db import make_engine, session_factory
from exchange.registry.builder import MAX_POLL_RECORDS, TOPIC_PATTERN
from exchange.security import provenance
from exchange.security.keystore import LocalKeyStore
from schemas import SchemaStore

TIMEOUT_S = 4 * 3600.0


def _finish(conn: Connection, result: ChildResult) -> None:
    result.peak_rss_kib = status_kib("VmHWM")
    conn.send(result)
    conn.close()


def _kafka_consume(
    conn: Connection,
    name: str,
    bootstrap: str,
    total: int,
    on_message: Callable[[Any], None] | None,
) -> None:
    result = ChildResult()
    try:
        progress = Progress(name, total)
        cpu = own_cpu_s()
        result.started = started = time.monotonic()
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"bench-{name}-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            client_id=f"bench-{name}",
            metadata_max_age_ms=3000,
        )
        consumer.subscribe(pattern=TOPIC_PATTERN)
        seen = size = 0
        while seen < total and time.monotonic() - started < TIMEOUT_S:
            batches = consumer.poll(timeout_ms=500, max_records=MAX_POLL_RECORDS)
            for messages in batches.values():
                seen += len(messages)
                size += sum(len(m.value or b"") for m in messages)
                if on_message is not None:
                    for message in messages:
                        on_message(message)
            if batches:
                consumer.commit()
            progress(seen)
        result.elapsed = time.monotonic() - started
        result.cpu_s = own_cpu_s() - cpu
        result.records = seen
        result.stats = {"bytes": size}
        consumer.close()
    except BaseException:
        result.error = traceback.format_exc()
    _finish(conn, result)


def kafka_bare(conn: Connection, bootstrap: str, messages: int) -> None:
    """kafka-python reading ``messages`` messages of the std.* topics, doing nothing else."""
    _kafka_consume(conn, "kafka-bare", bootstrap, messages, None)


def kafka_verify(conn: Connection, bootstrap: str, url: str, master_key: bytes, total: int) -> None:
    """kafka-python checking each record's own signature (the department's keys read once)."""
    engine = make_engine(url)
    keystore = LocalKeyStore(session_factory(engine), master_key)
    keys: dict[str, dict[str, bytes]] = {}

    def verify(message: Any) -> None:
        headers = provenance.headers_dict(message.headers)
        department = headers[provenance.DEPARTMENT].decode()
        if department not in keys:
            keys[department] = keystore.public_keys(department)
        provenance.verify_record(headers, message.value or b"", keys[department])

    try:
        _kafka_consume(conn, "kafka-verify", bootstrap, total, verify)
    finally:
        engine.dispose()


def confluent_consumer(bootstrap: str, name: str) -> Consumer:
    """librdkafka with the builder's settings: fresh group, earliest, read_committed, no
    auto-commit, the std.* pattern."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{name}-{uuid.uuid4().hex[:8]}",
            "client.id": f"bench-{name}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "topic.metadata.refresh.interval.ms": 3000,
        }
    )
    consumer.subscribe([TOPIC_PATTERN])
    return consumer


def _skipped(error: Any) -> bool:
    """Whether a message with ``error`` (None: a record) is an informational event to skip;
    raises on a real error."""
    if error is None:
        return False
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    raise RuntimeError(f"consumer error: {error.str()}")


def confluent_bare(conn: Connection, bootstrap: str, messages: int) -> None:
    """confluent-kafka reading ``messages`` messages of the std.* topics, doing nothing else."""
    result = ChildResult()
    try:
        progress = Progress("confluent-bare", messages)
        cpu = own_cpu_s()
        result.started = started = time.monotonic()
        consumer = confluent_consumer(bootstrap, "confluent-bare")
        seen = size = 0
        while seen < messages and time.monotonic() - started < TIMEOUT_S:
            batch = consumer.consume(num_messages=MAX_POLL_RECORDS, timeout=0.5)
            for msg in batch:
                if _skipped(msg.error()):
                    continue
                seen += 1
                size += len(msg.value() or b"")
            if batch:
                consumer.commit(asynchronous=False)
            progress(seen)
        result.elapsed = time.monotonic() - started
        result.cpu_s = own_cpu_s() - cpu
        result.records = seen
        result.stats = {"bytes": size}
        consumer.close()
    except BaseException:
        result.error = traceback.format_exc()
    _finish(conn, result)


def confluent_manifests(
    conn: Connection, bootstrap: str, url: str, master_key: bytes, records: int
) -> None:
    """confluent-kafka accepting ``records`` records through their batch manifests (or their
    own signatures), committing after each batch up to the first record still held."""
    result = ChildResult()
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        keystore = LocalKeyStore(sessions, master_key)
        check = BatchCheck(keystore.public_keys, SchemaStore(sessions).schema_text)
        progress = Progress("confluent-manifests", records)
        cpu = own_cpu_s()
        result.started = started = time.monotonic()
        consumer = confluent_consumer(bootstrap, "confluent-manifests")
        checking = 0.0  # CPU seconds of this thread in BatchCheck: the cost of accepting
        while check.resolved < records and time.monotonic() - started < TIMEOUT_S:
            batch = consumer.consume(num_messages=MAX_POLL_RECORDS, timeout=0.5)
            began = time.thread_time()
            check.messages(batch)
            checking += time.thread_time() - began
            while check.errors:
                _skipped(check.errors.pop())
            if batch:
                read = {
                    (tp.topic, tp.partition): tp.offset
                    for tp in consumer.position(consumer.assignment())
                    if tp.offset >= 0
                }
                offsets = [
                    RdTopicPartition(t, p, o) for (t, p), o in check.committable(read).items()
                ]
                consumer.commit(offsets=offsets, asynchronous=False)
            progress(check.resolved)
        result.elapsed = time.monotonic() - started
        result.cpu_s = own_cpu_s() - cpu
        result.records = check.resolved
        result.stats = {
            "accepted": check.accepted,
            "refused": sum(check.refused.values()),
            "manifests": check.manifests,
            "signatures": check.signatures,
            "held": check.held,
            "check_cpu_us": int(1e6 * checking),
            **{f"refused:{code}": n for code, n in check.refused.items()},
        }
        consumer.close()
    except BaseException:
        result.error = traceback.format_exc()
    finally:
        engine.dispose()
    _finish(conn, result)
