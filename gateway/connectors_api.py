"""What a publishing department sees of its connectors, over HTTP (``/v1/connectors/...``):
its runs and their reconciliation, its rejected rows by reason, its withdrawn records, and
who used its data for which purposes.

Read by role: a ``publisher`` sees its own department only (naming another is refused,
403, audited); an ``admin`` any department's runs, withdrawals and use, but no
department's rejected rows: a dead letter holds a department's source row, opened here with
the department's keys, and is that department's alone (docs/connectors.md, "Dead
letters"). Each request is one audited read (:func:`gateway.audited.run_audited_read`);
the web console's publisher pages (:mod:`gateway.console.publisher`) run the same work
functions under the same actions.

| Route | Action | Work |
|---|---|---|
| ``GET /v1/connectors/runs`` | ``connectors.runs`` | :func:`runs_of` |
| ``GET /v1/connectors/rejections`` | ``connectors.rejections`` | :func:`rejections_of` |
| ``GET /v1/connectors/withdrawals`` | ``connectors.withdrawals`` | :func:`withdrawals_of` |
| ``GET /v1/connectors/usage`` | ``connectors.usage`` | :func:`usage_of` |
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from connectors import deadletters
from connectors import runs as connector_runs
from connectors.pipeline import dlq_topic
from exchange import audit
from exchange.core.db import utcnow
from exchange.core.errors import PermissionDeniedError, ValidationError
from exchange.identity.apikeys import Identity
from exchange.indicators import period_of
from exchange.indicators import usage as data_usage
from exchange.registry import withdrawals as registry_withdrawals
from gateway.audited import end_reads, pending, run_audited_read
from gateway.deps import AppState, request_context

router = APIRouter(prefix="/v1/connectors", tags=["publishing"])

PUBLISHERS = frozenset({"publisher"})
READERS = frozenset({"publisher", "admin"})
NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed or empty period"},
    401: {"description": "Missing, malformed, wrong, revoked or expired credentials"},
    403: {"description": "The caller's role may not read this, or not of that department"},
    503: {"description": "Kafka or the audit log could not be used; nothing was disclosed"},
}


# ---- shapes ---------------------------------------------------------------------------------


class RunView(BaseModel):
    run_id: str
    connector_id: str
    department: str
    dataset: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    read: int
    published: int
    rejected: int
    reconciled: bool = Field(description="read = published + rejected")
    reasons: dict[str, int] = Field(description="Rejected rows' problems by reason code.")


class RunsView(BaseModel):
    department: str | None = Field(description="The department shown (null: every one).")
    runs: list[RunView]


class ExampleView(BaseModel):
    connector: str
    line: int | None = Field(description="The row's line (file) or number (SQL, push).")
    source_id: str | None
    message: str = Field(description="The connector's message, in English.")
    at: str | None


class ReasonView(BaseModel):
    code: str = Field(description="The reason code (docs/connectors.md, Rejection reasons).")
    field: str = Field(description="The standard's field, the key column, or _row.")
    count: int
    examples: list[ExampleView]


class DatasetRejections(BaseModel):
    dataset: str
    topic: str
    total: int = Field(description="Dead letters read from the topic.")
    reasons: list[ReasonView]


class RejectionsView(BaseModel):
    department: str
    available: list[str] = Field(
        description="The department's datasets: those it ran connectors for or owns."
    )
    datasets: list[DatasetRejections]


class WithdrawalView(BaseModel):
    dataset: str
    department: str
    source_id: str
    version: int
    withdrawn_at: datetime = Field(description="When the department withdrew it.")
    applied_at: datetime | None = Field(description="When the registry applied it.")
    still_withdrawn: bool


class WithdrawalsView(BaseModel):
    department: str | None
    withdrawals: list[WithdrawalView]


class UseView(BaseModel):
    department: str = Field(description="The consuming department.")
    purpose: str
    datasets: list[str] = Field(description="The owner's datasets the requests drew on.")
    served: int
    refused: int
    last_at: datetime


class UsageView(BaseModel):
    department: str
    start: datetime
    end: datetime
    datasets: list[str] = Field(description="The datasets the department owns.")
    uses: list[UseView]


# ---- who may read which department ----------------------------------------------------------


def department_for(identity: Identity, asked: str | None, what: str) -> str | None:
    """The department the caller reads: a publisher its own (another is refused); an admin
    the one asked for, or every one (None)."""
    if identity.role == "admin":
        return asked
    if identity.role in PUBLISHERS and identity.department is not None:
        if asked is not None and asked != identity.department:
            raise PermissionDeniedError(
                f"a publisher of {identity.department!r} may read only its own department's "
                f"{what}, not {asked!r}'s"
            )
        return identity.department
    raise PermissionDeniedError(f"role {identity.role!r} may not read connectors' {what}")


def _named(department: str | None) -> str:
    return department or "every department"


# ---- work, shared by the API and the console ------------------------------------------------


def runs_of(
    session: Session,
    identity: Identity,
    decision: audit.Decision,
    *,
    department: str | None = None,
    dataset: str | None = None,
    limit: int = 100,
) -> RunsView:
    """The runs the caller may see, newest first."""
    scope = department_for(identity, department, "connector runs")
    found = connector_runs.runs(session, department=scope, dataset=dataset, limit=limit)
    decision.reason = f"{len(found)} connector runs of {_named(scope)}"
    return RunsView(
        department=scope,
        runs=[
            RunView(
                run_id=r.run_id,
                connector_id=r.connector_id,
                department=r.department,
                dataset=r.dataset,
                status=r.status,
                started_at=r.started_at,
                finished_at=r.finished_at,
                read=r.read,
                published=r.published,
                rejected=r.rejected,
                reconciled=r.reconciled,
                reasons=r.reasons,
            )
            for r in found
        ],
    )


def rejections_of(
    state: AppState,
    session: Session,
    identity: Identity,
    decision: audit.Decision,
    *,
    department: str | None = None,
    dataset: str | None = None,
    connector: str | None = None,
    examples: int = 5,
) -> RejectionsView:
    """The publisher's dead letters by reason (of ``dataset``, else of every dataset its
    department ran connectors for or owns), opened with the department's keys."""
    if identity.role not in PUBLISHERS:
        raise PermissionDeniedError(
            f"role {identity.role!r} may not read rejected rows: a department's dead letters "
            "are its publishers' alone"
        )
    scope = department_for(identity, department, "rejected rows")
    assert scope is not None  # a publisher's own department
    available = sorted(
        set(connector_runs.datasets(session, scope)) | set(data_usage.owned(session, scope))
    )
    wanted = [dataset] if dataset is not None else available
    end_reads(session)  # Kafka may be slow: hold no database connection while reading it
    shown: list[DatasetRejections] = []
    for name in wanted:
        topic = dlq_topic(scope, name)
        found = deadletters.summarize(
            topic,
            deadletters.dead_letters(
                state.settings.kafka.bootstrap, state.cipher, scope, name, connector=connector
            ),
            examples=examples,
        )
        shown.append(
            DatasetRejections(
                dataset=name,
                topic=topic,
                total=found.total,
                reasons=[
                    ReasonView(
                        code=g.code,
                        field=g.field,
                        count=g.count,
                        examples=[
                            ExampleView(
                                connector=e.connector,
                                line=e.line,
                                source_id=e.source_id,
                                message=e.message,
                                at=e.at,
                            )
                            for e in g.examples
                        ],
                    )
                    for g in found.reasons
                ],
            )
        )
    decision.reason = (
        f"rejected rows of {scope}: "
        + (", ".join(f"{d.dataset} {d.total}" for d in shown) or "no dataset")
    )[:500]
    return RejectionsView(department=scope, available=available, datasets=shown)


