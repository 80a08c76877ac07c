"""One entity as an operator sees it: golden record, member records, and the links.

Sensitive fields stay ciphertext in the registry; here they are shown as
``"<encrypted>"`` and never take part in the golden record (the gateway decides
who may see them decrypted). Blind indexes are shown as they are: they are
keyed hashes, not identifiers (what an operator's screen shows leaves them out:
:mod:`exchange.registry.operatorview`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.errors import NotFoundError
from exchange.core.models import Entity, LinkEdge, SourceRecord
from exchange.registry.joins import principal_anchors, record_joins
from exchange.registry.linkage.golden import (
    Source,
    authorities,
    conflict_flags,
    conflicts,
    golden_record,
    trust_ranks,
)
from exchange.registry.modelstore import active_model
from exchange.registry.records import record_ref
from schemas.standards import Sensitivity, load_standard

ENCRYPTED = "<encrypted>"
_LINKED_DATASETS = {"person": "person", "organisation": "organisation"}


@cache
def _sensitive(dataset: str) -> frozenset[str]:
    try:
        standard = load_standard(dataset)
    except Exception:  # a dataset without a shipped standard: hide nothing more than it says
        return frozenset()
    return frozenset(f.name for f in standard.fields if f.sensitivity is Sensitivity.SENSITIVE)


def shown_payload(dataset: str, payload: dict[str, Any]) -> dict[str, Any]:
    hidden = _sensitive(dataset)
    return {k: (ENCRYPTED if k in hidden and v is not None else v) for k, v in payload.items()}


def _golden(
    sources: Sequence[Source], kind: str, authoritative: Mapping[str, Sequence[str]] | None
) -> dict[str, dict[str, Any]]:
    """The entity's golden record, its authorities the defaults with the settings' own."""
    if not sources:
        return {}
    return golden_record(sources, kind=kind, authority=authorities(authoritative))


def entity_view(
    session: Session,
    entity_id: str,
    trusted_departments: Sequence[str] = (),
    authoritative_departments: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The golden record (with each value's source and rule), members and links of an entity.

    ``authoritative_departments`` adds to the golden record's default authorities (see
    :func:`exchange.registry.linkage.golden.authorities`); ``flags`` says ``identifier``
    when members hold different identifiers, ``conflicts`` names the fields members
    disagree on with the refs grouped by value (never the values)."""
    entity = session.get(Entity, entity_id)
    if entity is None:
        raise NotFoundError(f"no entity {entity_id!r}")
    rows = session.scalars(
        select(SourceRecord)
        .where(SourceRecord.entity_id == entity_id, SourceRecord.deleted.is_(False))
        .order_by(SourceRecord.dataset, SourceRecord.department, SourceRecord.source_id)
    ).all()
    ranks = trust_ranks(list(trusted_departments))
    unlisted = len(ranks) + 1
    refs = {r.id: record_ref(r.dataset, r.department, r.source_id) for r in rows}
    sources = [
        (
            (refs[r.id], {k: v for k, v in r.payload.items() if k not in _sensitive(r.dataset)}),
            ranks.get(r.department, unlisted),
            r.updated_at,
        )
        for r in rows
        if r.dataset == _LINKED_DATASETS.get(r.dataset)
    ]
    # the members are read above: their joins from the holders of the entity's identifier
    joins = record_joins(
        session,
        {r.id: entity.id for r in rows},
        principal_anchors((r.id, r.lookup_key) for r in rows),
        lambda kind: active_model(session, kind).prior,
        {entity.id: entity.kind},
    )
    golden = _golden(sources, entity.kind, authoritative_departments)
    edges = session.scalars(
        select(LinkEdge).where(LinkEdge.a_id.in_(list(refs)), LinkEdge.b_id.in_(list(refs)))
    ).all()
    return {
        "entity": entity.id,
        "kind": entity.kind,
        "created_at": entity.created_at.isoformat(),
        "updated_at": entity.updated_at.isoformat(),
        "golden_record": golden,
        "flags": conflict_flags(golden),
        "conflicts": conflicts(golden),
        "records": [
            {
                "ref": refs[r.id],
                "dataset": r.dataset,
                "department": r.department,
                "source_id": r.source_id,
                "version": r.version,
                "updated_at": r.updated_at.isoformat(),
                "fields": shown_payload(r.dataset, r.payload),
                "joined": joins[r.id].to_dict() if r.id in joins else None,
            }
            for r in rows
        ],
        "links": [
            {
                "a": refs[e.a_id],
                "b": refs[e.b_id],
                "status": e.status,
                "weight": e.weight,
                "decided_by": e.decided_by,
                "explanation": e.explanation,
            }
            for e in edges
        ],
    }
