"""The record store's apply, set-based: a batch gives what the same records give one by one.

``records.apply`` decides a whole poll in memory and writes it in a few bulk
statements (``exchange.registry.bulk``). For any sequence of new versions,
unchanged re-publications, tombstones and replays (messages at or before the
offset already applied, as a consumer rewound after a crash reads them), split
into batches at random, the registry must be the one that applying each record
in its own transaction builds: the same rows, the same version history, the
same checksum, the same counts. Both are also checked against a plain model of
the rules (below), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import RecordVersion, SourceRecord
from exchange.registry import records
from exchange.registry.checksum import registry_checksum
from exchange.registry.records import Applied, Incoming

pytestmark = pytest.mark.integration

KEYS = [("person", "health", "H1"), ("person", "health", "H2"), ("person", "civil_affairs", "H1")]
TOPICS = ("std.person.v1", "std.person.v2")  # a new major version: offsets not comparable
START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """One migrated database per backend for the module (each example empties it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('apply') / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    try:
        migrate(engine)
        yield session_factory(engine)
    finally:
        engine.dispose()


# One step of a stream: (key index, what, content choice, topic index, with valid_from)
Step = tuple[int, str, int, int, bool]
steps = st.lists(
    st.tuples(
        st.integers(0, len(KEYS) - 1),
        st.sampled_from(["version", "version", "tombstone", "replay"]),
        st.integers(0, 3),  # few contents: the same content is often published again
        st.sampled_from([0, 0, 0, 1]),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


def payload(choice: int) -> dict[str, Any]:
    """A payload of several JSON types, non-ASCII text among them."""
    return {
        "family_name": "张",
        "given_name": ["秀英", "伟", "Zoë", 'a "quoted" \\ name'][choice],
        "birth_date": f"1985-03-0{choice + 1}",
        "amount_fen": 10**12 + choice,
        "share": choice / 3,
        "active": choice % 2 == 0,
        "note": None,
        "tags": ["a", choice],
    }


def stream(plan: list[Step]) -> list[Incoming]:
    """The messages of ``plan``: offsets growing per (topic, partition); a replay is a
    message sent before, read again."""
    sent: list[Incoming] = []
    next_offset: dict[tuple[str, int], int] = {}
    out: list[Incoming] = []
    for n, (k, what, choice, topic_at, valid) in enumerate(plan):
        if what == "replay":
            if sent:
                out.append(sent[(k * 7 + choice) % len(sent)])
            continue
        dataset, department, source_id = KEYS[k]
        topic, partition = TOPICS[topic_at], k % 2
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        live = what == "version"
        item = Incoming(
            dataset, department, source_id,
            f"hash-{choice}" if live else "withdrawn", 7 if live else None,
            payload(choice) if live else None, f"bidx-{choice}" if live else None,
            topic, partition, offset, START + timedelta(minutes=n),
            START - timedelta(days=choice) if valid else None,
        )  # fmt: skip
        sent.append(item)
        out.append(item)
    return out


@dataclass
class Model:
    """The rules, one message at a time, on plain dicts (the reference)."""

    rows: dict[tuple[str, str, str], dict[str, Any]]
    versions: dict[tuple[str, str, str], list[tuple[Any, ...]]]
    counts: list[int]  # applied, unchanged, withdrawn

    @classmethod
    def of(cls, items: list[Incoming]) -> Model:
        model = cls({}, {}, [0, 0, 0])
        for item in items:
            model.add(item)
        return model

    def add(self, item: Incoming) -> None:
        row = self.rows.get(item.key)
        withdrawn = item.payload is None
        if row is None and withdrawn:
            self.counts[1] += 1
            return
        if row is not None and (
            (
                (row["topic"], row["partition"]) == (item.topic, item.partition)
                and item.offset <= row["offset"]
            )
            or (row["content_hash"], row["deleted"]) == (item.content_hash, withdrawn)
        ):
            self.counts[1] += 1
            return
        self.counts[2 if withdrawn else 0] += 1
        version = 1 if row is None else row["version"] + 1
        row = self.rows.setdefault(item.key, {})
        row.update(
            version=version, content_hash=item.content_hash, deleted=withdrawn,
            topic=item.topic, partition=item.partition, offset=item.offset,
            ingested_at=item.ingested_at, valid_from=item.valid_from or item.ingested_at,
        )  # fmt: skip
        if not withdrawn:
            row.update(schema_id=item.schema_id, payload=item.payload, lookup_key=item.lookup_key)
        self.versions.setdefault(item.key, []).append(
            (
                version,
                withdrawn,
                item.content_hash,
                item.schema_id,
                item.payload,
                item.valid_from or item.ingested_at,
                item.topic,
                item.partition,
                item.offset,
                item.ingested_at,
            )
        )


def empty(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.execute(delete(RecordVersion))
        session.execute(delete(SourceRecord))


def apply_in(sessions: sessionmaker[Session], batches: list[list[Incoming]]) -> list[int]:
    """Apply each batch in its own transaction; the counts summed, each batch's changed
    records checked against its counts."""
    counts = [0, 0, 0]
    for batch in batches:
        with transaction(sessions) as session:
            applied: Applied = records.apply(session, batch)
        assert applied.applied + applied.unchanged + applied.withdrawn == len(batch)
        assert len({c.id for c in applied.changed}) == len(applied.changed)
        assert len(applied.changed) <= applied.applied + applied.withdrawn
        for c in applied.changed:
            assert (c.payload is None) == (c.content_hash == "withdrawn")
        counts = [
            counts[0] + applied.applied,
            counts[1] + applied.unchanged,
            counts[2] + applied.withdrawn,
        ]
    return counts


def snapshot(sessions: sessionmaker[Session]) -> tuple[Model, str]:
    """The registry's rows and versions, as the model holds them, and its checksum."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    versions: dict[tuple[str, str, str], list[tuple[Any, ...]]] = {}
    with sessions() as session:
        for r in session.scalars(select(SourceRecord)):
            row = {
                "version": r.version, "content_hash": r.content_hash, "deleted": r.deleted,
                "topic": r.topic, "partition": r.partition, "offset": r.offset,
                "ingested_at": r.ingested_at, "valid_from": r.valid_from,
                "schema_id": r.schema_id, "payload": r.payload, "lookup_key": r.lookup_key,
            }  # fmt: skip
            rows[(r.dataset, r.department, r.source_id)] = row
            history = session.scalars(
                select(RecordVersion)
                .where(RecordVersion.record_id == r.id)
                .order_by(RecordVersion.version)
            )
            versions[(r.dataset, r.department, r.source_id)] = [
                (
                    v.version,
                    v.deleted,
                    v.content_hash,
                    v.schema_id,
                    v.payload,
                    v.valid_from,
                    v.topic,
                    v.partition,
                    v.offset,
                    v.ingested_at,
                )
                for v in history
            ]
        digest = registry_checksum(session).digest
    return Model(rows, versions, []), digest


@settings(max_examples=40)
@given(plan=steps, cuts=st.lists(st.integers(1, 40), max_size=4))
def test_a_batch_builds_what_its_records_build_one_by_one(
    sessions: sessionmaker[Session], plan: list[Step], cuts: list[int]
) -> None:
    items = stream(plan)
    expected = Model.of(items)
    bounds = sorted({0, len(items), *(c for c in cuts if c < len(items))})
    batches = [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    empty(sessions)
    in_batches = apply_in(sessions, batches)
    batched, batched_digest = snapshot(sessions)

    empty(sessions)
    one_by_one = apply_in(sessions, [[item] for item in items])
    single, single_digest = snapshot(sessions)

    assert batched.rows == single.rows == expected.rows
    assert batched.versions == single.versions == expected.versions
    assert batched_digest == single_digest
    assert in_batches == one_by_one == expected.counts


def test_changed_records_say_what_linkage_must_look_at(sessions: sessionmaker[Session]) -> None:
    """A new record is created; one withdrawn in the batch has no payload; a record
    changed twice is reported once, with its newest content."""
    empty(sessions)
    first = stream([(0, "version", 0, 0, False), (1, "version", 1, 0, False)])
    with transaction(sessions) as session:
        created = records.apply(session, first).changed
    assert [(c.source_id, c.department, c.created) for c in created] == [
        ("H1", "health", True),
        ("H2", "health", True),
    ]
    later = [
        Incoming(*KEYS[0], "hash-2", 7, payload(2), "bidx-2", TOPICS[0], 0, 10, START),
        Incoming(*KEYS[1], "withdrawn", None, None, None, TOPICS[0], 1, 11, START),
        Incoming(*KEYS[0], "hash-3", 7, payload(3), "bidx-3", TOPICS[0], 0, 12, START),
    ]
    with transaction(sessions) as session:
        applied = records.apply(session, later)
    assert (applied.applied, applied.withdrawn, applied.unchanged) == (2, 1, 0)
    assert [(c.source_id, c.payload, c.content_hash, c.created) for c in applied.changed] == [
        ("H1", payload(3), "hash-3", False),
        ("H2", None, "withdrawn", False),
    ]
    assert {c.id for c in applied.changed} == {c.id for c in created}
    model, _ = snapshot(sessions)
    assert model.rows[KEYS[1]]["payload"] == payload(1)  # a tombstone keeps the last payload
    assert [v[0] for v in model.versions[KEYS[0]]] == [1, 2, 3]


def test_stored_timestamps_read_back_as_written(sessions: sessionmaker[Session]) -> None:
    """Timestamps go to the driver as SQLAlchemy writes them, so the ORM reads them back
    (aware, in UTC) and orders them."""
    empty(sessions)
    east = datetime(2026, 12, 7, 20, 30, 15, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    item = Incoming(*KEYS[0], "hash-0", 7, payload(0), None, TOPICS[0], 0, 0, east)
    with transaction(sessions) as session:
        records.apply(session, [item])
    with sessions() as session:
        row = session.scalars(select(SourceRecord)).one()
        assert row.ingested_at == east
        assert row.ingested_at.utcoffset() == timedelta(0)
        assert row.valid_from == east
        assert (
            session.scalar(
                select(SourceRecord.id).where(
                    SourceRecord.ingested_at > east - timedelta(seconds=1)
                )
            )
            == row.id
        )
