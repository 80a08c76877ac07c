"""The review queue: which compared pairs await a reviewer's decision, counted one way.

A pair **awaits review** when its edge has status ``review``, both its records
are live (not withdrawn), and they are not already in one entity: a pair that
other links joined needs no decision (it matters again if the entity is split).
``exchange registry status`` counts, and ``exchange registry review list`` shows,
exactly these pairs, through this module, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, aliased

from exchange.core.models import LinkEdge, SourceRecord
from exchange.registry.records import record_ref

_A = aliased(SourceRecord, name="a")
_B = aliased(SourceRecord, name="b")


def _awaiting() -> ColumnElement[bool]:
    return and_(
        LinkEdge.status == "review",
        _A.deleted.is_(False),
        _B.deleted.is_(False),
        _A.entity_id.is_distinct_from(_B.entity_id),
    )


def _edges_with_records() -> Any:
    """``link_edges`` joined to its two records (``a`` and ``b``), to select from."""
    return LinkEdge.__table__.join(_A, _A.id == LinkEdge.a_id).join(_B, _B.id == LinkEdge.b_id)


@dataclass(frozen=True, slots=True)
class ReviewPair:
    """A pair awaiting review: both records by ref, the weight and the evidence."""

    a: str
    b: str
    weight: float
    explanation: dict[str, Any]


def awaiting_review_count(session: Session) -> int:
    """How many pairs await review (see the module's docstring)."""
    query = select(func.count()).select_from(_edges_with_records()).where(_awaiting())
    return int(session.scalar(query) or 0)


def awaiting_review(session: Session, limit: int | None = None) -> Sequence[ReviewPair]:
    """The pairs awaiting review, highest weight first (then by record, for a stable order)."""
    query = (
        select(
            _A.dataset, _A.department, _A.source_id,
            _B.dataset, _B.department, _B.source_id,
            LinkEdge.weight, LinkEdge.explanation,
        )
        .select_from(_edges_with_records())
        .where(_awaiting())
        .order_by(LinkEdge.weight.desc(), LinkEdge.a_id, LinkEdge.b_id)
        .limit(limit)
    )  # fmt: skip
    return [
        ReviewPair(record_ref(ad, adep, aid), record_ref(bd, bdep, bid), weight, explanation)
        for ad, adep, aid, bd, bdep, bid, weight, explanation in session.execute(query)
    ]
