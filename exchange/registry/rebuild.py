"""Operating the registry builder: consumer lag, and exact rebuilds from the topics.

``rebuild`` empties the registry's tables (records, versions, entities, keys and
compared pairs; never the catalogue, the keys, reviewers' decisions or the linkage
models, :mod:`exchange.registry.modelstore`: the replay links with the active ones) and
replays every ``std.*`` topic from its beginning through a fresh consumer group,
up to the end offsets seen when it started. It then gives each entity the id
its old counterpart had (:func:`exchange.registry.linkage.clusters.assign`: an entity
whose members did not change keeps its id), hands the end offsets to the
regular builder's group, and compares the registry's checksum before and after.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction
from exchange.core.errors import BrokerError, RebuildError
from exchange.core.models import Entity, LinkEdge, LinkKey, RecordVersion, SourceRecord
from exchange.registry.builder import DLQ_TOPIC, GROUP_ID, TOPIC_PATTERN, RegistryBuilder
from exchange.registry.checksum import Checksum, registry_checksum
from exchange.registry.entities import new_entity_id
from exchange.registry.linkage.clusters import assign
from exchange.registry.records import record_ref
from exchange.security.keystore import KeyStore


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass
class RebuildReport:
    before: Checksum
    after: Checksum
    records_read: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    kept_ids: int = 0
    new_ids: int = 0
    end_offsets: dict[str, int] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return self.before.digest == self.after.digest


def _reader(bootstrap: str, group_id: str | None = None) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            client_id="exchange-registry-ops",
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap} ({exc}); is the stack up?") from exc


def standard_partitions(consumer: KafkaConsumer) -> list[TopicPartition]:
    pattern = re.compile(TOPIC_PATTERN)
    topics = sorted(t for t in consumer.topics() if pattern.match(t))
    return [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
    ]


def consumer_lag(bootstrap: str, group_id: str = GROUP_ID) -> list[PartitionLag]:
    """Committed offset, end offset and lag of the builder's group on every std.* partition."""
    consumer = _reader(bootstrap, group_id)
    try:
        tps = standard_partitions(consumer)
        ends = consumer.end_offsets(tps) if tps else {}
        return [
            PartitionLag(tp.topic, tp.partition, consumer.committed(tp), int(ends[tp]))
            for tp in tps
        ]
    except KafkaError as exc:
        raise BrokerError(f"cannot read the builder's offsets: {exc}") from exc
    finally:
        consumer.close()


def dead_letter_count(bootstrap: str) -> int:
    """Records ever sent to ``dlq.registry``."""
    consumer = _reader(bootstrap)
    try:
        tps = [TopicPartition(DLQ_TOPIC, p) for p in consumer.partitions_for_topic(DLQ_TOPIC) or ()]
        return int(sum(consumer.end_offsets(tps).values())) if tps else 0
    finally:
        consumer.close()


