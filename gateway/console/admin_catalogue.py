"""The resource catalogue in the console: every user reads it; the central administrator
registers a dataset with its owner and may change any entry; the owner's department
administrator edits its own department's entries (sharing type, description, frequency,
contact, the fields' notes), never their owner.

Each page mirrors a route of :mod:`gateway.sharing_api`, with its roles, its work and its
audit action: ``GET /ui/catalogue`` (``catalogue.resource.list``), ``GET
/ui/catalogue/{dataset}`` (``catalogue.resource.show``), ``GET /ui/catalogue/edit?dataset=``
the form (``catalogue.resource.show``, for the roles that may edit), ``POST
/ui/catalogue/edit`` (``catalogue.resource.set``: each problem shown against its field).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from exchange.access import catalogue, resources
from exchange.core.errors import ExchangeError, PermissionDeniedError
from exchange.core.models import CatalogueResource
from exchange.identity import identities
from exchange.identity.apikeys import Identity
from gateway.console import web
from gateway.console.admin_forms import form_refused
from gateway.sharing_api import EDITORS, EVERYONE, ResourceView, resource_view, setting

router = APIRouter(prefix=f"{web.PREFIX}/catalogue", include_in_schema=False)

web.nav_item(
    f"{web.PREFIX}/catalogue",
    "Resource catalogue",
    {"admin", "department_admin", "data_steward"},
    order=440,
)

TEXTS = ("title", "description", "frequency", "sharing", "contact", "owner")


def _may_edit(identity: Identity, entry: ResourceView | None) -> bool:
    if identity.role == "admin":
        return True
    return (
        identity.role == "department_admin"
        and entry is not None
        and entry.owner_department == identity.department
    )


@router.get("")
async def entries(request: Request) -> Response:
    decision = web.decision_for(request, "catalogue.resource.list")
    me: dict[str, Identity] = {}

    def work(session: Session, identity: Identity) -> list[ResourceView]:
        me["identity"] = identity
        decision.reason = "listed"
        return [resource_view(r) for r in resources.list_resources(session)]

    found = await web.read(request, decision, work, roles=EVERYONE)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    listed = {r.dataset for r in found}
    return web.render(
        request,
        "sharing/catalogue.html",
        {
            "entries": found,
            "identity_role": me["identity"].role,
            "unlisted": [(d, d) for d in catalogue.available_datasets() if d not in listed],
        },
    )


@router.get("/edit")
async def edit_form(request: Request) -> Response:
    dataset = request.query_params.get("dataset") or ""
    decision = web.decision_for(request, "catalogue.resource.show", dataset=dataset[:100] or None)

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        decision.reason = f"the catalogue entry form for {dataset}"
        row = session.get(CatalogueResource, dataset)
        catalogue.dataset(dataset)  # ValidationError: no such dataset
        if row is None and identity.role != "admin":
            resources.get(session, dataset)  # NotFoundError: only the central one registers
        if not _may_edit(identity, resource_view(resources.view(row)) if row else None):
            raise PermissionDeniedError(
                f"dataset {dataset!r} belongs to another department; a department "
                "administrator edits its own department's entries only"
            )
        return _edit_options(session, identity, dataset, row)

    found = await web.read(request, decision, work, roles=EDITORS)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    entry: ResourceView | None = found["entry"]
    form: dict[str, Any] = {"notes": {}}
    if entry is not None:
        form = {
            "title": entry.title,
            "description": entry.description,
            "frequency": entry.update_frequency,
            "sharing": entry.sharing_type,
            "contact": entry.contact,
            "owner": entry.owner_department,
            "notes": {f.name: f.note for f in entry.fields},
        }
    return web.render(
        request, "sharing/resource_form.html", {**found, **_choices(request), "form": form}
    )


def _choices(request: Request) -> dict[str, Any]:
    _ = web.gettext(request)
    return {
        "frequency_options": [("", "")] + [(f, _(f)) for f in resources.FREQUENCIES],
        "sharing_options": [("", "")] + [(t, _(t)) for t in resources.SHARING_TYPES],
    }


def _edit_options(
    session: Session, identity: Identity, dataset: str, row: CatalogueResource | None
) -> dict[str, Any]:
    entry = resource_view(resources.view(row)) if row is not None else None
    fields = [f.name for f in catalogue.dataset(dataset).fields]
    return {
        "dataset": dataset,
        "entry": entry,
        "field_names": fields,
        "central": identity.role == "admin",
        "departments": [
            (d.code, f"{d.name} ({d.code})") for d in identities.list_departments(session)
        ],
        "frequencies": resources.FREQUENCIES,
        "sharing_types": resources.SHARING_TYPES,
    }


@router.post("/edit")
async def edit(request: Request) -> Response:
    form = await web.read_form(request)
    dataset = web.field(form, "dataset")
    typed: dict[str, Any] = {name: web.field(form, name) for name in TEXTS}
    typed["notes"] = {
        key.split(".", 1)[1]: (form.get(key) or "").strip()  # type: ignore[union-attr]
        for key in form
        if key.startswith("field_notes.")
    }
    decision = web.decision_for(request, "catalogue.resource.set", dataset=dataset[:100])
    options: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> ResourceView:
        row = session.get(CatalogueResource, dataset)
        if _may_edit(identity, resource_view(resources.view(row)) if row else None):
            options.update(_edit_options(session, identity, dataset, row))
        change = resources.ResourceChange(
            owner=typed["owner"] or None if identity.role == "admin" else None,
            title=typed["title"],
            description=typed["description"],
            frequency=typed["frequency"] or None,
            sharing=typed["sharing"] or None,
            contact=typed["contact"],
            field_notes=_changed_notes(row, typed["notes"]),
        )
        done = setting(dataset, change, decision)(session, identity)
        decision.status = 303
        return done

    done = await web.change(request, decision, work, roles=EDITORS)
    if isinstance(done, ExchangeError):
        if not options:
            return web.refusal(request, done)
        controls = set(TEXTS) | {f"field_notes.{name}" for name in options["field_names"]}
        return form_refused(
            request,
            "sharing/resource_form.html",
            {**options, **_choices(request), "form": typed},
            done,
            controls,
        )
    return web.see_other(f"{web.PREFIX}/catalogue/{done.dataset}?done=saved")


def _changed_notes(row: CatalogueResource | None, notes: dict[str, str]) -> dict[str, str]:
    """The notes the form changes (an emptied note removes it; one left as it was is not
    sent, so the entry's change names only what changed)."""
    before = dict(row.field_notes or {}) if row is not None else {}
    return {name: note for name, note in notes.items() if note != before.get(name, "")}


@router.get("/{dataset}")
async def entry(request: Request, dataset: str) -> Response:
    decision = web.decision_for(request, "catalogue.resource.show", dataset=dataset[:100])
    me: dict[str, Identity] = {}

    def work(session: Session, identity: Identity) -> ResourceView:
        me["identity"] = identity
        decision.reason = "shown"
        return resource_view(resources.view(resources.get(session, dataset)))

    found = await web.read(request, decision, work, roles=EVERYONE)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    identity = me["identity"]
    return web.render(
        request,
        "sharing/resource.html",
        {
            "entry": found,
            "may_edit": _may_edit(identity, found),
            "may_request": identity.role == "department_admin"
            and found.sharing_type != resources.NOT_SHARED,
            "done": request.query_params.get("done"),
        },
    )


__all__ = ["router"]
