"""Sharing requests: a consuming department asks, the owning department decides.

The workflow (docs/sharing.md tells it for both sides):

* A consuming department's administrator (role ``department_admin``) submits a
  request for a dataset of the resource catalogue (:mod:`exchange.access.resources`):
  the fields (each ``full`` or ``masked``), the purposes (codes of the catalogue),
  the legal basis, a justification, optional row constraints, a duration in days
  (:data:`MIN_DAYS` to :data:`MAX_DAYS`) and the grantee role (``caseworker``).
  A dataset marked ``not_shared``, or not in the resource catalogue, cannot be
  requested; a second open request of the department for the same dataset and
  purposes is refused. A department may request its own department's datasets
  (its caseworkers read through grants like everyone's); its own data steward
  decides, as for any other department.
* A dataset shared ``unconditional`` is granted on submission (status
  ``approved``, decided by :data:`UNCONDITIONAL_RULE`); a ``conditional`` one
  waits (``submitted``) for the owning department's data steward (role
  ``data_steward``), who approves it as asked, narrows it (fewer fields, ``full``
  made ``masked``, added or tighter row constraints, fewer days: anything wider
  than asked is refused, :func:`narrowing_problems`) or refuses it with a reason.
  Only the owner's stewards decide, and never the person who asked.
* Approval creates the grant through :func:`exchange.access.catalogue.add_grant`
  (so the disclosure rule holds: if the grant would break it, the approval fails
  with that error and the request stays submitted), with origin ``request``, valid
  from the decision for the days granted.
* The requester may withdraw a submitted request, and renew a granted one whose
  grant was not revoked (:func:`renew`): a new request with the terms granted,
  decided like any other, whose grant starts when the old one ends (no gap, no overlap), or at
  its decision if the old one has already ended.

Every step appends a :class:`~exchange.core.models.SharingRequestEvent` (the request's
history, seen by both departments); the caller audits it, in the same transaction.
Functions run in the caller's transaction and store nothing when they raise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from exchange.access import catalogue, resources
from exchange.access.policy import DIVISION_PREFIX, LINKED_BY, Mode
from exchange.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from exchange.core.models import (
    CatalogueResource,
    Grant,
    SharingRequest,
    SharingRequestEvent,
    User,
)

MIN_DAYS, MAX_DAYS = 1, 1095
REQUESTER = "department_admin"
STEWARD = "data_steward"
CENTRAL_ADMIN = "admin"
# Who may see requests: the requesting and the owning departments' administrators and
# stewards, and the central administrator (every request).
PARTICIPANTS = frozenset({REQUESTER, STEWARD})
UNCONDITIONAL_RULE = "catalogue:unconditional"

SUBMITTED, APPROVED, NARROWED, REFUSED, WITHDRAWN = (
    "submitted",
    "approved",
    "narrowed",
    "refused",
    "withdrawn",
)
STATUSES = (SUBMITTED, APPROVED, NARROWED, REFUSED, WITHDRAWN)
GRANTED = frozenset({APPROVED, NARROWED})
TEXT_MAX = 10_000


@dataclass(frozen=True)
class Actor:
    """Who acts: the name the audit log gives them, their department and their role."""

    actor: str
    department: str
    role: str


@dataclass(frozen=True)
class RequestSpec:
    """What a consuming department asks for."""

    dataset: str
    fields: Mapping[str, str]
    purposes: Sequence[str]
    legal_basis: str
    justification: str
    duration_days: int
    row_constraints: Mapping[str, str] = field(default_factory=dict)
    grantee_role: str = "caseworker"


@dataclass(frozen=True)
class Terms:
    """What a grant holds of a request: fields and their modes, row constraints, days."""

    fields: Mapping[str, str]
    row_constraints: Mapping[str, str]
    days: int


def asked(request: SharingRequest) -> Terms:
    return Terms(
        dict(request.fields),
        {k: str(v) for k, v in (request.row_constraints or {}).items()},
        request.duration_days,
    )


def granted(request: SharingRequest) -> Terms | None:
    """The terms granted, or None if the request was not granted."""
    if request.status not in GRANTED or request.granted_fields is None:
        return None
    return Terms(
        dict(request.granted_fields),
        {k: str(v) for k, v in (request.granted_row_constraints or {}).items()},
        request.granted_days or request.duration_days,
    )


# ---- narrowing -----------------------------------------------------------------------------


def _tighter(name: str, asked_value: str, granted_value: str) -> bool:
    """Whether a granted row constraint admits no row the asked one does not."""
    if name == DIVISION_PREFIX:
        return granted_value.startswith(asked_value)
    if name == LINKED_BY:
        return granted_value == asked_value or (
            asked_value == "reviewed" and granted_value == "identifier"
        )
    return granted_value == asked_value  # department, and anything else: the same value


def narrowing_problems(ask: Terms, grant: Terms) -> list[tuple[str, str, str]]:
    """Every way ``grant`` is wider than ``ask`` (empty: it is the same or narrower).

    Narrower means: fields a subset of those asked, none ``full`` that was asked
    ``masked``, at least one field; every row constraint asked kept, with the same value
    or a tighter one (a longer ``division_prefix``, ``linked_by`` ``identifier`` for
    ``reviewed``), others may be added; between 1 day and the days asked."""
    problems: list[tuple[str, str, str]] = []
    if not grant.fields:
        problems.append(("fields", "narrow.fields_missing", "a grant names at least one field"))
    for name, mode in sorted(grant.fields.items()):
        where = f"fields.{name}"
        if name not in ask.fields:
            problems.append((where, "narrow.field_added", f"field {name!r} was not asked for"))
        elif mode not in (Mode.FULL.value, Mode.MASKED.value):
            problems.append((where, "narrow.mode_invalid", f"mode {mode!r}: use full or masked"))
        elif mode == Mode.FULL.value and ask.fields[name] == Mode.MASKED.value:
            problems.append(
                (where, "narrow.field_widened", f"field {name!r} was asked masked, not full")
            )
    for name, value in sorted(ask.row_constraints.items()):
        where = f"row_constraints.{name}"
        if name not in grant.row_constraints:
            problems.append(
                (where, "narrow.constraint_dropped", f"row constraint {name!r} was asked for")
            )
        elif not _tighter(name, value, grant.row_constraints[name]):
            problems.append(
                (
                    where,
                    "narrow.constraint_widened",
                    f"row constraint {name}={grant.row_constraints[name]!r} admits rows "
                    f"{name}={value!r} does not",
                )
            )
    if not MIN_DAYS <= grant.days <= ask.days:
        problems.append(
            (
                "days",
                "narrow.days_widened",
                f"{grant.days} days: a grant lasts {MIN_DAYS} to {ask.days} days (as asked)",
            )
        )
    return problems


# ---- steps -----------------------------------------------------------------------------------


def _event(
    session: Session,
    request: SharingRequest,
    actor: str,
    department: str,
    action: str,
    at: datetime,
    detail: dict[str, Any],
) -> None:
    session.add(
        SharingRequestEvent(
            request_id=request.id,
            at=at,
            actor=actor,
            department=department,
            action=action,
            detail=detail,
        )
    )


def _spec_problems(session: Session, spec: RequestSpec) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    if not spec.legal_basis.strip():
        problems.append(("legal_basis", "request.legal_basis_missing", "state the legal basis"))
    if not spec.justification.strip():
        problems.append(
            ("justification", "request.justification_missing", "say why the data is needed")
        )
    for name in ("legal_basis", "justification"):
        if len(getattr(spec, name)) > TEXT_MAX:
            problems.append((name, "request.too_long", f"{name} is at most {TEXT_MAX} characters"))
    if not MIN_DAYS <= spec.duration_days <= MAX_DAYS:
        problems.append(
            (
                "duration_days",
                "request.duration_invalid",
                f"a request lasts {MIN_DAYS} to {MAX_DAYS} days",
            )
        )
    if len(set(spec.purposes)) != len(spec.purposes):
        problems.append(("purposes", "request.purpose_repeated", "a purpose is named twice"))
    problems.extend(catalogue.grant_problems(session, _grant_spec(spec, "-")))
    return problems


def _grant_spec(spec: RequestSpec, department: str) -> catalogue.GrantSpec:
    return catalogue.GrantSpec(
        department=department,
        role=spec.grantee_role,
        dataset=spec.dataset,
        fields=dict(spec.fields),
        purposes=list(spec.purposes),
        row_constraints=dict(spec.row_constraints),
    )


def _resource(session: Session, dataset: str) -> CatalogueResource:
    row = session.get(CatalogueResource, dataset)
    if row is None:
        raise ValidationError(
            [
                (
                    "dataset",
                    "request.dataset_not_in_catalogue",
                    f"dataset {dataset!r} is not in the resource catalogue; its owner "
                    "department publishes an entry first",
                )
            ]
        )
    return row


def _grant(
    session: Session, request: SharingRequest, terms: Terms, actor: str, at: datetime
) -> Grant:
    """The grant of ``request`` for ``terms``: from ``at``, or for a renewal from the end of
    the grant it renews while that is still to come."""
    start = at
    if request.renewal_of is not None:
        before = session.get(SharingRequest, request.renewal_of)
        old = session.get(Grant, before.grant_id) if before and before.grant_id else None
        if old is not None and old.valid_until is not None and old.valid_until > at:
            start = old.valid_until
    grant = catalogue.add_grant(
        session,
        catalogue.GrantSpec(
            department=request.requester_department,
            role=request.grantee_role,
            dataset=request.dataset,
            fields=dict(terms.fields),
            purposes=list(request.purposes),
            row_constraints=dict(terms.row_constraints),
            valid_from=start,
            valid_until=start + timedelta(days=terms.days),
            note=f"sharing request {request.id}" if request.id else None,
        ),
        created_by=actor,
        at=at,
    )
    grant.origin, grant.sharing_request_id = "request", request.id
    return grant


def _record_grant(
    request: SharingRequest, grant: Grant, terms: Terms, status: str, by: str, at: datetime
) -> None:
    request.status = status
    request.decided_at, request.decided_by = at, by
    request.granted_fields = dict(terms.fields)
    request.granted_row_constraints = dict(terms.row_constraints)
    request.granted_days = terms.days
    request.grant_id = grant.id


def _grant_detail(grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": grant.id,
        "valid_from": grant.valid_from.isoformat(),
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
    }


def submit(
    session: Session,
    actor: Actor,
    spec: RequestSpec,
    *,
    at: datetime,
    renewal_of: int | None = None,
) -> SharingRequest:
    """Submit ``spec`` for ``actor``'s department; granted at once if the dataset is shared
    unconditionally. PermissionDeniedError unless ``actor`` is a department administrator;
    ValidationError for a dataset not in the resource catalogue or not shared, and for
    every problem of the terms; ConflictError for a second open request."""
    if actor.role != REQUESTER:
        raise PermissionDeniedError(
            f"role {actor.role!r} may not request data; a department administrator "
            f"({REQUESTER}) requests for its department"
        )
    resource = _resource(session, spec.dataset)
    if resource.sharing_type == resources.NOT_SHARED:
        raise ValidationError(
            [
                (
                    "dataset",
                    "request.not_shared",
                    f"dataset {spec.dataset!r} is marked not shared by "
                    f"{resource.owner_department}: it cannot be requested",
                )
            ]
        )
    problems = _spec_problems(session, spec)
    if problems:
        raise ValidationError(problems)
    wanted = sorted(spec.purposes)
    for other in session.scalars(
        select(SharingRequest).where(
            SharingRequest.requester_department == actor.department,
            SharingRequest.dataset == spec.dataset,
            SharingRequest.status == SUBMITTED,
        )
    ):
        if sorted(other.purposes) == wanted:
            raise ConflictError(
                f"sharing request {other.id} of {actor.department} for {spec.dataset} and "
                f"the same purposes is still open; withdraw it or wait for its decision"
            )
    request = SharingRequest(
        dataset=spec.dataset,
        owner_department=resource.owner_department,
        requester_department=actor.department,
        grantee_role=spec.grantee_role,
        requested_by=actor.actor,
        fields=dict(spec.fields),
        purposes=wanted,
        legal_basis=spec.legal_basis,
        justification=spec.justification,
        row_constraints=dict(spec.row_constraints),
        duration_days=spec.duration_days,
        status=SUBMITTED,
        submitted_at=at,
        renewal_of=renewal_of,
    )
    grant = None
    if resource.sharing_type == resources.UNCONDITIONAL:
        # The grant first: if it breaks the disclosure rule nothing is stored.
        grant = _grant(session, request, asked(request), UNCONDITIONAL_RULE, at)
    session.add(request)
    session.flush()
    _event(
        session,
        request,
        actor.actor,
        actor.department,
        "renew" if renewal_of is not None else "submit",
        at,
        {
            "fields": dict(spec.fields),
            "purposes": wanted,
            "row_constraints": dict(spec.row_constraints),
            "duration_days": spec.duration_days,
            **({"renewal_of": renewal_of} if renewal_of is not None else {}),
        },
    )
    if grant is not None:
        grant.sharing_request_id, grant.note = request.id, f"sharing request {request.id}"
        _record_grant(request, grant, asked(request), APPROVED, UNCONDITIONAL_RULE, at)
        request.decision_reason = "the dataset is shared unconditionally"
        _event(
            session,
            request,
            UNCONDITIONAL_RULE,
            request.owner_department,
            "approve",
            at,
            _grant_detail(grant),
        )
    session.flush()
    return request


def _to_decide(session: Session, actor: Actor, request_id: int) -> SharingRequest:
    request = session.get(SharingRequest, request_id)
    if request is None or not _sees(actor, request):
        # Another department's request is not disclosed, even to a steward trying ids; the
        # attempt on one that exists is audited as a denial.
        hidden = NotFoundError(f"no sharing request {request_id}")
        hidden.refused = request is not None
        raise hidden
    if actor.role != STEWARD:
        raise PermissionDeniedError(
            f"role {actor.role!r} may not decide on sharing requests; the owning "
            f"department's data steward ({STEWARD}) decides"
        )
    if actor.department != request.owner_department:
        raise PermissionDeniedError(
            f"sharing request {request_id} is for a dataset of {request.owner_department}; "
            "only that department's data stewards decide on it"
        )
    if actor.actor == request.requested_by:
        raise PermissionDeniedError("the person who asked cannot decide on their own request")
    if request.status != SUBMITTED:
        raise ConflictError(f"sharing request {request_id} is {request.status}, not submitted")
    return request


def _still_shared(session: Session, request: SharingRequest) -> None:
    """ConflictError if the owner marked the dataset not shared after the request came, or
    the dataset has since been given to another department (its former owner no longer
    grants it)."""
    resource = session.get(CatalogueResource, request.dataset)
    if resource is None or resource.sharing_type == resources.NOT_SHARED:
        raise ConflictError(
            f"dataset {request.dataset!r} is no longer shared: sharing request {request.id} "
            "can only be refused"
        )
    if resource.owner_department != request.owner_department:
        raise ConflictError(
            f"dataset {request.dataset!r} now belongs to {resource.owner_department}: "
            f"sharing request {request.id} can only be refused; the requester asks its new "
            "owner"
        )


def _requester_active(session: Session, request: SharingRequest) -> None:
    """ConflictError if the user who asked has been disabled since (a departing
    administrator's last requests are not granted on their word; the department asks
    again). A requester known only by an API key's actor name is not a user to check."""
    user = session.scalar(select(User).where(User.username == request.requested_by))
    if user is not None and not user.active:
        raise ConflictError(
            f"{request.requested_by}, who asked, has been disabled since: sharing request "
            f"{request.id} can only be refused; an active administrator of "
            f"{request.requester_department} asks again"
        )


