"""The registry a benchmark built, checked and scored; and what the topics hold.

:func:`census` counts the messages of the standard topics by kind (records
signed one by one, records of signed batches, manifests) before anything is
timed; :func:`score` counts the registry's records and entities and scores the
entities pairwise against the true people; :func:`check` refuses a build
whose figures would mean nothing.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from confluent_kafka import Consumer
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import func, select

from bench.builders import Build
from bench.children import BenchmarkError
from exchange.core.db import make_engine
from exchange.core.models import Entity, LinkEdge, RecordVersion, SourceRecord
from exchange.registry.builder import DLQ_TOPIC, TOPIC_PATTERN
from exchange.security import manifest, provenance


@dataclass
class Census:
    """The messages of the std.* topics, by kind."""

    messages: int = 0
    signed: int = 0  # records with their own signature
    batched: int = 0  # records of signed batches
    manifests: int = 0
    other: int = 0
    partitions: dict[str, int] = field(default_factory=dict)  # std.* topic -> partitions

    @property
    def records(self) -> int:
        return self.messages - self.manifests


def census(bootstrap: str, records: int, idle_s: float = 3.0, timeout_s: float = 1800.0) -> Census:
    """Read the std.* topics (read_committed) until ``records`` records were read and nothing
    more came for ``idle_s``; count each kind."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-census-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([TOPIC_PATTERN])
    counted = Census()
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=5000, timeout=0.5)
            if batch:
                quiet_since = time.monotonic()
            elif counted.records >= records and time.monotonic() - quiet_since >= idle_s:
                break
            for msg in batch:
                if msg.error() is not None:
                    continue
                named = dict(msg.headers() or ())
                counted.messages += 1
                if manifest.MANIFEST in named:
                    counted.manifests += 1
                elif manifest.BATCH in named:
                    counted.batched += 1
                elif provenance.SIGNATURE in named:
                    counted.signed += 1
                else:
                    counted.other += 1
        metadata = consumer.list_topics(timeout=30)
        counted.partitions = {
            name: len(topic.partitions)
            for name, topic in sorted(metadata.topics.items())
            if name.startswith("std.")
        }
    finally:
        consumer.close()
    return counted


def end_offsets(bootstrap: str, topic: str) -> int:
    """The sum of ``topic``'s end offsets (0 if it does not exist)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-offsets")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(offsets.values()))
    finally:
        consumer.close()


@dataclass
class Linkage:
    """The registry's entities scored against the true people."""

    records: int
    versions: int
    deleted: int
    without_entity: int
    entities: int
    true_people: int
    links: int
    review: int
    precision: float
    recall: float


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score(url: str, truth: dict[str, str]) -> Linkage:
    """Count the registry's records and entities, and score the entities pairwise."""
    engine = make_engine(url)
    try:
        with engine.connect() as db:
            records = db.scalar(select(func.count()).select_from(SourceRecord)) or 0
            versions = db.scalar(select(func.count()).select_from(RecordVersion)) or 0
            deleted = (
                db.scalar(
                    select(func.count())
                    .select_from(SourceRecord)
                    .where(SourceRecord.deleted.is_(True))
                )
                or 0
            )
            entities = db.scalar(select(func.count()).select_from(Entity)) or 0
            statuses = dict(
                db.execute(select(LinkEdge.status, func.count()).group_by(LinkEdge.status)).all()
            )
            members: dict[str, Counter[str]] = defaultdict(Counter)
            people: Counter[str] = Counter()  # records of each true person in the registry
            without = 0
            for dataset, department, source_id, entity_id in db.execute(
                select(
                    SourceRecord.dataset,
                    SourceRecord.department,
                    SourceRecord.source_id,
                    SourceRecord.entity_id,
                )
            ):
                ref = f"{dataset}/{department}/{source_id}"
                person = truth.get(ref)
                if person is None:
                    raise BenchmarkError(f"unexpected record {dataset}/{department}/{source_id}")
                if entity_id is None:
                    without += 1
                    entity_id = f"none:{source_id}"
                members[entity_id][person] += 1
                people[person] += 1
    finally:
        engine.dispose()
    predicted = sum(_pairs(sum(c.values())) for c in members.values())
    true_positive = sum(_pairs(n) for c in members.values() for n in c.values())
    true_pairs = sum(_pairs(n) for n in people.values())
    return Linkage(
        records=records,
        versions=versions,
        deleted=deleted,
        without_entity=without,
        entities=entities,
        true_people=len(people),
        links=int(statuses.get("link", 0)),
        review=int(statuses.get("review", 0)),
        precision=true_positive / predicted if predicted else 1.0,
        recall=true_positive / true_pairs if true_pairs else 1.0,
    )


def check(label: str, built: Build, linkage: Linkage, total: int, dead: int) -> None:
    """Raise unless the build took at least ``total`` records, applied each once, dead-lettered
    nothing, and made plausible entities."""
    problems = []
    taken, applied = built.records, built.stat("applied")
    if taken < total or applied != taken:
        problems.append(f"builders took {taken} records and applied {applied}")
    dead_lettered = built.stat("dead_lettered")
    if dead_lettered or dead:
        problems.append(f"{dead_lettered} dead-lettered ({dead} on {DLQ_TOPIC})")
    if linkage.records != taken or linkage.versions != taken or linkage.deleted:
        problems.append(
            f"registry holds {linkage.records} records, {linkage.versions} versions, "
            f"{linkage.deleted} deleted"
        )
    if linkage.without_entity:
        problems.append(f"{linkage.without_entity} records without an entity")
    if not 0.9 <= linkage.entities / max(1, linkage.true_people) <= 1.1:
        problems.append(f"{linkage.entities} entities for {linkage.true_people} true people")
    if linkage.precision < 0.9 or linkage.recall < 0.9:
        problems.append(f"precision {linkage.precision:.4f}, recall {linkage.recall:.4f}")
    if problems:
        raise BenchmarkError(f"{label}: " + "; ".join(problems))
