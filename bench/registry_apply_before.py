"""The record store's apply before issue 19 (commit 99795d5), frozen: the baseline of
:mod:`bench.registry_apply`. SQLAlchemy Core statements (insert with RETURNING sorted
by parameter order, an executemany update per column set, the versions' insert), with
the same rules as :func:`exchange.registry.records.apply`. Not used by the exchange.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.models import RecordVersion, SourceRecord
from exchange.registry.records import STATE_COLUMNS, Applied, Changed, Incoming

_CHUNK = 900
_RECORDS = cast(Table, SourceRecord.__table__)
_VERSIONS = cast(Table, RecordVersion.__table__)


@dataclass(slots=True)
class _Current:
    id: int | None
    version: int
    content_hash: str
    deleted: bool
    topic: str
    partition: int
    offset: int
    entity_id: str | None


def apply(session: Session, items: Sequence[Incoming]) -> Applied:
    """Apply ``items`` in order; returns what changed."""
    result = Applied()
    current = _load_current(session, items)
    inserts: dict[tuple[str, str, str], dict[str, Any]] = {}
    updates: dict[int, dict[str, Any]] = {}
    versions: list[tuple[tuple[str, str, str], dict[str, Any]]] = []
    touched: dict[tuple[str, str, str], Incoming] = {}
    now = utcnow()
    for item in items:
        row = current.get(item.key)
        position = (item.topic, item.partition)
        if row is not None and (row.topic, row.partition) == position and item.offset <= row.offset:
            result.unchanged += 1  # a replay of what is already applied
            continue
        if row is None and item.withdrawn:  # withdrawing a record never seen: nothing to do
            result.unchanged += 1
            continue
        if (
            row is not None
            and row.content_hash == item.content_hash
            and row.deleted == item.withdrawn
        ):
            result.unchanged += 1
            continue
        version = 1 if row is None else row.version + 1
        values = {
            "version": version,
            "content_hash": item.content_hash,
            "deleted": item.withdrawn,
            "topic": item.topic,
            "partition": item.partition,
            "offset": item.offset,
            "ingested_at": item.ingested_at,
            "valid_from": item.valid_from or item.ingested_at,
            "updated_at": now,
        }
        if not item.withdrawn:
            values |= {
                "schema_id": item.schema_id,
                "payload": item.payload,
                "lookup_key": item.lookup_key,
            }
        if row is None:
            row = _Current(None, 0, "", False, "", -1, -1, None)
            current[item.key] = row
            inserts[item.key] = {
                "dataset": item.dataset,
                "department": item.department,
                "source_id": item.source_id,
                **values,
            }
        elif row.id is None:  # inserted earlier in this batch
            inserts[item.key].update(values)
        else:
            updates.setdefault(row.id, {"id": row.id}).update(values)
        row.version, row.content_hash, row.deleted = version, item.content_hash, item.withdrawn
        row.topic, row.partition, row.offset = item.topic, item.partition, item.offset
        versions.append((item.key, _version_values(item, version)))
        touched[item.key] = item
        if item.withdrawn:
            result.withdrawn += 1
        else:
            result.applied += 1
    connection = session.connection()
    if inserts:
        # Core statements on the tables, not the ORM's bulk paths: the same SQL for a
        # fraction of the Python work per row (measured in bench.registry_throughput).
        ids = connection.execute(
            insert(_RECORDS).returning(_RECORDS.c.id, sort_by_parameter_order=True),
            list(inserts.values()),
        ).scalars()
        for key, new_id in zip(inserts, ids, strict=True):
            current[key].id = new_id
    for columns, rows in _by_columns(updates.values()).items():
        statement = (
            update(_RECORDS)
            .where(_RECORDS.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns})
        )
        params = [{"_id": r["id"], **{c: r[c] for c in columns}} for r in rows]
        connection.execute(statement, params)
    if versions:
        connection.execute(
            insert(_VERSIONS),
            [{"record_id": current[key].id, **values} for key, values in versions],
        )
    for key, item in touched.items():
        row = current[key]
        assert row.id is not None
        result.changed.append(
            Changed(
                row.id,
                item.dataset,
                item.department,
                item.source_id,
                None if row.deleted else _payload_of(inserts, updates, key, row.id),
                now,
                row.entity_id,
                item.content_hash,
                key in inserts,
            )
        )
    return result


def _by_columns(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Update rows grouped by the columns they set (one executemany per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(c for c in row if c != "id")), []).append(row)
    return groups


def _payload_of(
    inserts: dict[tuple[str, str, str], dict[str, Any]],
    updates: dict[int, dict[str, Any]],
    key: tuple[str, str, str],
    record_id: int,
) -> dict[str, Any] | None:
    values = inserts.get(key) or updates.get(record_id) or {}
    payload = values.get("payload")
    return payload if isinstance(payload, dict) else None


def _version_values(item: Incoming, version: int) -> dict[str, Any]:
    return {
        "version": version,
        "deleted": item.withdrawn,
        "content_hash": item.content_hash,
        "schema_id": item.schema_id,
        "payload": item.payload,
        "valid_from": item.valid_from or item.ingested_at,
        "topic": item.topic,
        "partition": item.partition,
        "offset": item.offset,
        "ingested_at": item.ingested_at,
    }


def _load_current(
    session: Session, items: Sequence[Incoming]
) -> dict[tuple[str, str, str], _Current]:
    wanted = {item.key for item in items}
    datasets = sorted({key[0] for key in wanted})
    departments = sorted({key[1] for key in wanted})
    source_ids = sorted({key[2] for key in wanted})
    found: dict[tuple[str, str, str], _Current] = {}
    for start in range(0, len(source_ids), _CHUNK):
        chunk = source_ids[start : start + _CHUNK]
        rows = session.execute(
            select(
                *STATE_COLUMNS,
                SourceRecord.topic,
                SourceRecord.partition,
                SourceRecord.offset,
                SourceRecord.entity_id,
            ).where(  # served by the unique (dataset, department, source_id) index
                SourceRecord.dataset.in_(datasets),
                SourceRecord.department.in_(departments),
                SourceRecord.source_id.in_(chunk),
            )
        )
        for r in rows:
            key = (r.dataset, r.department, r.source_id)
            if key in wanted:
                found[key] = _Current(
                    r.id,
                    r.version,
                    r.content_hash,
                    bool(r.deleted),
                    r.topic,
                    r.partition,
                    r.offset,
                    r.entity_id,
                )
    return found
