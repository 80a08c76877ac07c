"""The linkage rate: the share of people known to two or more departments (silos broken).

A person is a person entity with at least one live (not withdrawn) source record;
the departments that know it are the distinct departments among those records. The
figure is the registry's state when computed: linkage keeps no history to replay,
so it does not depend on the period.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.models import Entity, SourceRecord
from exchange.indicators.figures import DepartmentLinkage, Linkage
from exchange.indicators.period import Scope


def linkage(session: Session, scope: Scope) -> Linkage:
    """Overall, and for each department (only ``scope.department``'s, if given)."""
    pairs = (
        select(SourceRecord.entity_id, SourceRecord.department)
        .join(Entity, Entity.id == SourceRecord.entity_id)
        .where(Entity.kind == "person", SourceRecord.deleted.is_(False))
        .distinct()
    )
    departments: defaultdict[str, set[str]] = defaultdict(set)
    for entity_id, department in session.execute(pairs):
        if entity_id is not None:  # joined to an entity: always
            departments[entity_id].add(department)
    people = len(departments)
    several = sum(1 for known in departments.values() if len(known) >= 2)
    per: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for known in departments.values():
        for department in known:
            per[department][0] += 1
            per[department][1] += len(known) >= 2
    by_department = [
        DepartmentLinkage(
            department=department,
            people=count,
            known_elsewhere=elsewhere,
            rate=elsewhere / count if count else None,
        )
        for department, (count, elsewhere) in sorted(per.items())
        if scope.department is None or department == scope.department
    ]
    return Linkage(
        people=people,
        known_to_two_or_more=several,
        rate=several / people if people else None,
        by_department=by_department,
    )
