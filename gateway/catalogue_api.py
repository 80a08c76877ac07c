"""The access catalogue over HTTP: datasets for every user; purposes and grants for admins.

Reads are authorized by role (:func:`gateway.access.authorize`, one audit entry).
Each change is made and audited in one transaction (:func:`gateway.audited.run_audited`):
the entry (``catalogue.purpose.add``, ``catalogue.purpose.deactivate``,
``catalogue.grant.add``, ``catalogue.grant.revoke``) names the purpose or the
grant, and a refused change is audited as a denial with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from exchange.access import catalogue
from exchange.access.masking import MaskKind
from exchange.access.policy import CONSTRAINTS
from exchange.audit import Decision
from exchange.core.db import transaction, utcnow
from exchange.core.models import Grant, Purpose
from exchange.identity.apikeys import Identity
from gateway.access import authorize
from gateway.audited import pending, run_audited
from gateway.deps import RequestIdDep, StateDep
from gateway.params import SQL_INT_MAX

router = APIRouter(prefix="/v1", tags=["catalogue"])

ADMIN = frozenset({"admin"})
_DENIED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, malformed, wrong, revoked or expired credentials"},
    403: {"description": "The caller's role may not do this"},
    503: {"description": "The audit log could not be written; nothing was changed or disclosed"},
}
EVERYONE = frozenset(catalogue.ROLES)


class FieldView(BaseModel):
    name: str
    type: str
    sensitivity: str
    identifier: bool
    encrypted: bool = Field(description="Encrypted by connectors; decrypted only for a grant.")
    kind: MaskKind = Field(description="What kind of field it is (identifier, name, date, ...).")
    mask: str = Field(
        description="The masking style the standard declares: how the field looks when a "
        "grant shows it masked (redact, keep_last:N, keep_first:N, year_only, initial_only, "
        "token)."
    )


class DatasetView(BaseModel):
    name: str
    version: int
    topic: str
    division_field: str | None = Field(
        description="The field the division_prefix row constraint looks at."
    )
    fields: list[FieldView]


_REQUIRED = "Whether a request stating the purpose must give a case reference (case_ref)."
_PATTERN = (
    "A regular expression the whole case reference must match; null: any case reference "
    "that does not look like an identity or phone number."
)


class PurposeCreate(BaseModel):
    code: str = Field(max_length=100, examples=["minimum-living-allowance"])
    title: str = Field(max_length=255)
    legal_basis: str | None = None
    case_ref_required: bool = Field(default=False, description=_REQUIRED)
    case_ref_pattern: str | None = Field(default=None, max_length=200, description=_PATTERN)


class CaseRefRule(BaseModel):
    case_ref_required: bool = Field(description=_REQUIRED)
    case_ref_pattern: str | None = Field(default=None, max_length=200, description=_PATTERN)


class PurposeView(BaseModel):
    code: str
    title: str
    legal_basis: str | None
    active: bool
    case_ref_required: bool = Field(description=_REQUIRED)
    case_ref_pattern: str | None = Field(description=_PATTERN)
    created_at: datetime


class GrantCreate(BaseModel):
    department: str = Field(max_length=100, description="The consuming department.")
    role: str = Field(description=f"One of {', '.join(catalogue.GRANTEE_ROLES)}.")
    dataset: str
    fields: dict[str, str] = Field(description="Field name to 'full' or 'masked'.")
    purposes: list[str]
    row_constraints: dict[str, str] = Field(
        default_factory=dict, description=f"Known: {', '.join(sorted(CONSTRAINTS))}."
    )
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    note: str | None = None


class GrantView(BaseModel):
    id: int
    department: str
    role: str
    dataset: str
    fields: dict[str, str]
    purposes: list[str]
    row_constraints: dict[str, object]
    valid_from: datetime
    valid_until: datetime | None
    note: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    origin: str = Field(
        default="direct",
        description="direct (a central administrator's) or request (an owner's approval).",
    )
    sharing_request_id: int | None = None


def purpose_view(p: Purpose) -> PurposeView:
    return PurposeView(
        code=p.code,
        title=p.title,
        legal_basis=p.legal_basis,
        active=p.active,
        case_ref_required=p.case_ref_required,
        case_ref_pattern=p.case_ref_pattern,
        created_at=p.created_at,
    )


def grant_view(g: Grant) -> GrantView:
    return GrantView(
        id=g.id,
        department=g.grantee_department,
        role=g.grantee_role,
        dataset=g.dataset,
        fields=dict(g.fields),
        purposes=list(g.purposes),
        row_constraints=dict(g.row_constraints or {}),
        valid_from=g.valid_from,
        valid_until=g.valid_until,
        note=g.note,
        created_at=g.created_at,
        created_by=g.created_by,
        revoked_at=g.revoked_at,
        revoked_by=g.revoked_by,
        origin=g.origin,
        sharing_request_id=g.sharing_request_id,
    )


def utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get(
    "/catalogue/datasets",
    response_model=list[DatasetView],
    summary="The datasets grants may name: fields, sensitivity, identifiers, masking",
    responses=_DENIED,
)
def list_datasets(request: Request, state: StateDep) -> list[DatasetView]:
    authorize(state, request, action="catalogue.datasets", roles=EVERYONE)
    return [
        DatasetView(
            name=d.name,
            version=d.version,
            topic=d.topic,
            division_field=d.division_field,
            fields=[
                FieldView(
                    name=f.name,
                    type=f.type,
                    sensitivity=f.sensitivity.value,
                    identifier=f.identifier,
                    encrypted=f.encrypted,
                    kind=f.kind,
                    mask=str(f.mask),
                )
                for f in d.fields
            ],
        )
        for d in catalogue.datasets()
    ]


@router.get(
    "/admin/purposes",
    response_model=list[PurposeView],
    summary="List purposes",
    responses=_DENIED,
)
def list_purposes(request: Request, state: StateDep) -> list[PurposeView]:
    authorize(state, request, action="catalogue.purpose.list", roles=ADMIN)
    with transaction(state.sessions) as session:
        return [purpose_view(p) for p in catalogue.list_purposes(session)]


@router.post(
    "/admin/purposes",
    response_model=PurposeView,
    status_code=201,
    summary="Add a purpose (legal basis) requests may state",
    responses={
        **_DENIED,
        400: {"description": "Invalid code or title"},
        409: {"description": "Exists"},
    },
)
def add_purpose(
    body: PurposeCreate,
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> PurposeView:
    decision = pending(request_id, "catalogue.purpose.add")

    def work(session: Session, identity: Identity) -> PurposeView:
        del identity
        purpose = catalogue.add_purpose(
            session,
            body.code,
            body.title,
            body.legal_basis,
            case_ref_required=body.case_ref_required,
            case_ref_pattern=body.case_ref_pattern,
        )
        decision.status, decision.reason = 201, f"purpose {purpose.code!r} added"
        return purpose_view(purpose)

    return run_audited(state, request, decision, work, roles=ADMIN)


@router.put(
    "/admin/purposes/{code}/case-ref",
    response_model=PurposeView,
    summary="Say whether requests stating the purpose must give a case reference, and its pattern",
    responses={
        **_DENIED,
        400: {"description": "The pattern is not a regular expression"},
        404: {"description": "No such purpose"},
    },
)
def set_case_ref_rule(
    code: Annotated[str, Path(max_length=100)],
    body: CaseRefRule,
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> PurposeView:
    decision = pending(request_id, "catalogue.purpose.case_ref")

    def work(session: Session, identity: Identity) -> PurposeView:
        del identity
        purpose = catalogue.set_case_ref_rule(
            session, code, required=body.case_ref_required, pattern=body.case_ref_pattern
        )
        decision.reason = (
            f"purpose {code!r} case reference: "
            + ("required" if purpose.case_ref_required else "optional")
            + (f", pattern {purpose.case_ref_pattern}" if purpose.case_ref_pattern else "")
        )
        return purpose_view(purpose)

    return run_audited(state, request, decision, work, roles=ADMIN)


@router.delete(
    "/admin/purposes/{code}",
    response_model=PurposeView,
    summary="Deactivate a purpose: no request may state it, no new grant may serve it",
    responses={**_DENIED, 404: {"description": "No such purpose"}},
)
def deactivate_purpose(
    code: Annotated[str, Path(max_length=100)],
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> PurposeView:
    decision = pending(request_id, "catalogue.purpose.deactivate")

    def work(session: Session, identity: Identity) -> PurposeView:
        del identity
        purpose = catalogue.deactivate_purpose(session, code)
        decision.reason = f"purpose {code!r} deactivated"
        return purpose_view(purpose)

    return run_audited(state, request, decision, work, roles=ADMIN)


@router.get(
    "/admin/grants", response_model=list[GrantView], summary="List grants", responses=_DENIED
)
def list_grants(
    request: Request,
    state: StateDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked grants.")] = False,
) -> list[GrantView]:
    authorize(state, request, action="catalogue.grant.list", roles=ADMIN)
    with transaction(state.sessions) as session:
        return [
            grant_view(g) for g in catalogue.list_grants(session, include_revoked=include_revoked)
        ]


@router.post(
    "/admin/grants",
    response_model=GrantView,
    status_code=201,
    summary="Add a grant, checked against the catalogue",
    responses={
        **_DENIED,
        400: {"description": "The grant names something the catalogue does not hold"},
        422: {
            "description": "The grant, with the role's other grants for a purpose, would break "
            "the disclosure rule (disclosure_rule; docs/security.md)"
        },
    },
)
def add_grant(
    body: GrantCreate,
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> GrantView:
    decision = pending(request_id, "catalogue.grant.add", dataset=body.dataset[:100])
    spec = catalogue.GrantSpec(
        department=body.department,
        role=body.role,
        dataset=body.dataset,
        fields=body.fields,
        purposes=body.purposes,
        row_constraints=body.row_constraints,
        valid_from=utc(body.valid_from),
        valid_until=utc(body.valid_until),
        note=body.note,
    )

    add = adding(spec, decision)
    return run_audited(state, request, decision, lambda s, i: grant_view(add(s, i)), roles=ADMIN)


def adding(spec: catalogue.GrantSpec, decision: Decision) -> Callable[[Session, Identity], Grant]:
    """The work of a direct grant, as the API and the web console run it: checked against
    the catalogue and stored, its entry naming it."""

    def work(session: Session, identity: Identity) -> Grant:
        grant = catalogue.add_grant(session, spec, created_by=identity.actor, at=utcnow())
        # A central administrator's grant, beside those the owners' approvals create
        # (exchange.access.sharing): for bootstrapping, and said so in the log.
        decision.status, decision.reason = 201, "direct (bootstrapping) " + catalogue.summary(grant)
        decision.fields = sorted(grant.fields)
        return grant

    return work


@router.delete(
    "/admin/grants/{grant_id}",
    response_model=GrantView,
    summary="Revoke a grant (it stays on record)",
    responses={
        **_DENIED,
        404: {"description": "No such grant"},
        409: {"description": "Already revoked"},
    },
)
def revoke_grant(
    grant_id: Annotated[int, Path(ge=1, le=SQL_INT_MAX, description="The grant's id.")],
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
) -> GrantView:
    decision = pending(request_id, "catalogue.grant.revoke")

    revoke = revoking(grant_id, decision)
    return run_audited(state, request, decision, lambda s, i: grant_view(revoke(s, i)), roles=ADMIN)


def revoking(grant_id: int, decision: Decision) -> Callable[[Session, Identity], Grant]:
    """The work of revoking a grant (the API's and the web console's)."""

    def work(session: Session, identity: Identity) -> Grant:
        grant = catalogue.revoke_grant(session, grant_id, by=identity.actor, at=utcnow())
        decision.dataset = grant.dataset
        decision.reason = "revoked " + catalogue.summary(grant)
        return grant

    return work
