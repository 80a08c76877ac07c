"""Who used a department's data, for which purposes: from the audit log.

The data requests (:func:`exchange.indicators.requests.data_requests`: audit entries that
state a purpose) whose answer drew on a dataset the department owns in the resource
catalogue, grouped by the consuming department and the purpose: how many were served
(allowed) and refused, and when the last one was made. What a publishing department
sees of the use of its data (DESIGN.md, journey 3).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import CatalogueResource
from exchange.indicators.period import Period, Scope
from exchange.indicators.requests import Asked, data_requests


@dataclass(frozen=True, slots=True)
class Use:
    """The requests of one consuming department for one purpose."""

    department: str
    purpose: str
    datasets: tuple[str, ...]  # the owner's datasets these requests drew on
    served: int
    refused: int
    last_at: datetime


def owned(session: Session, department: str) -> list[str]:
    """The datasets ``department`` owns in the resource catalogue."""
    return list(
        session.scalars(
            select(CatalogueResource.dataset)
            .where(CatalogueResource.owner_department == department)
            .order_by(CatalogueResource.dataset)
        )
    )


def usage(session: Session, period: Period, department: str) -> list[Use]:
    """Who made data requests on ``department``'s datasets in ``period``, most requests
    first."""
    mine = set(owned(session, department))
    groups: defaultdict[tuple[str, str], list[Asked]] = defaultdict(list)
    for asked in data_requests(session, period, Scope(department=department)):
        named = set((asked.dataset or "").split(",")) & mine
        if named:  # the department's own requests on others' datasets are not its data
            groups[(asked.department or "", asked.purpose)].append(asked)
    found = [
        Use(
            department=consumer,
            purpose=purpose,
            datasets=tuple(
                sorted({d for a in members for d in (a.dataset or "").split(",") if d in mine})
            ),
            served=sum(1 for a in members if a.decision == "allow"),
            refused=sum(1 for a in members if a.decision != "allow"),
            last_at=max(a.at for a in members),
        )
        for (consumer, purpose), members in groups.items()
    ]
    return sorted(found, key=lambda u: (-(u.served + u.refused), u.department, u.purpose))