def withdrawals_of(
    session: Session,
    identity: Identity,
    decision: audit.Decision,
    *,
    department: str | None = None,
    dataset: str | None = None,
    limit: int = 200,
) -> WithdrawalsView:
    """The withdrawn records the caller may see, newest first."""
    scope = department_for(identity, department, "withdrawals")
    found = registry_withdrawals.withdrawals(
        session, department=scope, dataset=dataset, limit=limit
    )
    decision.reason = f"{len(found)} withdrawals of {_named(scope)}"
    return WithdrawalsView(
        department=scope,
        withdrawals=[
            WithdrawalView(
                dataset=w.dataset,
                department=w.department,
                source_id=w.source_id,
                version=w.version,
                withdrawn_at=w.withdrawn_at,
                applied_at=w.applied_at,
                still_withdrawn=w.still_withdrawn,
            )
            for w in found
        ],
    )


def usage_of(
    session: Session,
    identity: Identity,
    decision: audit.Decision,
    *,
    department: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> UsageView:
    """Who used the department's datasets in the period (default: the last 30 days)."""
    scope = department_for(identity, department, "data use")
    if scope is None:
        raise ValidationError(
            [("department", "department.required", "name the department whose data use to read")]
        )
    period = period_of(start, end, now=utcnow())
    uses = data_usage.usage(session, period, scope)
    decision.reason = (
        f"use of {scope}'s data, {period.start:%Y-%m-%dT%H:%M}Z to {period.end:%Y-%m-%dT%H:%M}Z"
    )
    return UsageView(
        department=scope,
        start=period.start,
        end=period.end,
        datasets=data_usage.owned(session, scope),
        uses=[
            UseView(
                department=u.department,
                purpose=u.purpose,
                datasets=list(u.datasets),
                served=u.served,
                refused=u.refused,
                last_at=u.last_at,
            )
            for u in uses
        ],
    )


# ---- routes -----------------------------------------------------------------------------

Department = Annotated[
    str | None,
    Query(max_length=100, pattern=NAME, description="Default: the caller's own."),
]
Dataset = Annotated[str | None, Query(max_length=100, pattern=NAME)]


@router.get(
    "/runs",
    response_model=RunsView,
    summary="A department's connector runs and their reconciliation",
    responses=_ERRORS,
)
def get_runs(
    request: Request,
    department: Department = None,
    dataset: Dataset = None,
    limit: Annotated[int, Query(ge=1, le=connector_runs.MAX_RUNS)] = 100,
) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "connectors.runs", dataset=dataset)

    def work(session: Session, identity: Identity) -> RunsView:
        return runs_of(
            session, identity, decision, department=department, dataset=dataset, limit=limit
        )

    return run_audited_read(state, request, decision, work)