def _to_grant(session: Session, actor: Actor, request_id: int) -> SharingRequest:
    """The submitted request ``actor`` may decide on, when a decision would grant it: the
    dataset still shared by its owner and the requester still active (a refusal needs
    only :func:`_to_decide`)."""
    request = _to_decide(session, actor, request_id)
    _still_shared(session, request)
    _requester_active(session, request)
    return request


def approve(session: Session, actor: Actor, request_id: int, *, at: datetime) -> SharingRequest:
    """Approve a submitted request as asked and create its grant."""
    request = _to_grant(session, actor, request_id)
    terms = asked(request)
    grant = _grant(session, request, terms, actor.actor, at)
    _record_grant(request, grant, terms, APPROVED, actor.actor, at)
    _event(session, request, actor.actor, actor.department, "approve", at, _grant_detail(grant))
    session.flush()
    return request


def narrow(
    session: Session,
    actor: Actor,
    request_id: int,
    terms: Terms,
    *,
    at: datetime,
    reason: str | None = None,
) -> SharingRequest:
    """Approve a submitted request with ``terms``, which must be no wider than asked
    (ValidationError names each way they are); status ``narrowed`` (``approved`` if the
    terms are exactly those asked)."""
    request = _to_grant(session, actor, request_id)
    ask = asked(request)
    constraints = {k: str(v) for k, v in terms.row_constraints.items()}
    terms = Terms(dict(terms.fields), constraints, terms.days)
    problems = narrowing_problems(ask, terms)
    if problems:
        raise ValidationError(problems)
    grant = _grant(session, request, terms, actor.actor, at)
    same = terms == ask
    _record_grant(request, grant, terms, APPROVED if same else NARROWED, actor.actor, at)
    request.decision_reason = reason
    _event(
        session,
        request,
        actor.actor,
        actor.department,
        "approve" if same else "narrow",
        at,
        {
            **_grant_detail(grant),
            "granted_fields": dict(terms.fields),
            "granted_row_constraints": dict(terms.row_constraints),
            "granted_days": terms.days,
            **({"reason": reason} if reason else {}),
        },
    )
    session.flush()
    return request


