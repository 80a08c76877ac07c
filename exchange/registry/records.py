"""Applying verified records to the shared registry: upserts, version history, tombstones.

A record is identified by (dataset, department, source id). Messages for one
record share a Kafka key, so they arrive in order on one partition; the row
keeps the offset of the message that last changed it, and a message at or
before that offset is a replay and changes nothing. A message whose content
hash equals the current version's changes nothing either. Anything else adds a
version (a tombstone is a version with ``deleted`` set and no payload).

Everything here runs inside the caller's transaction, set-based: the builder
applies a whole poll in one transaction and commits the offsets after. A poll
costs one read of the rows it touches, then its decisions in memory, then a few
statements at the driver's level (:mod:`exchange.registry.bulk`): one insert
(``RETURNING`` the new ids) for the new records, one update per shape of change,
one insert for the versions. A record changed several times in one poll is
written once, with every version in its history. Each version's payload is
encoded to JSON once (orjson, six times json.dumps here), for its version and,
if it is the newest, for the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.models import SourceRecord
from exchange.registry.bulk import Statements, statements


@dataclass(frozen=True, slots=True)
class Incoming:
    """A verified, decoded message for the registry (``payload`` None: a tombstone)."""

    dataset: str
    department: str
    source_id: str
    content_hash: str
    schema_id: int | None
    payload: dict[str, Any] | None
    lookup_key: str | None
    topic: str
    partition: int
    offset: int
    ingested_at: datetime
    valid_from: datetime | None = None
    # When the department's own system last changed the record (its signed header
    # ``source_changed_at``); None if the connector does not know.
    source_changed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dataset, self.department, self.source_id)

    @property
    def withdrawn(self) -> bool:
        return self.payload is None


@dataclass(frozen=True, slots=True)
class Changed:
    """A record whose newest version changed in this batch (what linkage must look at)."""

    id: int
    dataset: str
    department: str
    source_id: str
    payload: dict[str, Any] | None  # None: withdrawn
    updated_at: datetime
    entity_id: str | None
    content_hash: str = ""
    created: bool = False  # inserted by this transaction: nothing refers to it yet

    @property
    def ref(self) -> str:
        return record_ref(self.dataset, self.department, self.source_id)


@dataclass
class Applied:
    applied: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    changed: list[Changed] = field(default_factory=list)


def record_ref(dataset: str, department: str, source_id: str) -> str:
    """The stable, human-readable reference of a source record."""
    return f"{dataset}/{department}/{source_id}"


@dataclass(slots=True)
class _Row:
    """A record as this batch leaves it: what was stored, then each version applied."""

    id: int | None  # None: new in this batch (inserted at the end)
    version: int
    content_hash: str
    deleted: bool
    topic: str
    partition: int
    offset: int
    entity_id: str | None
    created: bool = False  # new in this batch
    last: Incoming | None = None  # the newest version applied in this batch
    stored: tuple[Any, ...] = ()  # that version as stored, bulk.VERSION_COLUMNS but the first
    live: Incoming | None = None  # the newest version with a payload applied in this batch
    live_json: str = ""  # its payload as JSON


def apply(session: Session, items: Sequence[Incoming]) -> Applied:
    """Apply ``items`` in order; returns what changed."""
    result = Applied()
    if not items:
        return result
    connection = session.connection()
    sql = statements(connection)
    when = sql.datetimes()
    now = utcnow()  # the versions' applied_at and the records' updated_at
    applied_at = when(now)
    current: dict[tuple[str, str, str], _Row] = {
        (r[8], r[9], r[10]): _Row(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7])
        for r in sql.current(connection, {(i.dataset, i.department, i.source_id) for i in items})
    }
    touched: list[tuple[tuple[str, str, str], _Row]] = []  # in the order first touched
    versions: list[tuple[_Row, tuple[Any, ...]]] = []  # (its record, as stored but the id)
    unchanged = withdrawn = 0
    for item in items:
        key = (item.dataset, item.department, item.source_id)
        payload = item.payload
        row = current.get(key)
        if row is None:
            if payload is None:  # withdrawing a record never seen: nothing to do
                unchanged += 1
                continue
            row = current[key] = _Row(None, 0, "", False, "", -1, -1, None, True)
        elif (
            item.offset <= row.offset
            and item.partition == row.partition
            and item.topic == row.topic  # a replay of what is already applied
        ) or (row.content_hash == item.content_hash and row.deleted == (payload is None)):
            unchanged += 1
            continue
        if row.last is None:
            touched.append((key, row))
        row.version += 1
        row.content_hash = item.content_hash
        row.topic, row.partition, row.offset = item.topic, item.partition, item.offset
        row.last = item
        ingested = when(item.ingested_at)
        valid = ingested if item.valid_from is None else when(item.valid_from)
        if payload is None:
            row.deleted = True
            withdrawn += 1
            encoded = "null"  # what the JSON column makes of None
        else:
            row.deleted = False
            row.live = item
            encoded = row.live_json = orjson.dumps(payload).decode()
        changed = item.source_changed_at
        row.stored = (
            row.version, row.deleted, item.content_hash, item.schema_id, encoded, valid,
            item.topic, item.partition, item.offset, ingested,
            None if changed is None else when(changed), applied_at,
        )  # fmt: skip
        versions.append((row, row.stored))
    result.unchanged = unchanged
    result.withdrawn = withdrawn
    result.applied = len(versions) - withdrawn
    if touched:
        _write(connection, sql, touched, versions, applied_at, when)
        _report(result, touched, now)
    return result


def _write(
    connection: Connection,
    sql: Statements,
    touched: list[tuple[tuple[str, str, str], _Row]],
    versions: list[tuple[_Row, tuple[Any, ...]]],
    now: Any,
    when: Callable[[datetime], Any],
) -> None:
    """Store the batch's rows (``now``: their update time, as the driver stores it;
    ``when``: a timestamp as the driver stores it) and versions."""
    inserts: list[tuple[Any, ...]] = []
    inserted: list[tuple[tuple[str, str, str], _Row]] = []
    full: list[tuple[Any, ...]] = []
    partial: list[tuple[Any, ...]] = []
    for key, row in touched:
        version, deleted, content_hash, _, _, valid, topic, partition, offset, ingested = (
            row.stored[:10]
        )
        state = (
            version, content_hash, deleted, topic, partition, offset, ingested, valid, now,
        )  # fmt: skip
        live = row.live
        changed = None
        if live is not None and live.source_changed_at is not None:
            changed = when(live.source_changed_at)
        if row.created:
            assert live is not None  # a new record's first version has a payload
            inserts.append((*key, *state, live.schema_id, row.live_json, live.lookup_key, changed))
            inserted.append((key, row))
        elif live is not None:
            full.append((*state, live.schema_id, row.live_json, live.lookup_key, changed, row.id))
        else:  # only withdrawn in this batch: the last payload stays on the row
            partial.append((*state, row.id))
    if inserts:
        ids = sql.insert_records(connection, inserts)
        for key, row in inserted:
            row.id = ids[key]
    if full:
        sql.update_records(connection, full, payload=True)
    if partial:
        sql.update_records(connection, partial, payload=False)
    sql.insert_versions(connection, [(row.id, *stored) for row, stored in versions])


def _report(
    result: Applied, touched: list[tuple[tuple[str, str, str], _Row]], now: datetime
) -> None:
    """What linkage must look at: each record changed (``now``: its stored update time),
    in the order first touched."""
    changed = result.changed
    for (dataset, department, source_id), row in touched:
        assert row.id is not None
        assert row.last is not None
        changed.append(
            Changed(
                row.id,
                dataset,
                department,
                source_id,
                None if row.deleted or row.live is None else row.live.payload,
                now,
                row.entity_id,
                row.last.content_hash,
                row.created,
            )
        )


# What identifies a stored record and says which version of it is held: read by the
# builder before it applies a batch, and by the registry's checksum.
STATE_COLUMNS = (
    SourceRecord.id,
    SourceRecord.dataset,
    SourceRecord.department,
    SourceRecord.source_id,
    SourceRecord.version,
    SourceRecord.content_hash,
    SourceRecord.deleted,
)
