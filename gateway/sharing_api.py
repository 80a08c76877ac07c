"""The resource catalogue and sharing requests over HTTP (docs/sharing.md).

* ``/v1/catalogue/resources``: every authenticated user reads the catalogue (it is
  public to the exchange's users); the central administrator registers a dataset
  with its owner, the owner's department administrator edits its entries
  (``catalogue.resource.set``).
* ``/v1/sharing/...``: a consuming department's administrator submits, withdraws
  and renews requests; the owning department's data steward approves, narrows or
  refuses them; both departments see a request and its history, other
  departments do not (404); expiring grants are listed in advance.

Reads are authorized by role (:func:`gateway.access.authorize`, one audit entry);
each change is made and audited in one transaction
(:func:`gateway.audited.run_audited`), with actions ``sharing.request.submit``,
``.approve``, ``.narrow``, ``.refuse``, ``.withdraw`` and ``.renew``: the entry names
the dataset, and its reason the request (:func:`exchange.access.sharing.summary`);
a refused step is audited as a denial with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from exchange.access import catalogue, resources, sharing
from exchange.access.policy import CONSTRAINTS
from exchange.audit import Decision
from exchange.core.db import transaction, utcnow
from exchange.core.models import Grant, SharingRequest, SharingRequestEvent
from exchange.identity.apikeys import Identity
from gateway.access import authorize
from gateway.audited import pending, run_audited
from gateway.deps import RequestIdDep, StateDep
from gateway.params import SQL_INT_MAX

router = APIRouter(prefix="/v1", tags=["sharing"])

EVERYONE = frozenset(catalogue.ROLES)
EDITORS = frozenset({"admin", "department_admin"})
SHARING = frozenset({"admin", "department_admin", "data_steward"})
_DENIED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, wrong, revoked or expired credentials"},
    403: {"description": "The caller's role or department may not do this"},
    503: {"description": "The audit log could not be written; nothing was changed or disclosed"},
}
_STEP: dict[int | str, dict[str, Any]] = {
    **_DENIED,
    404: {"description": "No such request, or one of another department"},
    409: {"description": "The request is not in a state that allows this step"},
}
RequestId = Annotated[int, Path(ge=1, le=SQL_INT_MAX, description="The request's id.")]
DatasetName = Annotated[str, Path(max_length=100, description="A dataset (standard) name.")]


class ResourceFieldView(BaseModel):
    name: str
    type: str
    sensitivity: str
    identifier: bool
    encrypted: bool
    mask: str = Field(description="The masking style the standard declares.")
    note: str = Field(description="The owner's description of the field.")


class ResourceView(BaseModel):
    dataset: str
    owner_department: str
    title: str
    description: str
    update_frequency: str = Field(description=", ".join(resources.FREQUENCIES))
    sharing_type: str = Field(description=", ".join(resources.SHARING_TYPES))
    contact: str
    fields: list[ResourceFieldView]
    updated_at: datetime
    updated_by: str


class ResourceSet(BaseModel):
    """What to set; a value left out stays as it is (a new entry needs owner, title,
    frequency and sharing)."""

    owner: str | None = Field(
        default=None, max_length=100, description="The owner department (admin only)."
    )
    title: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    frequency: str | None = Field(default=None, description=", ".join(resources.FREQUENCIES))
    sharing: str | None = Field(default=None, description=", ".join(resources.SHARING_TYPES))
    contact: str | None = Field(default=None, max_length=255)
    field_notes: dict[str, str] = Field(
        default_factory=dict, description="Field name to a note; an empty note removes it."
    )


class RequestCreate(BaseModel):
    dataset: str = Field(max_length=100)
    fields: dict[str, str] = Field(description="Field name to 'full' or 'masked'.")
    purposes: list[str] = Field(description="Purpose codes of the catalogue.")
    legal_basis: str = Field(max_length=sharing.TEXT_MAX)
    justification: str = Field(max_length=sharing.TEXT_MAX)
    row_constraints: dict[str, str] = Field(
        default_factory=dict, description=f"Known: {', '.join(sorted(CONSTRAINTS))}."
    )
    duration_days: int = Field(ge=sharing.MIN_DAYS, le=sharing.MAX_DAYS)
    grantee_role: str = Field(
        default="caseworker", description=f"One of {', '.join(catalogue.GRANTEE_ROLES)}."
    )


class Narrowing(BaseModel):
    """What the steward grants; a part left out is granted as asked."""

    fields: dict[str, str] | None = Field(
        default=None, description="Fewer fields, or 'full' made 'masked'."
    )
    row_constraints: dict[str, str] | None = Field(
        default=None, description="Every constraint asked, the same or tighter; more may be added."
    )
    days: int | None = Field(default=None, ge=sharing.MIN_DAYS, le=sharing.MAX_DAYS)
    reason: str | None = Field(default=None, max_length=sharing.TEXT_MAX)


class Refusal(BaseModel):
    reason: str = Field(min_length=1, max_length=sharing.TEXT_MAX)


class EventView(BaseModel):
    at: datetime
    actor: str
    department: str
    action: str
    detail: dict[str, Any]


class RequestView(BaseModel):
    id: int
    dataset: str
    owner_department: str
    requester_department: str
    grantee_role: str
    requested_by: str
    fields: dict[str, str]
    purposes: list[str]
    legal_basis: str
    justification: str
    row_constraints: dict[str, Any]
    duration_days: int
    status: str = Field(description=", ".join(sharing.STATUSES))
    submitted_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    granted_fields: dict[str, str] | None
    granted_row_constraints: dict[str, Any] | None
    granted_days: int | None
    grant_id: int | None
    renewal_of: int | None
    history: list[EventView] = Field(
        default_factory=list, description="Every step, oldest first (in a single request)."
    )


class ExpiringGrant(BaseModel):
    grant_id: int
    department: str
    role: str
    dataset: str
    fields: dict[str, str]
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    origin: str = Field(description="direct (the central administrator's) or request.")
    sharing_request_id: int | None


def resource_view(r: resources.Resource) -> ResourceView:
    return ResourceView(
        dataset=r.dataset,
        owner_department=r.owner_department,
        title=r.title,
        description=r.description,
        update_frequency=r.update_frequency,
        sharing_type=r.sharing_type,
        contact=r.contact,
        fields=[
            ResourceFieldView(
                name=f.name,
                type=f.type,
                sensitivity=f.sensitivity,
                identifier=f.identifier,
                encrypted=f.encrypted,
                mask=f.mask,
                note=f.note,
            )
            for f in r.fields
        ],
        updated_at=r.updated_at,
        updated_by=r.updated_by,
    )


def request_view(r: SharingRequest, events: list[SharingRequestEvent] | None = None) -> RequestView:
    return RequestView(
        id=r.id,
        dataset=r.dataset,
        owner_department=r.owner_department,
        requester_department=r.requester_department,
        grantee_role=r.grantee_role,
        requested_by=r.requested_by,
        fields=dict(r.fields),
        purposes=list(r.purposes),
        legal_basis=r.legal_basis,
        justification=r.justification,
        row_constraints=dict(r.row_constraints or {}),
        duration_days=r.duration_days,
        status=r.status,
        submitted_at=r.submitted_at,
        decided_at=r.decided_at,
        decided_by=r.decided_by,
        decision_reason=r.decision_reason,
        granted_fields=dict(r.granted_fields) if r.granted_fields is not None else None,
        granted_row_constraints=(
            dict(r.granted_row_constraints) if r.granted_row_constraints is not None else None
        ),
        granted_days=r.granted_days,
        grant_id=r.grant_id,
        renewal_of=r.renewal_of,
        history=[
            EventView(
                at=e.at, actor=e.actor, department=e.department, action=e.action, detail=e.detail
            )
            for e in events or []
        ],
    )


def expiring_view(g: Grant) -> ExpiringGrant:
    assert g.valid_until is not None
    return ExpiringGrant(
        grant_id=g.id,
        department=g.grantee_department,
        role=g.grantee_role,
        dataset=g.dataset,
        fields=dict(g.fields),
        purposes=list(g.purposes),
        valid_from=g.valid_from,
        valid_until=g.valid_until,
        origin=g.origin,
        sharing_request_id=g.sharing_request_id,
    )


def actor_of(identity: Identity) -> sharing.Actor:
    return sharing.Actor(identity.actor, identity.department, identity.role)


# ---- the resource catalogue -----------------------------------------------------------------


@router.get(
    "/catalogue/resources",
    response_model=list[ResourceView],
    summary="The resource catalogue: each dataset's owner, fields and sharing type",
    responses=_DENIED,
)
def list_resources(request: Request, state: StateDep) -> list[ResourceView]:
    authorize(state, request, action="catalogue.resource.list", roles=EVERYONE)
    with transaction(state.sessions) as session:
        return [resource_view(r) for r in resources.list_resources(session)]


@router.get(
    "/catalogue/resources/{dataset}",
    response_model=ResourceView,
    summary="One dataset's entry in the resource catalogue",
    responses={**_DENIED, 404: {"description": "Not in the resource catalogue"}},
)
def show_resource(dataset: DatasetName, request: Request, state: StateDep) -> ResourceView:
    authorize(
        state, request, action="catalogue.resource.show", roles=EVERYONE, dataset=dataset[:100]
    )
    with transaction(state.sessions) as session:
        return resource_view(resources.view(resources.get(session, dataset)))


@router.put(
    "/catalogue/resources/{dataset}",
    response_model=ResourceView,
    summary="Register a dataset (admin) or edit its entry (its owner's department admin)",
    responses={**_DENIED, 400: {"description": "Unknown dataset, department or field"}},
)
def set_resource(
    dataset: DatasetName,
    body: ResourceSet,
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> ResourceView:
    decision = pending(request_id, "catalogue.resource.set", dataset=dataset)
    change = resources.ResourceChange(
        owner=body.owner,
        title=body.title,
        description=body.description,
        frequency=body.frequency,
        sharing=body.sharing,
        contact=body.contact,
        field_notes=body.field_notes,
    )

    return run_audited(state, request, decision, setting(dataset, change, decision), roles=EDITORS)


# ---- sharing requests -------------------------------------------------------------------------


def _step(
    state: StateDep,
    request: Request,
    request_id: str,
    action: str,
    number: int,
    do: Callable[[Session, sharing.Actor], SharingRequest],
    *,
    status: int = 200,
) -> RequestView:
    """Run one step on request ``number`` and audit it: the entry names the dataset, and its
    reason the request (what it became, or why the step was refused)."""
    decision = pending(request_id, action)
    return run_audited(
        state, request, decision, stepping(decision, number, do, status), roles=SHARING
    )


def stepping(
    decision: Decision,
    number: int,
    do: Callable[[Session, sharing.Actor], SharingRequest],
    status: int = 200,
) -> Callable[[Session, Identity], RequestView]:
    """The work of one step on request ``number`` (the API's and the web console's): the
    entry names the dataset, and its reason the request (what it became)."""

    def work(session: Session, identity: Identity) -> RequestView:
        before = session.get(SharingRequest, number)
        if before is not None:
            decision.dataset = before.dataset
        done = do(session, actor_of(identity))
        decision.status, decision.reason = status, sharing.summary(done)
        decision.dataset = done.dataset
        return request_view(done, sharing.history(session, done.id))

    return work


def submitting(
    spec: sharing.RequestSpec, decision: Decision
) -> Callable[[Session, Identity], RequestView]:
    """The work of submitting a request (the API's and the web console's)."""

    def work(session: Session, identity: Identity) -> RequestView:
        done = sharing.submit(session, actor_of(identity), spec, at=utcnow())
        decision.status, decision.reason = 201, sharing.summary(done)
        return request_view(done, sharing.history(session, done.id))

    return work


def narrowing(
    number: int,
    fields: dict[str, str] | None,
    row_constraints: dict[str, str] | None,
    days: int | None,
    reason: str | None,
) -> Callable[[Session, sharing.Actor], SharingRequest]:
    """Narrow request ``number``: a part left out (None) is granted as asked."""

    def do(session: Session, actor: sharing.Actor) -> SharingRequest:
        found = session.get(SharingRequest, number)
        ask = sharing.asked(found) if found is not None else sharing.Terms({}, {}, 0)
        terms = sharing.Terms(
            fields if fields is not None else ask.fields,
            row_constraints if row_constraints is not None else ask.row_constraints,
            days if days is not None else ask.days,
        )
        return sharing.narrow(session, actor, number, terms, at=utcnow(), reason=reason)

    return do


def setting(
    dataset: str, change: resources.ResourceChange, decision: Decision
) -> Callable[[Session, Identity], ResourceView]:
    """The work of registering or editing a catalogue entry (the API's and the console's)."""

    def work(session: Session, identity: Identity) -> ResourceView:
        editor = resources.Editor(identity.actor, identity.department, identity.role)
        row = resources.set_resource(session, editor, dataset, change, at=utcnow())
        decision.reason = resources.summary(row)
        return resource_view(resources.view(row))

    return work


@router.post(
    "/sharing/requests",
    response_model=RequestView,
    status_code=201,
    summary="Request a dataset's fields for a purpose (a department administrator)",
    responses={
        **_DENIED,
        400: {"description": "Not in the resource catalogue, not shared, or invalid terms"},
        409: {"description": "An open request for the same dataset and purposes exists"},
        422: {"description": "Granted on request, the grant would break the disclosure rule"},
    },
)
def submit(
    body: RequestCreate, request: Request, state: StateDep, request_id: RequestIdDep
) -> RequestView:
    decision = pending(request_id, "sharing.request.submit", dataset=body.dataset[:100])
    spec = sharing.RequestSpec(
        dataset=body.dataset,
        fields=body.fields,
        purposes=body.purposes,
        legal_basis=body.legal_basis,
        justification=body.justification,
        duration_days=body.duration_days,
        row_constraints=body.row_constraints,
        grantee_role=body.grantee_role,
    )

    return run_audited(state, request, decision, submitting(spec, decision), roles=SHARING)


@router.get(
    "/sharing/requests",
    response_model=list[RequestView],
    summary="The requests of the caller's department, as requester and as owner",
    responses=_DENIED,
)
def list_requests(
    request: Request,
    state: StateDep,
    status: Annotated[
        str | None, Query(max_length=20, description=", ".join(sharing.STATUSES))
    ] = None,
) -> list[RequestView]:
    identity = authorize(state, request, action="sharing.request.list", roles=SHARING)
    with transaction(state.sessions) as session:
        found = sharing.list_requests(session, actor_of(identity), status=status)
        return [request_view(r) for r in found]


@router.get(
    "/sharing/requests/{number}",
    response_model=RequestView,
    summary="A request and its history",
    responses={**_DENIED, 404: {"description": "No such request, or one of another department"}},
)
def show_request(number: RequestId, request: Request, state: StateDep) -> RequestView:
    identity = authorize(
        state, request, action="sharing.request.show", roles=SHARING, target=f"request {number}"
    )
    with transaction(state.sessions) as session:
        found = sharing.get(session, actor_of(identity), number)
        return request_view(found, sharing.history(session, found.id))


@router.post(
    "/sharing/requests/{number}/approve",
    response_model=RequestView,
    summary="Approve a request as asked (the owner's data steward); creates the grant",
    responses={
        **_STEP,
        422: {"description": "The grant would break the disclosure rule; still submitted"},
    },
)
def approve(
    number: RequestId, request: Request, state: StateDep, request_id: RequestIdDep
) -> RequestView:
    return _step(
        state,
        request,
        request_id,
        "sharing.request.approve",
        number,
        lambda s, a: sharing.approve(s, a, number, at=utcnow()),
    )


@router.post(
    "/sharing/requests/{number}/narrow",
    response_model=RequestView,
    summary="Approve less than asked (the owner's data steward); anything wider is refused",
    responses={
        **_STEP,
        400: {"description": "The terms are wider than asked in some way"},
        422: {"description": "The grant would break the disclosure rule; still submitted"},
    },
)
def narrow(
    number: RequestId,
    body: Narrowing,
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> RequestView:
    do = narrowing(number, body.fields, body.row_constraints, body.days, body.reason)
    return _step(state, request, request_id, "sharing.request.narrow", number, do)


@router.post(
    "/sharing/requests/{number}/refuse",
    response_model=RequestView,
    summary="Refuse a request with a reason (the owner's data steward)",
    responses=_STEP,
)
def refuse(
    number: RequestId,
    body: Refusal,
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> RequestView:
    return _step(
        state,
        request,
        request_id,
        "sharing.request.refuse",
        number,
        lambda s, a: sharing.refuse(s, a, number, body.reason, at=utcnow()),
    )


@router.post(
    "/sharing/requests/{number}/withdraw",
    response_model=RequestView,
    summary="Withdraw a submitted request (the requesting department's administrator)",
    responses=_STEP,
)
def withdraw(
    number: RequestId, request: Request, state: StateDep, request_id: RequestIdDep
) -> RequestView:
    return _step(
        state,
        request,
        request_id,
        "sharing.request.withdraw",
        number,
        lambda s, a: sharing.withdraw(s, a, number, at=utcnow()),
    )


@router.post(
    "/sharing/requests/{number}/renew",
    response_model=RequestView,
    status_code=201,
    summary="Renew a granted request: a new request with the terms granted, decided as any",
    responses=_STEP,
)
def renew(
    number: RequestId, request: Request, state: StateDep, request_id: RequestIdDep
) -> RequestView:
    return _step(
        state,
        request,
        request_id,
        "sharing.request.renew",
        number,
        lambda s, a: sharing.renew(s, a, number, at=utcnow()),
        status=201,
    )


@router.get(
    "/sharing/grants/expiring",
    response_model=list[ExpiringGrant],
    summary="Grants ending soon: the caller's department's, and those of its datasets",
    responses=_DENIED,
)
def expiring(
    request: Request,
    state: StateDep,
    within_days: Annotated[int, Query(ge=1, le=sharing.MAX_DAYS)] = 30,
) -> list[ExpiringGrant]:
    identity = authorize(state, request, action="sharing.grants.expiring", roles=SHARING)
    with transaction(state.sessions) as session:
        found = sharing.expiring(session, actor_of(identity), at=utcnow(), within_days=within_days)
        return [expiring_view(g) for g in found]