def refuse(
    session: Session, actor: Actor, request_id: int, reason: str, *, at: datetime
) -> SharingRequest:
    """Refuse a submitted request; the reason (required) is shown to the requester."""
    if not reason.strip():
        raise ValidationError([("reason", "request.reason_missing", "say why it is refused")])
    if len(reason) > TEXT_MAX:
        raise ValidationError(
            [("reason", "request.too_long", f"a reason is at most {TEXT_MAX} characters")]
        )
    request = _to_decide(session, actor, request_id)
    request.status = REFUSED
    request.decided_at, request.decided_by, request.decision_reason = at, actor.actor, reason
    _event(session, request, actor.actor, actor.department, "refuse", at, {"reason": reason})
    session.flush()
    return request


def _requesters(session: Session, actor: Actor, request_id: int, what: str) -> SharingRequest:
    request = session.get(SharingRequest, request_id)
    if request is None or not _sees(actor, request):
        raise NotFoundError(f"no sharing request {request_id}")
    if actor.role != REQUESTER or actor.department != request.requester_department:
        raise PermissionDeniedError(
            f"only a department administrator of {request.requester_department} may {what} "
            f"sharing request {request_id}"
        )
    return request


def withdraw(session: Session, actor: Actor, request_id: int, *, at: datetime) -> SharingRequest:
    """Withdraw a submitted request of the actor's department."""
    request = _requesters(session, actor, request_id, "withdraw")
    if request.status != SUBMITTED:
        raise ConflictError(f"sharing request {request_id} is {request.status}, not submitted")
    request.status = WITHDRAWN
    request.decided_at, request.decided_by = at, actor.actor
    _event(session, request, actor.actor, actor.department, "withdraw", at, {})
    session.flush()
    return request


