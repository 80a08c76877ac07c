"""A content checksum of the shared registry, to prove two builds are the same registry.

It covers what the topics determine: every source record's versions (content
hash, withdrawn or not, payload), the current state of each record, which
records form one entity (the partition, not the entity ids: ids depend on the
order records arrived in, which differs between a resumed and an uninterrupted
build), and the compared pairs (link or review, with their weights). It leaves
out what only says when or from where a record was read: offsets and times.
Reviewers' decisions are covered through the pairs' statuses.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import LinkEdge, RecordVersion, SourceRecord
from exchange.registry.records import STATE_COLUMNS, record_ref


@dataclass(frozen=True)
class Checksum:
    digest: str
    records: int
    versions: int
    withdrawn: int
    entities: int
    links: int
    reviews: int
    parts: tuple[tuple[str, str], ...] = ()  # a digest per section, to say which one differs

    def as_dict(self) -> dict[str, Any]:
        return {
            "checksum": self.digest,
            "records": self.records,
            "versions": self.versions,
            "withdrawn": self.withdrawn,
            "entities": self.entities,
            "links": self.links,
            "awaiting_review": self.reviews,
            "parts": dict(self.parts),
        }


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def registry_checksum(session: Session) -> Checksum:
    """SHA-256 over the registry's content, in a fixed order."""
    digest = _Sections()
    refs: dict[int, str] = {}
    members: dict[str, list[str]] = defaultdict(list)
    records = withdrawn = 0
    rows = session.execute(
        select(
            *STATE_COLUMNS,
            SourceRecord.lookup_key,
            SourceRecord.entity_id,
        ).order_by(SourceRecord.dataset, SourceRecord.department, SourceRecord.source_id)
    ).yield_per(5000)
    digest.update(b"records\n")
    for r in rows:
        ref = record_ref(r.dataset, r.department, r.source_id)
        refs[r.id] = ref
        records += 1
        withdrawn += bool(r.deleted)
        digest.update(_canonical([ref, r.version, r.content_hash, bool(r.deleted), r.lookup_key]))
        if r.entity_id is not None and not r.deleted:
            members[r.entity_id].append(ref)
    digest.update(b"versions\n")
    versions = 0
    history = session.execute(
        select(
            SourceRecord.id,
            RecordVersion.version,
            RecordVersion.content_hash,
            RecordVersion.deleted,
            RecordVersion.payload,
        )
        .join(RecordVersion, RecordVersion.record_id == SourceRecord.id)
        .order_by(
            SourceRecord.dataset,
            SourceRecord.department,
            SourceRecord.source_id,
            RecordVersion.version,
        )
    ).yield_per(5000)
    for v in history:
        versions += 1
        digest.update(_canonical([refs[v.id], v.version, v.content_hash, bool(v.deleted)]))
        digest.update(hashlib.sha256(_canonical(v.payload)).digest())
    digest.update(b"entities\n")
    partition = sorted(sorted(refs_of) for refs_of in members.values())
    for group in partition:
        digest.update(_canonical(group))
    digest.update(b"pairs\n")
    links = reviews = 0
    pairs = sorted(
        (*sorted((refs[e.a_id], refs[e.b_id])), e.status, round(e.weight, 6))
        for e in session.execute(
            select(LinkEdge.a_id, LinkEdge.b_id, LinkEdge.status, LinkEdge.weight)
        )
    )
    for a, b, status, weight in pairs:
        links += status in ("link", "confirmed")
        reviews += status == "review"
        digest.update(_canonical([a, b, status, weight]))
    return Checksum(
        digest.hexdigest(),
        records,
        versions,
        withdrawn,
        len(partition),
        links,
        reviews,
        tuple(digest.parts.items()),
    )


class _Sections:
    """One running SHA-256 over everything, and one per section (started by a b"name\n")."""

    def __init__(self) -> None:
        self._all = hashlib.sha256()
        self._part: Any = None
        self._name = ""
        self.parts: dict[str, str] = {}

    def update(self, data: bytes) -> None:
        if data.endswith(b"\n") and data[:-1].isalpha():
            self._close()
            self._name, self._part = data[:-1].decode(), hashlib.sha256()
        elif self._part is not None:
            self._part.update(data)
        self._all.update(data)

    def _close(self) -> None:
        if self._part is not None:
            self.parts[self._name] = self._part.hexdigest()

    def hexdigest(self) -> str:
        self._close()
        self._part = None
        return self._all.hexdigest()