@router.get(
    "/rejections",
    response_model=RejectionsView,
    summary="The publisher's rejected rows by reason, with the row and the field",
    description="Reads the department's dead letters (dlq.<department>.<dataset>) and opens "
    "them with its keys; each reason gives example rows (connector, line, source id, "
    "message), never a row's values. Publishers only.",
    responses=_ERRORS,
)
def get_rejections(
    request: Request,
    dataset: Dataset = None,
    department: Department = None,
    connector: Annotated[str | None, Query(max_length=100)] = None,
    examples: Annotated[int, Query(ge=0, le=50)] = 5,
) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "connectors.rejections", dataset=dataset)

    def work(session: Session, identity: Identity) -> RejectionsView:
        return rejections_of(
            state,
            session,
            identity,
            decision,
            department=department,
            dataset=dataset,
            connector=connector,
            examples=examples,
        )

    return run_audited_read(state, request, decision, work)


@router.get(
    "/withdrawals",
    response_model=WithdrawalsView,
    summary="A department's withdrawn records",
    responses=_ERRORS,
)
def get_withdrawals(
    request: Request,
    department: Department = None,
    dataset: Dataset = None,
    limit: Annotated[int, Query(ge=1, le=registry_withdrawals.MAX_WITHDRAWALS)] = 200,
) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "connectors.withdrawals", dataset=dataset)

    def work(session: Session, identity: Identity) -> WithdrawalsView:
        return withdrawals_of(
            session, identity, decision, department=department, dataset=dataset, limit=limit
        )

    return run_audited_read(state, request, decision, work)


@router.get(
    "/usage",
    response_model=UsageView,
    summary="Who used a department's data, for which purposes",
    description="The data requests (audit entries stating a purpose) that drew on the "
    "datasets the department owns, by consuming department and purpose, over [from, to) "
    "(default: the last 30 days).",
    responses=_ERRORS,
)
def get_usage(
    request: Request,
    department: Department = None,
    start: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="Included: YYYY-MM-DD or ISO 8601."),
    ] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
) -> Response:
    state, request_id = request_context(request)
    decision = pending(request_id, "connectors.usage")

    def work(session: Session, identity: Identity) -> UsageView:
        return usage_of(session, identity, decision, department=department, start=start, end=end)

    return run_audited_read(state, request, decision, work)