def renew(session: Session, actor: Actor, request_id: int, *, at: datetime) -> SharingRequest:
    """A new request with the terms granted to ``request_id`` (``renewal_of``), decided like
    any request; its grant starts when the renewed one ends. ConflictError if the request
    was not granted, its grant was revoked, or a renewal of it is already open."""
    request = _requesters(session, actor, request_id, "renew")
    terms = granted(request)
    if terms is None:
        raise ConflictError(f"sharing request {request_id} is {request.status}: nothing to renew")
    old = session.get(Grant, request.grant_id) if request.grant_id is not None else None
    if old is not None and old.revoked_at is not None:
        # A renewal would undo the revocation (at once, if the dataset is unconditional).
        raise ConflictError(
            f"the grant of sharing request {request_id} was revoked by {old.revoked_by}: "
            "nothing to renew; a new request is decided afresh"
        )
    pending = session.scalar(
        select(SharingRequest.id).where(
            SharingRequest.renewal_of == request_id, SharingRequest.status == SUBMITTED
        )
    )
    if pending is not None:
        raise ConflictError(f"sharing request {pending} already renews {request_id}")
    spec = RequestSpec(
        dataset=request.dataset,
        fields=dict(terms.fields),
        purposes=list(request.purposes),
        legal_basis=request.legal_basis,
        justification=request.justification,
        duration_days=terms.days,
        row_constraints=dict(terms.row_constraints),
        grantee_role=request.grantee_role,
    )
    return submit(session, actor, spec, at=at, renewal_of=request_id)


