"""The sharing indicators over HTTP: ``GET /v1/indicators`` (JSON).

Read by role: ``admin`` and ``auditor`` for any department or none; a department's
``department_admin`` and ``data_steward`` for their own department only (without
``department`` they are given their own; another department is refused, 403). Each
request is audited once (:func:`gateway.audited.run_audited_read`, action
``indicators.read``, the department and dataset asked for in the entry). The figures
hold no personal data: departments, datasets, purposes, counts and durations.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.errors import PermissionDeniedError
from exchange.identity.apikeys import Identity
from exchange.indicators import Indicators, Scope, compute, period_of
from gateway.audited import end_reads, pending, run_audited_read
from gateway.deps import request_context

router = APIRouter(prefix="/v1", tags=["indicators"])

ANY_DEPARTMENT = frozenset({"admin", "auditor"})
OWN_DEPARTMENT = frozenset({"department_admin", "data_steward"})
READERS = ANY_DEPARTMENT | OWN_DEPARTMENT
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed or empty period"},
    401: {"description": "Missing, malformed, wrong, revoked or expired credentials"},
    403: {"description": "The caller's role may not read these indicators"},
    503: {"description": "The audit log could not be written; nothing was disclosed"},
}
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


def scope_for(identity: Identity, department: str | None, dataset: str | None) -> Scope:
    """The scope the caller may read: any for admins and auditors; its own department
    for a department's administrator or data steward."""
    if identity.role in ANY_DEPARTMENT:
        return Scope(department, dataset)
    if identity.role in OWN_DEPARTMENT and identity.department is not None:
        if department is not None and department != identity.department:
            raise PermissionDeniedError(
                f"a {identity.role} of {identity.department!r} may read only its own "
                "department's indicators"
            )
        return Scope(identity.department, dataset)
    raise PermissionDeniedError(
        f"role {identity.role!r} may not read indicators; allowed: {', '.join(sorted(READERS))}"
    )


@router.get(
    "/indicators",
    response_model=Indicators,
    summary="The sharing indicators over a period",
    description="Records published and rejected, freshness, timeliness, linkage rate, data "
    "requests served and refused, query latency and sharing-request turnaround, per "
    "department and dataset, over [from, to) (default: the last 30 days). Definitions: "
    "docs/indicators.md.",
    responses=_ERRORS,
)
def get_indicators(
    request: Request,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="Included: YYYY-MM-DD (UTC) or ISO 8601 with a zone.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", max_length=40, description="Excluded. Default: now."),
    ] = None,
    department: Annotated[str | None, Query(max_length=100, pattern=_NAME)] = None,
    dataset: Annotated[str | None, Query(max_length=100, pattern=_NAME)] = None,
) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "indicators.read", dataset=dataset)

    def work(session: Session, identity: Identity) -> Indicators:
        scope = scope_for(identity, department, dataset)
        period = period_of(start, end, now=utcnow())
        decision.reason = (
            f"indicators of {scope.department or 'every department'}, "
            f"{scope.dataset or 'every dataset'}, {period.start:%Y-%m-%dT%H:%M}Z to "
            f"{period.end:%Y-%m-%dT%H:%M}Z"
        )
        found = compute(session, period, scope, now=utcnow())
        end_reads(session)
        return found

    return run_audited_read(state, request, decision, work)
