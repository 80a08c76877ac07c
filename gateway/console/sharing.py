"""Sharing requests from both sides, in the console: a consuming department's administrator
submits, withdraws and renews; the owning department's data steward approves, narrows or
refuses; both see each request and its history, and the grants ending soon.

Each page mirrors a route of :mod:`gateway.sharing_api`, with its roles, its work and its
audit action (``sharing.request.list``, ``.show``, ``.submit``, ``.approve``, ``.narrow``,
``.refuse``, ``.withdraw``, ``.renew``, ``sharing.grants.expiring``):

- ``GET /ui/sharing`` the requests of the user's department, incoming and outgoing (all of
  them for the central administrator), by status;
- ``GET /ui/sharing/new`` the form, for a dataset of the resource catalogue chosen first
  (audited ``catalogue.resource.show``: it shows the entry's fields); ``POST
  /ui/sharing/requests`` submits it;
- ``GET /ui/sharing/requests/{id}`` a request, its history and the steps the user may take;
  ``POST .../approve``, ``.../refuse``, ``.../withdraw``, ``.../renew``; ``GET
  .../narrow`` the narrowing form, filled in with what was asked; ``POST .../narrow``;
- ``GET /ui/sharing/expiring`` grants ending within some days.

The catalogue's checks (the terms of a request, a narrowing wider than asked, the
disclosure rule) are shown against the form's fields, with what the user typed kept
(:mod:`gateway.console.admin_forms`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from exchange.access import catalogue, resources, sharing
from exchange.access.policy import CONSTRAINTS
from exchange.core.db import utcnow
from exchange.core.errors import ExchangeError, ValidationError
from exchange.core.models import CatalogueResource, SharingRequest
from exchange.identity.apikeys import Identity
from gateway.console import web
from gateway.console.admin_forms import form_refused
from gateway.sharing_api import (
    SHARING,
    ExpiringGrant,
    RequestView,
    ResourceView,
    actor_of,
    expiring_view,
    narrowing,
    request_view,
    resource_view,
    stepping,
    submitting,
)

router = APIRouter(prefix=f"{web.PREFIX}/sharing", include_in_schema=False)

web.nav_item(f"{web.PREFIX}/sharing", "Sharing requests", SHARING, order=450)

REQUESTER = frozenset({"department_admin"})
STEWARD = frozenset({"data_steward"})
REQUEST_FORM = ("dataset", "fields", "purposes", "legal_basis", "justification", "duration_days")
NARROW_FORM = ("fields", "days", "reason")


def _days(text: str, name: str, code: str) -> int:
    try:
        return int(text)
    except ValueError:
        # Never the text typed in the message: it becomes the audit entry's reason.
        raise ValidationError(
            [(name, code, f"not a number of days ({sharing.MIN_DAYS} to {sharing.MAX_DAYS})")]
        ) from None


def _modes(form: FormData) -> dict[str, str]:
    return {
        key.split(".", 1)[1]: web.field(form, key)
        for key in form
        if key.startswith("fields.") and web.field(form, key)
    }


def _constraints(form: FormData) -> dict[str, str]:
    return {
        name: web.field(form, f"row_constraints.{name}")
        for name in sorted(CONSTRAINTS)
        if web.field(form, f"row_constraints.{name}")
    }


def _link_options(request: Request) -> list[tuple[str, str]]:
    _ = web.gettext(request)
    return [
        ("", _("any link")),
        ("identifier", _("by identifier only")),
        ("reviewed", _("by identifier or by a reviewer")),
    ]


# ---- lists ----------------------------------------------------------------------------------


@router.get("")
async def requests(request: Request) -> Response:
    status = request.query_params.get("status") or None
    decision = web.decision_for(request, "sharing.request.list")
    me: dict[str, Identity] = {}

    def work(session: Session, identity: Identity) -> list[RequestView]:
        me["identity"] = identity
        found = sharing.list_requests(session, actor_of(identity), status=status)
        decision.reason = f"listed {len(found)} requests" + (f" {status}" if status else "")
        return [request_view(r) for r in found]

    found = await web.read(request, decision, work, roles=SHARING)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    identity = me["identity"]
    _ = web.gettext(request)
    central = identity.role == "admin"
    mine = identity.department
    return web.render(
        request,
        "sharing/requests.html",
        {
            "central": central,
            "incoming": [r for r in found if central or r.owner_department == mine],
            "outgoing": [r for r in found if not central and r.requester_department == mine],
            "status": status,
            "status_options": [(s, _(s)) for s in sharing.STATUSES],
            "may_request": identity.role == "department_admin",
        },
    )


@router.get("/expiring")
async def expiring(request: Request) -> Response:
    text = request.query_params.get("within_days") or "30"
    decision = web.decision_for(request, "sharing.grants.expiring")

    def work(session: Session, identity: Identity) -> list[ExpiringGrant]:
        within = _days(text, "within_days", "request.within_invalid")
        found = sharing.expiring(session, actor_of(identity), at=utcnow(), within_days=within)
        decision.reason = f"{len(found)} grants ending within {within} days"
        return [expiring_view(g) for g in found]

    found = await web.read(request, decision, work, roles=SHARING)
    if isinstance(found, ValidationError):
        return form_refused(
            request,
            "sharing/expiring.html",
            {"grants": [], "within": text},
            found,
            ("within_days",),
        )
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    return web.render(request, "sharing/expiring.html", {"grants": found, "within": text})


# ---- submitting -----------------------------------------------------------------------------


def _request_options(session: Session, dataset: str | None) -> dict[str, Any]:
    """What the request form offers: the catalogue's entries, the one chosen (its fields)
    and the active purposes."""
    entries = resources.list_resources(session)
    chosen = None
    if dataset:
        row = session.get(CatalogueResource, dataset)
        chosen = resource_view(resources.view(row)) if row is not None else None
    return {
        "dataset_options": [
            (r.dataset, f"{r.title} ({r.dataset}, {r.owner_department})")
            for r in entries
            if r.sharing_type != resources.NOT_SHARED
        ],
        "resource": chosen,
        "purposes": [
            (p.code, f"{p.title} ({p.code})")
            for p in catalogue.list_purposes(session, include_inactive=False)
        ],
    }


def _request_controls(options: dict[str, Any]) -> set[str]:
    controls = set(REQUEST_FORM) | {f"row_constraints.{c}" for c in CONSTRAINTS}
    chosen: ResourceView | None = options.get("resource")
    if chosen is not None:
        controls |= {f"fields.{f.name}" for f in chosen.fields}
    return controls


@router.get("/new")
async def request_form(request: Request) -> Response:
    dataset = request.query_params.get("dataset") or None
    action = "catalogue.resource.show" if dataset else "catalogue.resource.list"
    decision = web.decision_for(request, action)

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        found = _request_options(session, dataset)
        # The dataset as typed in the address is named only if the catalogue holds it.
        decision.dataset = dataset if found["resource"] is not None else None
        decision.reason = "the sharing request form" + (
            f" for {dataset}" if decision.dataset else ""
        )
        return found

    found = await web.read(request, decision, work, roles=REQUESTER)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    _ = web.gettext(request)
    unknown = dataset is not None and found["resource"] is None
    return web.render(
        request,
        "sharing/request_form.html",
        {
            **found,
            "link_options": _link_options(request),
            "form": {"dataset": dataset or "", "duration_days": "365", "purposes": []},
            "errors": {"dataset": _("This dataset is not in the resource catalogue.")}
            if unknown
            else {},
        },
    )


@router.post("/requests")
async def submit(request: Request) -> Response:
    form = await web.read_form(request)
    typed: dict[str, Any] = {
        name: web.field(form, name)
        for name in ("dataset", "legal_basis", "justification", "duration_days")
    }
    typed |= {"purposes": web.fields(form, "purposes"), "modes": _modes(form)}
    typed["constraints"] = _constraints(form)
    decision = web.decision_for(request, "sharing.request.submit", dataset=typed["dataset"][:100])
    options: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> RequestView:
        options.update(_request_options(session, typed["dataset"]))
        spec = sharing.RequestSpec(
            dataset=typed["dataset"],
            fields=typed["modes"],
            purposes=typed["purposes"],
            legal_basis=typed["legal_basis"],
            justification=typed["justification"],
            duration_days=_days(
                typed["duration_days"], "duration_days", "request.duration_invalid"
            ),
            row_constraints=typed["constraints"],
        )
        done = submitting(spec, decision)(session, identity)
        decision.status = 303
        return done

    done = await web.change(request, decision, work, roles=SHARING)
    if isinstance(done, ExchangeError):
        if not options:
            return web.refusal(request, done)
        context = {**options, "link_options": _link_options(request), "form": typed}
        return form_refused(
            request, "sharing/request_form.html", context, done, _request_controls(options)
        )
    return web.see_other(f"{web.PREFIX}/sharing/requests/{done.id}?done=submitted")


# ---- one request ----------------------------------------------------------------------------


def _steps(identity: Identity, found: RequestView) -> dict[str, bool]:
    """The steps the user may take on the request (the domain decides again when taken)."""
    steward = (
        identity.role == "data_steward"
        and identity.department == found.owner_department
        and identity.actor != found.requested_by
    )
    requester = (
        identity.role == "department_admin" and identity.department == found.requester_department
    )
    open_ = found.status == "submitted"
    return {
        "decide": steward and open_,
        "withdraw": requester and open_,
        "renew": requester and found.status in ("approved", "narrowed"),
    }


async def _show(
    request: Request, number: int, action: str = "sharing.request.show"
) -> tuple[Identity, RequestView] | ExchangeError:
    decision = web.decision_for(request, action)

    def work(session: Session, identity: Identity) -> tuple[Identity, RequestView]:
        decision.reason = f"listed; target: request {number}"
        found = sharing.get(session, actor_of(identity), number)
        decision.dataset = found.dataset
        return identity, request_view(found, sharing.history(session, found.id))

    return await web.read(request, decision, work, roles=SHARING)


@router.get("/requests/{number}")
async def show(request: Request, number: int) -> Response:
    found = await _show(request, number)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    identity, view = found
    return web.render(
        request,
        "sharing/request.html",
        {
            "r": view,
            "steps": _steps(identity, view),
            "form": {},
            "done": request.query_params.get("done"),
        },
    )


async def _step(
    request: Request,
    number: int,
    action: str,
    do: Callable[[Session, sharing.Actor], SharingRequest],
    form: dict[str, Any] | None = None,
) -> Response:
    decision = web.decision_for(request, action)
    before: dict[str, Any] = {}
    step = stepping(decision, number, do, 303)

    def work(session: Session, identity: Identity) -> RequestView:
        try:
            found = sharing.get(session, actor_of(identity), number)
            before["view"] = request_view(found, sharing.history(session, found.id))
            before["identity"] = identity
        except ExchangeError:
            pass  # the step refuses it the API's way
        return step(session, identity)

    done = await web.change(request, decision, work, roles=SHARING)
    if isinstance(done, ExchangeError):
        if "view" not in before or not isinstance(done, ValidationError):
            return web.refusal(request, done)
        view = before["view"]
        context = {"r": view, "steps": _steps(before["identity"], view), "form": form or {}}
        return form_refused(request, "sharing/request.html", context, done, ("reason",))
    return web.see_other(f"{web.PREFIX}/sharing/requests/{done.id}?done={action.rsplit('.', 1)[1]}")


@router.post("/requests/{number}/approve")
async def approve(request: Request, number: int) -> Response:
    await web.read_form(request)
    return await _step(
        request,
        number,
        "sharing.request.approve",
        lambda s, a: sharing.approve(s, a, number, at=utcnow()),
    )


@router.post("/requests/{number}/refuse")
async def refuse(request: Request, number: int) -> Response:
    form = await web.read_form(request)
    reason = web.field(form, "reason")
    return await _step(
        request,
        number,
        "sharing.request.refuse",
        lambda s, a: sharing.refuse(s, a, number, reason, at=utcnow()),
        {"reason": reason},
    )


@router.post("/requests/{number}/withdraw")
async def withdraw(request: Request, number: int) -> Response:
    await web.read_form(request)
    return await _step(
        request,
        number,
        "sharing.request.withdraw",
        lambda s, a: sharing.withdraw(s, a, number, at=utcnow()),
    )


@router.post("/requests/{number}/renew")
async def renew(request: Request, number: int) -> Response:
    await web.read_form(request)
    return await _step(
        request,
        number,
        "sharing.request.renew",
        lambda s, a: sharing.renew(s, a, number, at=utcnow()),
    )


# ---- narrowing ------------------------------------------------------------------------------


def _narrow_context(request: Request, view: RequestView, form: dict[str, Any]) -> dict[str, Any]:
    return {"r": view, "form": form, "link_options": _link_options(request)}


def _narrow_controls(view: RequestView) -> set[str]:
    controls = set(NARROW_FORM) | {f"row_constraints.{c}" for c in CONSTRAINTS}
    return controls | {f"fields.{name}" for name in view.fields}


@router.get("/requests/{number}/narrow")
async def narrow_form(request: Request, number: int) -> Response:
    found = await _show(request, number)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    _, view = found
    form = {
        "modes": dict(view.fields),
        "constraints": {k: str(v) for k, v in view.row_constraints.items()},
        "days": str(view.duration_days),
        "reason": "",
    }
    return web.render(request, "sharing/narrow.html", _narrow_context(request, view, form))


@router.post("/requests/{number}/narrow")
async def narrow(request: Request, number: int) -> Response:
    form = await web.read_form(request)
    typed: dict[str, Any] = {
        "modes": _modes(form),
        "constraints": _constraints(form),
        "days": web.field(form, "days"),
        "reason": web.field(form, "reason"),
    }
    decision = web.decision_for(request, "sharing.request.narrow")
    before: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> RequestView:
        try:
            found = sharing.get(session, actor_of(identity), number)
            before["view"] = request_view(found, sharing.history(session, found.id))
        except ExchangeError:
            pass
        days = _days(typed["days"], "days", "narrow.days_widened")
        do = narrowing(number, typed["modes"], typed["constraints"], days, typed["reason"] or None)
        return stepping(decision, number, do, 303)(session, identity)

    done = await web.change(request, decision, work, roles=SHARING)
    if isinstance(done, ExchangeError):
        if "view" not in before or not isinstance(done, ValidationError):
            return web.refusal(request, done)
        view = before["view"]
        return form_refused(
            request,
            "sharing/narrow.html",
            _narrow_context(request, view, typed),
            done,
            _narrow_controls(view),
        )
    return web.see_other(f"{web.PREFIX}/sharing/requests/{done.id}?done=narrow")


__all__ = ["router"]