# ---- reading ---------------------------------------------------------------------------------


def _sees(actor: Actor, request: SharingRequest) -> bool:
    if actor.role == CENTRAL_ADMIN:
        return True
    return actor.role in PARTICIPANTS and actor.department in (
        request.requester_department,
        request.owner_department,
    )


def get(session: Session, actor: Actor, request_id: int) -> SharingRequest:
    """The request, if ``actor`` may see it (NotFoundError otherwise: another department's
    requests are not disclosed)."""
    request = session.get(SharingRequest, request_id)
    if request is None or not _sees(actor, request):
        raise NotFoundError(f"no sharing request {request_id}")
    return request


def history(session: Session, request_id: int) -> list[SharingRequestEvent]:
    return list(
        session.scalars(
            select(SharingRequestEvent)
            .where(SharingRequestEvent.request_id == request_id)
            .order_by(SharingRequestEvent.id)
        )
    )


def list_requests(
    session: Session, actor: Actor, *, status: str | None = None
) -> list[SharingRequest]:
    """The requests ``actor`` sees: its department's, as requester or as owner (all of them
    for the central administrator), oldest first."""
    if status is not None and status not in STATUSES:
        raise ValidationError(
            [("status", "request.status_unknown", f"status is one of {', '.join(STATUSES)}")]
        )
    query = select(SharingRequest).order_by(SharingRequest.id)
    if actor.role != CENTRAL_ADMIN:
        if actor.role not in PARTICIPANTS:
            return []
        query = query.where(
            or_(
                SharingRequest.requester_department == actor.department,
                SharingRequest.owner_department == actor.department,
            )
        )
    if status is not None:
        query = query.where(SharingRequest.status == status)
    return list(session.scalars(query))


