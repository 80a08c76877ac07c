"""The central administrator's pages of the access catalogue: purposes and direct grants.

Each page mirrors a route of :mod:`gateway.catalogue_api`, with its role (``admin``), its
work and its audit action:

- ``GET /ui/admin/purposes`` (``catalogue.purpose.list``) with the form to add one;
  ``POST`` adds it (``catalogue.purpose.add``); ``GET /ui/admin/purposes/{code}`` shows one
  with its case-reference rule (``catalogue.purpose.list``), ``POST .../case-ref`` sets the
  rule (``catalogue.purpose.case_ref``), ``POST .../deactivate`` deactivates it
  (``catalogue.purpose.deactivate``).
- ``GET /ui/admin/grants`` (``catalogue.grant.list``); ``GET /ui/admin/grants/new`` the form,
  for a dataset chosen first (``catalogue.datasets``: the datasets grants may name, their
  fields and masking); ``POST /ui/admin/grants`` adds the grant (``catalogue.grant.add``,
  checked against the catalogue and the disclosure rule exactly as the API's, each problem
  shown against its field with the form as it was filled in);
  ``POST /ui/admin/grants/{id}/revoke`` (``catalogue.grant.revoke``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from exchange.access import catalogue
from exchange.access.policy import CONSTRAINTS, LINKED_BY_VALUES
from exchange.core.errors import ExchangeError, NotFoundError, ValidationError
from exchange.core.models import Grant, Purpose
from exchange.identity import identities
from exchange.identity.apikeys import Identity
from gateway.catalogue_api import (
    ADMIN,
    GrantView,
    PurposeView,
    adding,
    grant_view,
    purpose_view,
    revoking,
)
from gateway.console import i18n, web
from gateway.console.admin_forms import form_refused

router = APIRouter(prefix=f"{web.PREFIX}/admin", include_in_schema=False)

web.nav_item(f"{web.PREFIX}/admin/purposes", "Purposes", ADMIN, order=420)
web.nav_item(f"{web.PREFIX}/admin/grants", "Grants", ADMIN, order=430)

PURPOSE_FORM = ("code", "title", "legal_basis", "case_ref_required", "case_ref_pattern")
MODES = ("full", "masked")


def _purposes(session: Session) -> list[PurposeView]:
    return [purpose_view(p) for p in catalogue.list_purposes(session)]


# ---- purposes ---------------------------------------------------------------------------------


@router.get("/purposes")
async def purposes(request: Request) -> Response:
    decision = web.decision_for(request, "catalogue.purpose.list")

    def work(session: Session, identity: Identity) -> list[PurposeView]:
        decision.reason = "listed"
        return _purposes(session)

    found = await web.read(request, decision, work, roles=ADMIN)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    return web.render(
        request,
        "admin/purposes.html",
        {"purposes": found, "form": {}, "done": request.query_params.get("done")},
    )


@router.post("/purposes")
async def add_purpose(request: Request) -> Response:
    form = await web.read_form(request)
    typed = {name: web.field(form, name) for name in PURPOSE_FORM}
    decision = web.decision_for(request, "catalogue.purpose.add")

    def work(session: Session, identity: Identity) -> Purpose:
        purpose = catalogue.add_purpose(
            session,
            typed["code"],
            typed["title"],
            typed["legal_basis"] or None,
            case_ref_required=bool(typed["case_ref_required"]),
            case_ref_pattern=typed["case_ref_pattern"] or None,
        )
        decision.status, decision.reason = 303, f"purpose {purpose.code!r} added"
        return purpose

    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        return form_refused(request, "admin/purpose_form.html", {"form": typed}, done, PURPOSE_FORM)
    return web.see_other(f"{web.PREFIX}/admin/purposes?done=added")


@router.get("/purposes/{code}")
async def purpose(request: Request, code: str) -> Response:
    decision = web.decision_for(request, "catalogue.purpose.list")

    def work(session: Session, identity: Identity) -> PurposeView:
        decision.reason = f"listed; target: purpose {code}"
        found = session.get(Purpose, code)
        if found is None:
            raise NotFoundError(f"no purpose {code!r}")
        return purpose_view(found)

    found = await web.read(request, decision, work, roles=ADMIN)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    form = {
        "case_ref_required": "on" if found.case_ref_required else "",
        "case_ref_pattern": found.case_ref_pattern or "",
    }
    return web.render(
        request,
        "admin/purpose.html",
        {"purpose": found, "form": form, "done": request.query_params.get("done")},
    )


@router.post("/purposes/{code}/case-ref")
async def set_case_ref(request: Request, code: str) -> Response:
    form = await web.read_form(request)
    typed = {name: web.field(form, name) for name in ("case_ref_required", "case_ref_pattern")}
    decision = web.decision_for(request, "catalogue.purpose.case_ref")
    holder: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> Purpose:
        found = session.get(Purpose, code)
        if found is not None:
            holder["purpose"] = purpose_view(found)
        purpose = catalogue.set_case_ref_rule(
            session,
            code,
            required=bool(typed["case_ref_required"]),
            pattern=typed["case_ref_pattern"] or None,
        )
        decision.status = 303
        decision.reason = (
            f"purpose {code!r} case reference: "
            + ("required" if purpose.case_ref_required else "optional")
            + (f", pattern {purpose.case_ref_pattern}" if purpose.case_ref_pattern else "")
        )
        return purpose

    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        if "purpose" not in holder:
            return web.refusal(request, done)
        context = {"purpose": holder["purpose"], "form": typed}
        return form_refused(request, "admin/purpose.html", context, done, PURPOSE_FORM)
    return web.see_other(f"{web.PREFIX}/admin/purposes/{code}?done=saved")


@router.post("/purposes/{code}/deactivate")
async def deactivate(request: Request, code: str) -> Response:
    await web.read_form(request)
    decision = web.decision_for(request, "catalogue.purpose.deactivate")

    def work(session: Session, identity: Identity) -> Purpose:
        found = catalogue.deactivate_purpose(session, code)
        decision.status, decision.reason = 303, f"purpose {code!r} deactivated"
        return found

    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        return web.refusal(request, done)
    return web.see_other(f"{web.PREFIX}/admin/purposes/{code}?done=deactivated")


# ---- grants -----------------------------------------------------------------------------------


@router.get("/grants")
async def grants(request: Request) -> Response:
    revoked = request.query_params.get("revoked") == "1"
    decision = web.decision_for(request, "catalogue.grant.list")

    def work(session: Session, identity: Identity) -> list[GrantView]:
        decision.reason = "listed" + (" with the revoked" if revoked else "")
        return [grant_view(g) for g in catalogue.list_grants(session, include_revoked=revoked)]

    found = await web.read(request, decision, work, roles=ADMIN)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    return web.render(
        request,
        "admin/grants.html",
        {
            "grants": found,
            "revoked": revoked,
            "added": request.query_params.get("added"),
            "done": request.query_params.get("done"),
        },
    )


def choices(request: Request, options: dict[str, Any]) -> dict[str, Any]:
    """The grant form's choices as shown, in the user's language."""
    _ = web.gettext(request)
    return {
        "dataset_options": [(name, name) for name in options["datasets"]],
        "role_options": [(role, _(role)) for role in options["grantee_roles"]],
        "link_options": [
            ("", _("any link")),
            ("identifier", _("by identifier only")),
            ("reviewed", _("by identifier or by a reviewer")),
        ],
    }


def grant_options(session: Session, dataset: str | None) -> dict[str, Any]:
    """What the grant form offers: the datasets, the dataset chosen and its fields, the
    departments, the active purposes and the row constraints."""
    chosen = None
    if dataset:
        try:
            chosen = catalogue.dataset(dataset)
        except ValidationError:
            chosen = None
    return {
        "datasets": catalogue.available_datasets(),
        "dataset": chosen,
        "departments": [
            (d.code, f"{d.name} ({d.code})") for d in identities.list_departments(session)
        ],
        "purposes": [
            (p.code, f"{p.title} ({p.code})")
            for p in catalogue.list_purposes(session, include_inactive=False)
        ],
        "grantee_roles": catalogue.GRANTEE_ROLES,
        "linked_by": LINKED_BY_VALUES,
        "constraints": sorted(CONSTRAINTS),
    }


@router.get("/grants/new")
async def grant_form(request: Request) -> Response:
    dataset = request.query_params.get("dataset") or None
    decision = web.decision_for(request, "catalogue.datasets")

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        found = grant_options(session, dataset)
        # The dataset as typed in the address is named only if it is one.
        decision.dataset = dataset if found["dataset"] is not None else None
        decision.reason = "the grant form" + (f" for {dataset}" if decision.dataset else "")
        return found

    found = await web.read(request, decision, work, roles=ADMIN)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    _ = web.gettext(request)
    form = {"role": "caseworker", "purposes": []}
    unknown = dataset is not None and found["dataset"] is None
    return web.render(
        request,
        "admin/grant_form.html",
        {
            **found,
            **choices(request, found),
            "form": form,
            "errors": {"dataset": _("No such dataset.")} if unknown else {},
        },
    )


def _date(text: str, name: str, *, end: bool = False) -> datetime | None:
    """A date of the form (a day in the console's time zone), as UTC: its start, or for the
    end of a validity its following midnight (the day is included)."""
    if not text:
        return None
    # Never the text typed in the message: it becomes the audit entry's reason. A day at
    # either end of what a date picker offers (9999-12-31's next midnight, 0001-01-01 in
    # UTC) is out of Python's range: the same field error, not a 500.
    try:
        day = date.fromisoformat(text)
        if end:
            day = date.fromordinal(day.toordinal() + 1)
        return datetime.combine(day, time.min, i18n.TIMEZONE).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError([(name, "period.malformed", "not a date")]) from None


def typed_grant(form: FormData) -> dict[str, Any]:
    """The grant form as it was filled in."""
    typed: dict[str, Any] = {
        name: web.field(form, name)
        for name in ("dataset", "department", "role", "valid_from", "valid_until", "note")
    }
    typed["purposes"] = web.fields(form, "purposes")
    typed["modes"] = {
        key.split(".", 1)[1]: web.field(form, key)
        for key in form
        if key.startswith("fields.") and web.field(form, key)
    }
    typed["constraints"] = {
        name: web.field(form, f"row_constraints.{name}")
        for name in CONSTRAINTS
        if web.field(form, f"row_constraints.{name}")
    }
    return typed


def grant_controls(options: dict[str, Any]) -> set[str]:
    """The names of the grant form's controls (where a problem of that name is shown)."""
    controls = {"dataset", "department", "role", "fields", "purposes", "valid_from"}
    controls |= {"valid_until", "note"} | {f"row_constraints.{c}" for c in CONSTRAINTS}
    chosen = options.get("dataset")
    if chosen is not None:
        controls |= {f"fields.{f.name}" for f in chosen.fields}
    return controls


@router.post("/grants")
async def add_grant(request: Request) -> Response:
    form = await web.read_form(request)
    typed = typed_grant(form)
    decision = web.decision_for(request, "catalogue.grant.add", dataset=typed["dataset"][:100])
    options: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> GrantView:
        options.update(grant_options(session, typed["dataset"]))
        spec = catalogue.GrantSpec(
            department=typed["department"],
            role=typed["role"],
            dataset=typed["dataset"],
            fields=typed["modes"],
            purposes=typed["purposes"],
            row_constraints=typed["constraints"],
            valid_from=_date(typed["valid_from"], "valid_from"),
            valid_until=_date(typed["valid_until"], "valid_until", end=True),
            note=typed["note"] or None,
        )
        grant = adding(spec, decision)(session, identity)
        decision.status = 303
        return grant_view(grant)

    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        if not options:
            return web.refusal(request, done)
        context = {**options, **choices(request, options), "form": typed}
        return form_refused(
            request, "admin/grant_form.html", context, done, grant_controls(options)
        )
    return web.see_other(f"{web.PREFIX}/admin/grants?added={done.id}")


@router.post("/grants/{grant_id}/revoke")
async def revoke_grant(request: Request, grant_id: int) -> Response:
    await web.read_form(request)
    decision = web.decision_for(request, "catalogue.grant.revoke")
    revoke = revoking(grant_id, decision)

    def work(session: Session, identity: Identity) -> Grant:
        grant = revoke(session, identity)
        decision.status = 303
        return grant

    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        return web.refusal(request, done)
    return web.see_other(f"{web.PREFIX}/admin/grants?done=revoked")


__all__ = ["grant_controls", "grant_options", "router", "typed_grant"]
