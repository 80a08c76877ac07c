"""The registry builder's rejections, kept in SQL where they are decided.

Every record the builder dead-letters to ``dlq.registry`` also gets a row in
``registry_rejections`` (:class:`exchange.core.models.RegistryRejection`): the
department and dataset the record claimed, and its reason's code. The sharing
indicators count rejections by reason over a period from these rows, beside the
connectors' own (``connector_runs``). A row is keyed by where the record is
(topic, partition, offset), so a replay that dead-letters it again adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.core.models import RegistryRejection

UNKNOWN = "unknown"
REASON_MAX = 50


@dataclass(frozen=True, slots=True)
class Rejection:
    """One dead-lettered record: where it is, what it claimed, and the reason given."""

    topic: str
    partition: int
    offset: int
    department: str
    dataset: str
    reason: str  # the dead letter's reason: "<code>: <message>"


def reason_code(reason: str) -> str:
    """The code a dead letter's reason starts with (``"uncovered_record: ..."``)."""
    code = reason.split(":", 1)[0].strip()
    return (code or UNKNOWN)[:REASON_MAX]


def claimed(topic: str, key: bytes | None, headers: Mapping[str, bytes]) -> tuple[str, str]:
    """The (department, dataset) a record claims: its headers, else its key's
    ``<department>:`` prefix and its topic's ``std.<dataset>.v<N>``; ``unknown`` if none."""
    department = headers.get("department", b"").decode("utf-8", "replace")
    dataset = headers.get("dataset", b"").decode("utf-8", "replace")
    if not department and key:
        department = key.decode("utf-8", "replace").partition(":")[0]
    if not dataset and topic.startswith("std."):
        dataset = topic.removeprefix("std.").rpartition(".v")[0]
    return (department or UNKNOWN)[:100], (dataset or UNKNOWN)[:100]


def record(session: Session, rejections: Sequence[Rejection], *, at: datetime) -> None:
    """Add a row for each rejection not recorded yet, in the caller's transaction."""
    if not rejections:
        return
    rows: list[dict[str, Any]] = [
        {
            "at": at,
            "department": r.department,
            "dataset": r.dataset,
            "reason": reason_code(r.reason),
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
        }
        for r in rejections
    ]
    table = cast(Table, RegistryRejection.__table__)
    if session.get_bind().dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    session.execute(stmt, rows)