def expiring(session: Session, actor: Actor, *, at: datetime, within_days: int) -> list[Grant]:
    """Unrevoked grants that end within ``within_days`` of ``at``: those of ``actor``'s
    department as consumer and those of its datasets as owner (all for the central
    administrator), soonest first."""
    if not 1 <= within_days <= MAX_DAYS:
        raise ValidationError(
            [("within_days", "request.within_invalid", f"within_days is 1 to {MAX_DAYS}")]
        )
    query = (
        select(Grant)
        .where(
            Grant.revoked_at.is_(None),
            Grant.valid_until.is_not(None),
            Grant.valid_until > at,
            Grant.valid_until <= at + timedelta(days=within_days),
        )
        .order_by(Grant.valid_until, Grant.id)
    )
    if actor.role != CENTRAL_ADMIN:
        if actor.role not in PARTICIPANTS:
            return []
        owned = select(CatalogueResource.dataset).where(
            CatalogueResource.owner_department == actor.department
        )
        query = query.where(
            or_(Grant.grantee_department == actor.department, Grant.dataset.in_(owned))
        )
    return list(session.scalars(query))


def summary(request: SharingRequest) -> str:
    """One line naming a request, for the audit log: ids, departments, dataset, field names,
    purposes and status (never the justification's text)."""
    terms = granted(request) or asked(request)
    fields = ",".join(
        f"{k}:{v}" if v == Mode.MASKED.value else k for k, v in sorted(terms.fields.items())
    )
    text = (
        f"sharing request {request.id}: {request.requester_department} asks "
        f"{request.owner_department} for {request.dataset} [{fields}] for "
        f"{','.join(request.purposes)}, {terms.days} days"
    )
    if terms.row_constraints:
        text += " where " + ",".join(f"{k}={v}" for k, v in sorted(terms.row_constraints.items()))
    text += f"; {request.status}"
    if request.decided_by:
        text += f" by {request.decided_by}"
    if request.grant_id:
        text += f"; grant {request.grant_id}"
    if request.renewal_of:
        text += f"; renews request {request.renewal_of}"
    return text


__all__ = [
    "MAX_DAYS",
    "MIN_DAYS",
    "STATUSES",
    "UNCONDITIONAL_RULE",
    "Actor",
    "RequestSpec",
    "Terms",
    "approve",
    "asked",
    "expiring",
    "get",
    "granted",
    "history",
    "list_requests",
    "narrow",
    "narrowing_problems",
    "refuse",
    "renew",
    "submit",
    "summary",
    "withdraw",
]
