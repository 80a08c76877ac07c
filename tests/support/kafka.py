"""Kafka helpers for tests that share the session broker's topics with other tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.admin import MemberToRemove
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NoError

from exchange.kafka.clients import ensure_topics


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The topic's current end offset per partition (creating the topic if missing)."""
    ensure_topics(bootstrap, [topic])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 30
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} has no partitions")
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def start_group_at(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``offsets`` for a new consumer group, so it starts where a test began publishing.

    Records other tests left on a shared topic are then not this test's concern.
    """
    seed = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        seed.commit(
            {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        )
    finally:
        seed.close()


def start_group_at_ends(bootstrap: str, group: str, prefix: str, *, but: str) -> None:
    """Commit, for a new consumer group, the end offsets of every topic whose name starts with
    ``prefix`` but ``but``: a consumer of a pattern (the registry builder reads every ``std.``
    topic) then reads only ``but``, not what earlier tests left on the others."""
    seed = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in sorted(seed.topics())
            if topic.startswith(prefix) and topic != but
            for p in seed.partitions_for_topic(topic) or ()
        ]
        if tps:
            ends = seed.end_offsets(tps)
            seed.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
    finally:
        seed.close()


@dataclass
class _Index:
    """What :func:`read_topic` has read of one topic: the offset it read each partition up to,
    and where the keys of each head (a key up to its first ``:``, e.g. a department) lie."""

    read_to: dict[int, int] = field(default_factory=dict)
    spans: dict[bytes, dict[int, tuple[int, int]]] = field(default_factory=dict)

    def note(self, message: Any) -> None:
        head = (message.key or b"").split(b":", 1)[0]
        partitions = self.spans.setdefault(head, {})
        first, last = partitions.get(message.partition, (message.offset, message.offset))
        partitions[message.partition] = (min(first, message.offset), max(last, message.offset))

    def ranges_before(self, key_prefix: bytes, read_to: dict[int, int]) -> dict[int, range]:
        """Per partition, the offsets below ``read_to`` that hold every key starting with
        ``key_prefix`` (a key starts with it only if its head does, or it extends the head)."""
        found: dict[int, range] = {}
        for head, partitions in self.spans.items():
            if not (head.startswith(key_prefix) or key_prefix.startswith(head + b":")):
                continue
            for partition, (first, last) in partitions.items():
                stop = min(last + 1, read_to.get(partition, 0))
                if first < stop:
                    known = found.get(partition, range(first, stop))
                    found[partition] = range(min(known.start, first), max(known.stop, stop))
        return found


# (bootstrap, topic) -> what this process has read of it. Tests share the session broker's
# topics, which grow to hundreds of thousands of records: each call reads only what arrived
# since the last one, and of what came before only the spans where its keys can be.
_INDEXES: dict[tuple[str, str], _Index] = {}


def read_topic(bootstrap: str, topic: str, key_prefix: bytes) -> list[Any]:
    """Every message of ``topic`` whose key starts with ``key_prefix``, up to the end offsets
    taken now (so everything acknowledged before the call is seen), in offset order per
    partition."""
    ensure_topics(bootstrap, [topic])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            assert time.monotonic() < deadline, f"no metadata for {topic}"
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        begin = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        index = _INDEXES.setdefault((bootstrap, topic), _Index())
        if any(end[tp] < index.read_to.get(tp.partition, 0) for tp in tps):
            index = _INDEXES[bootstrap, topic] = _Index()  # a new topic of the same name
        read_to = dict(index.read_to)
        new = {
            tp.partition: range(max(read_to.get(tp.partition, 0), begin[tp]), end[tp]) for tp in tps
        }
        found: list[Any] = []
        for message in _read_ranges(consumer, topic, new, deadline):
            index.note(message)
            if (message.key or b"").startswith(key_prefix):
                found.append(message)
        index.read_to = {tp.partition: end[tp] for tp in tps}
        earlier = index.ranges_before(key_prefix, read_to)
        found += [
            m
            for m in _read_ranges(consumer, topic, earlier, deadline)
            if (m.key or b"").startswith(key_prefix)
        ]
        return sorted(found, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()


def _read_ranges(
    consumer: KafkaConsumer, topic: str, ranges: dict[int, range], deadline: float
) -> Iterator[Any]:
    """The messages at the offsets of ``ranges`` (partition -> offsets)."""
    wanted = {TopicPartition(topic, p): r for p, r in ranges.items() if r}
    if not wanted:
        return
    consumer.assign(list(wanted))
    consumer.resume(*wanted)  # paused by an earlier call
    for tp, offsets in wanted.items():
        consumer.seek(tp, offsets.start)
    pending = set(wanted)
    while pending:
        assert time.monotonic() < deadline, f"could not read {topic} to its end"
        for tp, batch in consumer.poll(timeout_ms=500).items():
            yield from (m for m in batch if m.offset < wanted[tp].stop)
        for tp in list(pending):
            if consumer.position(tp) >= wanted[tp].stop:
                consumer.pause(tp)
                pending.discard(tp)


def evict_members(bootstrap: str, group: str) -> list[str]:
    """Remove every member of ``group`` (the members of a killed process, which cannot leave
    on their own); returns their ids.

    A consumer that joins next then gets the partitions at once, instead of after the dead
    members' session timeout (45 s by default) when the coordinator drops them.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-evict")
    try:
        # Just after a process is killed, on a loaded machine, the group's coordinator may
        # not answer yet (CoordinatorNotAvailable, a retriable error): ask again briefly.
        deadline = time.monotonic() + 30
        while True:
            try:
                info = admin.describe_groups([group]).get(group) or {}
                break
            except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        members = [m["member_id"] for m in info.get("members") or []]
        if members:
            results = admin.remove_group_members(
                group, [MemberToRemove(member_id=m) for m in members]
            )
            assert all(error is NoError for error in results.values()), results
        return members
    finally:
        admin.close()
