"""Relinking every live record of a kind with another model (after ``model use``).

The records are taken in batches of ``batch`` (by id), each batch in its own
transaction, through the same engine as the builder's
(:meth:`exchange.registry.entities.EntityResolver.link`): each record's keys and
compared pairs are replaced, its pairs compared again under the new model, and the
entities around it recomputed. So, as for a record the builder applies:

* an entity whose membership does not change keeps its id (merges keep the id of
  the larger part, a split's largest part keeps it);
* reviewers' decisions (``link_decisions``) decide their pairs again: a confirmed
  pair stays linked, a rejected one apart, whatever the new model says.

Every batch leaves the registry consistent, so an interrupted relink can simply be
run again (``model use`` of the version already active does just that). A record
changed by the builder while a relink runs is linked by the builder with the new
model already (it reads the active versions every poll).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction
from exchange.core.models import SourceRecord
from exchange.registry.entities import EntityResolver, link_record
from exchange.registry.linkage.model import Model
from exchange.registry.records import Changed

BATCH = 2_000


@dataclass(frozen=True, slots=True)
class RelinkReport:
    """What a relink did to a kind's entities."""

    kind: str
    records: int  # live records of the kind relinked
    entities_before: int
    entities_after: int
    kept_ids: int  # entity ids there before and after
    moved_records: int  # records whose entity id changed (or that gained or lost one)


def _memberships(session: Session, ids: list[int]) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        found.update(
            session.execute(
                select(SourceRecord.id, SourceRecord.entity_id).where(SourceRecord.id.in_(chunk))
            ).all()
        )
    return found


def _batch(session: Session, ids: list[int], kind: str) -> list[Changed]:
    """The live records of ``kind`` among ``ids``, as changes for the linker."""
    t = SourceRecord
    changed = []
    rows = session.execute(
        select(
            t.id, t.dataset, t.department, t.source_id, t.payload, t.updated_at, t.entity_id,
            t.content_hash,
        ).where(t.id.in_(ids), t.deleted.is_(False))
    )  # fmt: skip
    for r in rows:
        rec = link_record(r.dataset, "", r.department, r.payload, r.updated_at)
        if rec is None or rec.kind != kind:
            continue
        changed.append(
            Changed(
                id=r.id,
                dataset=r.dataset,
                department=r.department,
                source_id=r.source_id,
                payload=r.payload,
                updated_at=r.updated_at,
                entity_id=r.entity_id,
                content_hash=r.content_hash,
            )
        )
    return changed


def relink(
    sessions: sessionmaker[Session],
    kind: str,
    models: dict[str, Model],
    *,
    batch: int = BATCH,
    on_progress: Callable[[int, int], None] | None = None,
) -> RelinkReport:
    """Relink every live record of ``kind`` with ``models`` (see the module docstring).

    ``on_progress(done, total)`` is called after each batch (``total``: live records
    of every kind, since a record's kind is known only from its payload).
    """
    resolver = EntityResolver(models)
    with sessions() as session:
        # Every live record's entity before the first batch: a batch moves records of
        # later batches too (the entities around it are recomputed).
        before: dict[int, str | None] = dict(
            session.execute(
                select(SourceRecord.id, SourceRecord.entity_id)
                .where(SourceRecord.deleted.is_(False))
                .order_by(SourceRecord.id)
            ).all()
        )
    ids = sorted(before)
    mine: list[int] = []
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with transaction(sessions) as session:
            changed = _batch(session, chunk, kind)
            mine.extend(c.id for c in changed)
            resolver.link(session, changed)
        if on_progress is not None:
            on_progress(min(start + batch, len(ids)), len(ids))
    with sessions() as session:
        after = _memberships(session, mine)
    old = {before[i] for i in mine if before[i] is not None}
    new = {e for e in after.values() if e is not None}
    return RelinkReport(
        kind=kind,
        records=len(mine),
        entities_before=len(old),
        entities_after=len(new),
        kept_ids=len(old & new),
        moved_records=sum(before[i] != after.get(i) for i in mine),
    )


__all__ = ["BATCH", "RelinkReport", "relink"]