def group_is_active(bootstrap: str, group_id: str = GROUP_ID) -> bool:
    """Whether the consumer group has members (a registry builder is running)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="exchange-registry-ops")
    try:
        described = admin.describe_groups([group_id])  # {group id: {"members": [...], ...}}
        info = described.get(group_id) if isinstance(described, dict) else None
        return bool(info and info.get("members"))
    except KafkaError as exc:
        raise BrokerError(f"cannot describe consumer group {group_id!r}: {exc}") from exc
    finally:
        admin.close()


def _clear(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(delete(LinkEdge))
        session.execute(delete(LinkKey))
        session.execute(delete(RecordVersion))
        session.execute(delete(SourceRecord))
        session.execute(delete(Entity))


def _memberships(session: Session) -> dict[str, str]:
    """Record reference -> entity id, for every live record in an entity."""
    rows = session.execute(
        select(
            SourceRecord.dataset,
            SourceRecord.department,
            SourceRecord.source_id,
            SourceRecord.entity_id,
        ).where(SourceRecord.entity_id.is_not(None), SourceRecord.deleted.is_(False))
    ).yield_per(10_000)
    return {record_ref(r.dataset, r.department, r.source_id): r.entity_id for r in rows}


def _restore_ids(sessions: sessionmaker[Session], old: dict[str, str]) -> tuple[int, int]:
    """Rename rebuilt entities to the ids their old counterparts had; (kept, new)."""
    with transaction(sessions) as session:
        now = _memberships(session)
        groups: dict[str, list[str]] = defaultdict(list)
        for ref, eid in now.items():
            groups[eid].append(ref)
        edges = [(refs[0], r) for refs in groups.values() for r in refs[1:]]
        fresh: dict[str, str] = {}

        def new_id() -> str:
            return fresh.setdefault(f"#{len(fresh)}", new_entity_id("person"))

        result = assign({r: e for r, e in old.items() if r in now}, edges, list(now), new_id)
        kept = renamed = 0
        for eid, refs in groups.items():
            target = result[refs[0]]
            if target in fresh.values():
                continue  # no old counterpart: keep the id the rebuild gave it
            kept += 1
            if target == eid:
                continue
            renamed += 1
            session.execute(update(Entity).where(Entity.id == eid).values(id=target))
            session.execute(
                update(SourceRecord).where(SourceRecord.entity_id == eid).values(entity_id=target)
            )
        return kept, len(groups) - kept


def rebuild(
    bootstrap: str,
    sessions: sessionmaker[Session],
    *,
    linkage_key: bytes,
    keystore: KeyStore,
    on_progress: Callable[[int, int], None] | None = None,
    idle_timeout_s: float = 60.0,
    member_timeout_s: float = 45.0,
) -> RebuildReport:
    """Replay every std.* topic into an emptied registry; see the module docstring."""
    # A builder that was killed stays a member until its session times out (seconds).
    deadline = time.monotonic() + member_timeout_s
    while group_is_active(bootstrap, GROUP_ID) and time.monotonic() < deadline:
        time.sleep(1.0)
    if group_is_active(bootstrap, GROUP_ID):
        raise RebuildError(
            f"the registry builder (consumer group {GROUP_ID!r}) is running; "
            "stop it first (exchange down, or stop its process)"
        )
    started = time.monotonic()
    with sessions() as session:
        before = registry_checksum(session)
        old = _memberships(session)
    reader = _reader(bootstrap)
    try:
        tps = standard_partitions(reader)
        ends = {tp: int(o) for tp, o in (reader.end_offsets(tps) if tps else {}).items()}
    finally:
        reader.close()
    total = sum(ends.values())
    _clear(sessions)
    group = f"registry-rebuild-{uuid.uuid4().hex[:12]}"
    builder = RegistryBuilder(
        bootstrap, sessions, linkage_key=linkage_key, keystore=keystore, group_id=group
    )
    read = 0
    try:
        quiet_since = time.monotonic()
        while not _reached(builder, ends):
            seen = builder.poll_once(500)
            read += seen
            if seen:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > idle_timeout_s:
                raise BrokerError(
                    f"the rebuild read nothing for {idle_timeout_s:.0f} s before reaching "
                    "the topics' end offsets"
                )
            if on_progress:
                on_progress(min(read, total), total)
        dead = builder.stats.dead_lettered
    finally:
        builder.close()
    kept, new = _restore_ids(sessions, old)
    _hand_over(bootstrap, ends, group)
    with sessions() as session:
        after = registry_checksum(session)
    return RebuildReport(
        before=before,
        after=after,
        records_read=read,
        dead_lettered=dead,
        seconds=time.monotonic() - started,
        kept_ids=kept,
        new_ids=new,
        end_offsets={f"{tp.topic}[{tp.partition}]": o for tp, o in ends.items()},
    )


def _reached(builder: RegistryBuilder, ends: dict[TopicPartition, int]) -> bool:
    return builder.reached({(tp.topic, tp.partition): end for tp, end in ends.items()})


def _hand_over(bootstrap: str, ends: dict[TopicPartition, int], temporary: str) -> None:
    """The regular builder continues where the rebuild stopped; the rebuild's group goes."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="exchange-registry-ops")
    try:
        if ends:
            admin.alter_group_offsets(
                GROUP_ID, {tp: OffsetAndMetadata(o, "", -1) for tp, o in ends.items()}
            )
        admin.delete_groups([temporary])
    except KafkaError as exc:
        raise BrokerError(f"cannot hand the offsets to {GROUP_ID!r}: {exc}") from exc
    finally:
        admin.close()
