"""The caseworker's pages: the case (purpose and case reference), the search, the person
view, the household view, and refusals in plain words.

Each page that reads records is the API call it mirrors, run through the API's own work
function (:mod:`gateway.query`, :mod:`gateway.search`) as one audited request with the
same action, purpose and case reference:

- ``GET /ui/case``, ``POST /ui/case``: the case. The purpose (a code of the catalogue,
  active) and, where the purpose requires one, the case reference are chosen once per
  case and kept in the console session (:func:`exchange.identity.consolesessions.choose_case`),
  validated by the API's rule (:func:`gateway.audited.stated_purpose`). Audited
  ``console.case`` (the form) and ``console.choose_case`` (the choice, with the purpose
  and case reference chosen).
- ``GET /ui/search``: the search forms (``console.search``); without a case, the case
  form first.
- ``POST /ui/search/id``: by resident ID, ``person.lookup`` (``POST /v1/persons/lookup``).
- ``POST /ui/search/name``: by name and birth date, ``person.search``
  (``POST /v1/search/persons``).
- ``GET /ui/persons/{entity_id}``: the person view, ``entity.view``
  (``GET /v1/entities/{entity_id}``), with the session's purpose and case reference.
- ``POST /ui/household``: the household view, ``household.lookup``
  (``POST /v1/households/lookup``).

An identifier (a resident ID, a name, a birth date) travels only in a POST form, never
in a URL; an entity id is not an identifier and may. A refusal is a page with the status
the audit entry records: no grant for the purpose (403) says so in plain words, nothing
found is 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import audit
from exchange.core.db import utcnow
from exchange.core.errors import (
    AuthenticationError,
    ExchangeError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from exchange.core.models import Purpose
from exchange.identity import consolesessions
from exchange.identity.apikeys import Identity
from exchange.registry.joins import IDENTIFIER, PROBABILISTIC, REVIEWER
from exchange.registry.linkage import PERSON
from exchange.registry.records import record_ref
from gateway import query, search
from gateway.audited import pending, stated_purpose
from gateway.console import i18n, web
from gateway.console.i18n import N_
from gateway.deps import AppState
from gateway.problems import note_error, status_for
from gateway.views import RecordView

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)

CASEWORKERS = frozenset({"caseworker"})
CASE = f"{web.PREFIX}/case"
SEARCH = f"{web.PREFIX}/search"

web.nav_item(SEARCH, N_("Search persons"), CASEWORKERS, order=10)
web.nav_item(CASE, N_("Case"), CASEWORKERS, order=11)

T = TypeVar("T")


class NoCase:
    """What a page's work gives back when the session has no case chosen: nothing was
    read, and the caseworker is sent to choose one (audited as answered, 303)."""


NO_CASE = NoCase()


@dataclass(frozen=True)
class PurposeOption:
    code: str
    title: str
    case_ref_required: bool
    case_ref_pattern: str | None
    granted: bool


def _purposes(state: AppState, session: Session, identity: Identity) -> list[PurposeOption]:
    """The catalogue's active purposes, those the caller's department and role hold a grant
    in force for first (the others are listed apart: a lookup for them is refused)."""
    now = utcnow()
    granted = {
        code
        for grant in state.catalogue.grants_of(session, identity.department, identity.role)
        if grant.in_force(now)
        for code in grant.purposes
    }
    rows = session.scalars(select(Purpose).where(Purpose.active.is_(True)).order_by(Purpose.code))
    options = [
        PurposeOption(p.code, p.title, p.case_ref_required, p.case_ref_pattern, p.code in granted)
        for p in rows
    ]
    return sorted(options, key=lambda o: (not o.granted, o.code))


def _next(target: str | None) -> str:
    """Where to go once the case is chosen: a caseworker page, by default the search."""
    chosen = web.safe_next(target)
    return chosen if chosen != f"{web.PREFIX}/" else SEARCH


def _case_url(next_path: str) -> str:
    return f"{CASE}?next={next_path}"


def _field_errors(exc: ExchangeError) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {name: message for name, _code, message in exc.reasons}
    return {}


# ---- the case -------------------------------------------------------------------------------


@router.get("/case")
async def case_form(request: Request, next: str | None = None) -> Response:
    state: AppState = request.app.state.exchange
    decision = web.decision_for(request, "console.case")

    def work(session: Session, identity: Identity) -> list[PurposeOption]:
        decision.reason = "the case form: the purposes of the catalogue"
        return _purposes(state, session, identity)

    outcome = await web.read(request, decision, work, roles=CASEWORKERS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    current = web.current(request)
    return web.render(
        request,
        "caseworker/case.html",
        {
            "purposes": outcome,
            "chosen": current.purpose if current else None,
            "case_ref": current.case_ref if current else "",
            "next": _next(next),
            "errors": {},
        },
    )


@router.post("/case")
async def choose_case(request: Request) -> Response:
    state: AppState = request.app.state.exchange
    form = await web.read_form(request)
    purpose = web.field(form, "purpose")
    case_ref = web.field(form, "case_ref")
    target = _next(web.field(form, "next"))
    decision = web.decision_for(
        request, "console.choose_case", purpose=purpose or None, case_ref=case_ref or None
    )

    def work(session: Session, identity: Identity) -> None:
        current = web.current(request)
        assert current is not None  # identified through the session
        # Exactly the API's rule: an active code of the catalogue, a case reference that
        # meets the purpose's rules.
        code = stated_purpose(state, session, decision, purpose or None, case_ref or None)
        consolesessions.choose_case(session, current.id, code, case_ref or None)
        decision.reason = "case chosen for the session's lookups"
        decision.status = 303

    outcome = await web.change(request, decision, work, roles=CASEWORKERS)
    if not isinstance(outcome, ExchangeError):
        return web.see_other(target)
    current = web.current(request)
    if current is None or isinstance(outcome, AuthenticationError):
        return web.refusal(request, outcome)
    identity = current.identity

    def options() -> list[PurposeOption]:
        with state.sessions() as session:
            return _purposes(state, session, identity)

    purposes = await anyio.to_thread.run_sync(options)
    context = {
        "purposes": purposes,
        "chosen": purpose,
        "case_ref": case_ref,
        "next": target,
        "errors": _field_errors(outcome),
    }
    return web.form_error(request, "caseworker/case.html", context, outcome)


# ---- pages with the session's case ------------------------------------------------------------


@dataclass
class Facts:
    """What a refusal page says besides the error: the purpose's title."""

    purpose: str | None = None
    purpose_title: str | None = None


def _with_case(
    request: Request,
    decision: audit.Decision,
    make: Callable[[tuple[str | None, str | None]], Callable[[Session, Identity], T]],
    facts: Facts,
    check: Callable[[], None] | None = None,
) -> Callable[[Session, Identity], T | NoCase]:
    """The API's work ``make(stated)`` run with the session's purpose and case reference
    (known once the caller is identified through the session), written into ``decision``
    as the API writes a stated purpose and case reference; :data:`NO_CASE` without a case."""

    def work(session: Session, identity: Identity) -> T | NoCase:
        current = web.current(request)
        if current is None or current.purpose is None:
            decision.reason, decision.status = "no case chosen: sent to choose one", 303
            return NO_CASE
        stated = pending("", decision.action, purpose=current.purpose, case_ref=current.case_ref)
        decision.purpose, decision.case_ref = stated.purpose, stated.case_ref
        facts.purpose = current.purpose
        if check is not None:
            check()
        try:
            return make((current.purpose, current.case_ref))(session, identity)
        except PermissionDeniedError:
            facts.purpose_title = session.scalar(
                select(Purpose.title).where(Purpose.code == current.purpose)
            )
            raise

    return work


async def _read(
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T | NoCase],
) -> T | NoCase | ExchangeError:
    return await web.read(request, decision, work, roles=CASEWORKERS)


def refused(request: Request, exc: ExchangeError, facts: Facts, back: str = SEARCH) -> Response:
    """A refusal in plain words, with the status the audit entry records: no grant for the
    purpose (403), nothing found (404); other errors as the console's error page."""
    if isinstance(exc, AuthenticationError) or not isinstance(
        exc, PermissionDeniedError | NotFoundError
    ):
        return web.refusal(request, exc)
    _ = web.gettext(request)
    note_error(request, exc.message)
    return web.render(
        request,
        "caseworker/refused.html",
        {
            "status": status_for(exc),
            "code": exc.code,
            "title": i18n.error_title(exc.code, _),
            "detail": exc.message,
            "no_grant": isinstance(exc, PermissionDeniedError),
            "purpose": facts.purpose,
            "purpose_title": facts.purpose_title or facts.purpose,
            "back": back,
            "request_id": getattr(request.state, "request_id", None),
        },
        status=status_for(exc),
    )


def _missing(name: str, code: str, message: str) -> Callable[[], None]:
    def check() -> None:
        raise ValidationError([(name, code, message)])

    return check


@router.get("/search")
async def search_form(request: Request) -> Response:
    decision = web.decision_for(request, "console.search")

    def work(session: Session, identity: Identity) -> None:
        decision.reason = "the search form"

    outcome = await web.read(request, decision, work, roles=CASEWORKERS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    current = web.current(request)
    if current is None or current.purpose is None:
        return web.see_other(_case_url(SEARCH))
    return web.render(request, "caseworker/search.html", {"errors": {}, "values": {}})


def _search_again(
    request: Request, exc: ExchangeError, values: Mapping[str, str], facts: Facts
) -> Response:
    """A search refused for what was typed: the form again, the error against its field
    (never echoing a typed identifier); any other refusal as its page."""
    errors = _field_errors(exc)
    if errors and set(errors) <= {"resident_id", "name", "birth_date"}:
        return web.form_error(
            request, "caseworker/search.html", {"errors": errors, "values": values}, exc
        )
    return refused(request, exc, facts)


async def _by_resident_id(
    request: Request,
    prepare: Callable[[AppState, str, str, str | None, str | None], tuple[audit.Decision, str]],
    view: Callable[
        [AppState, audit.Decision, str, tuple[str | None, str | None]],
        Callable[[Session, Identity], T],
    ],
) -> tuple[T | NoCase | ExchangeError, Facts, str]:
    """The lookups by a resident ID typed into a form (a person, a household): the API's
    request (``prepare``) and work (``view``) for the session's case, audited once; the
    outcome, what the refusal page may say, and the ID typed."""
    state: AppState = request.app.state.exchange
    form = await web.read_form(request)
    resident_id = web.field(form, "resident_id")
    decision, subject = prepare(state, str(request.state.request_id), resident_id, None, None)
    if not resident_id:
        decision.subjects = []
    facts = Facts()
    check = (
        None
        if resident_id
        else _missing("resident_id", "lookup.resident_id_missing", "enter the resident ID")
    )
    work = _with_case(
        request, decision, lambda stated: view(state, decision, subject, stated), facts, check
    )
    return await _read(request, decision, work), facts, resident_id


@router.post("/search/id")
async def search_by_id(request: Request) -> Response:
    outcome, facts, resident_id = await _by_resident_id(
        request,
        query.person_lookup_request,
        lambda state, decision, subject, stated: query.person_lookup(
            state, request, decision, subject, stated
        ),
    )
    if isinstance(outcome, NoCase):
        return web.see_other(_case_url(SEARCH))
    if isinstance(outcome, ExchangeError):
        return _search_again(request, outcome, {}, facts)
    return web.render(
        request,
        "caseworker/results.html",
        {
            "by": "id",
            "resident_id": resident_id,
            "entity_ids": outcome.entity_ids,
            "groups": Presenter(request).by_department(outcome.records),
            "total": outcome.total,
        },
    )


@router.post("/search/name")
async def search_by_name(request: Request) -> Response:
    state: AppState = request.app.state.exchange
    form = await web.read_form(request)
    name = web.field(form, "name")
    birth_date = web.field(form, "birth_date")
    decision = search.person_search_request(str(request.state.request_id), None, None)
    facts = Facts()
    check = None if name else _missing("name", "search.name_missing", "enter the name")
    work = _with_case(
        request,
        decision,
        lambda stated: search.search_work(
            state,
            request,
            decision,
            kind=PERSON,
            name=name,
            birth_date=birth_date or None,
            stated=stated,
        ),
        facts,
        check,
    )
    outcome = await _read(request, decision, work)
    if isinstance(outcome, NoCase):
        return web.see_other(_case_url(SEARCH))
    values = {"name": name, "birth_date": birth_date}
    if isinstance(outcome, ExchangeError):
        return _search_again(request, outcome, values, facts)
    shown = Presenter(request)
    return web.render(
        request,
        "caseworker/results.html",
        {
            "by": "name",
            "hits": [
                {
                    **hit.model_dump(include={"score", "match"}),
                    "record": hit.record,
                    "fields": shown.fields(hit.record),
                }
                for hit in outcome.results
            ],
            "total": outcome.total,
        },
    )


@router.get("/persons/{entity_id}")
async def person(request: Request, entity_id: str) -> Response:
    state: AppState = request.app.state.exchange
    decision = query.entity_request(str(request.state.request_id), entity_id, None, None)
    facts = Facts()
    work = _with_case(
        request,
        decision,
        lambda stated: query.entity_view(state, request, decision, entity_id, stated),
        facts,
    )
    outcome = await _read(request, decision, work)
    if isinstance(outcome, NoCase):
        return web.see_other(_case_url(f"{web.PREFIX}/persons/{entity_id}"))
    if isinstance(outcome, ExchangeError):
        return refused(request, outcome, facts)
    shown = Presenter(request)
    # A golden value is masked where the record it comes from shows that field masked.
    masked = {
        record_ref(v.dataset, v.department, v.source_id): v.masked_fields for v in outcome.records
    }
    golden = [
        {
            "field": shown.field(
                name, value.value, value.source is not None and name in masked.get(value.source, ())
            ),
            "source": value.source,
            "rule": value.rule,
        }
        for name, value in sorted(outcome.golden_record.items())
    ]
    return web.render(
        request,
        "caseworker/person.html",
        {"entity": outcome, "golden": golden, "groups": shown.by_department(outcome.records)},
    )


@router.post("/household")
async def household(request: Request) -> Response:
    outcome, facts, _ = await _by_resident_id(
        request, query.household_request, query.household_view
    )
    if isinstance(outcome, NoCase):
        return web.see_other(_case_url(SEARCH))
    if isinstance(outcome, ExchangeError):
        return _search_again(request, outcome, {}, facts)
    shown = Presenter(request)
    households = [
        [
            {
                "membership": shown.fields(member.membership),
                "entity_ids": member.entity_ids,
                "groups": shown.by_department(member.records),
                "records": len(member.records),
                "businesses": shown.by_department(member.businesses),
            }
            for member in found.members
        ]
        for found in outcome.households
    ]
    return web.render(request, "caseworker/household.html", {"households": households})


@dataclass(frozen=True)
class FieldShown:
    """A field as a page shows it: its text, and whether it is masked, unreadable (its key
    destroyed) or empty. Formatted here rather than by template macros: the person page is
    rendered under load (bench/console_person_page.py)."""

    name: str
    text: str
    kind: str  # plain, masked, unreadable, empty


@dataclass(frozen=True)
class RecordShown:
    """A record as a page shows it: its texts made here, in the request's language."""

    view: RecordView
    fields: list[FieldShown]
    rows: Markup  # the fields as the rows of a table (Presenter.rows)
    caption: str
    updated: str
    join_label: str
    join_class: str  # the badge's colour: ok (identifier), warn (probabilistic), none
    join_detail: str


_FORMATS = {lang: i18n.Formats(lang) for lang in i18n.LANGUAGES}


class Presenter:
    """Field values as text, in the request's language."""

    def __init__(self, request: Request) -> None:
        self.language = web.language(request)
        self._ = web.gettext(request)
        self.formats = _FORMATS[self.language]
        self._times: dict[datetime, str] = {}

    def when(self, value: datetime | None) -> str:
        """A time as the locale writes it (to the second: the records of one load share
        it, and Babel's formatting is most of what a page's texts cost)."""
        if value is None:
            return ""
        second = value.replace(microsecond=0)
        found = self._times.get(second)
        if found is None:
            found = self._times[second] = self.formats.datetime(second)
        return found

    def text(self, value: Any) -> str:
        if isinstance(value, bool):
            return self._("yes") if value else self._("no")
        if isinstance(value, int | float):
            return self.formats.number(value)
        if isinstance(value, Mapping):
            return "; ".join(f"{k}: {self.text(v)}" for k, v in value.items())
        if isinstance(value, list | tuple):
            return ", ".join(self.text(v) for v in value)
        return str(value)

    def field(self, name: str, value: Any, masked: bool, unreadable: bool = False) -> FieldShown:
        if unreadable:
            return FieldShown(name, "", "unreadable")
        if value is None:
            return FieldShown(name, "", "empty")
        return FieldShown(name, self.text(value), "masked" if masked else "plain")

    def fields(self, view: RecordView) -> list[FieldShown]:
        masked, unreadable = set(view.masked_fields), set(view.unreadable_fields)
        return [
            self.field(name, value, name in masked, name in unreadable)
            for name, value in view.fields.items()
        ]

    def rows(self, fields: list[FieldShown]) -> Markup:
        """The rows of a record's table of fields: made here, escaped, rather than by a
        template loop (68 fields of the demo's applicant cost the person page 0.4 ms of
        CPU in Jinja2; bench/console_person_page.py)."""
        _ = self._
        if not fields:
            none = escape(_("No field of this record is granted to you for this purpose."))
            return Markup(f'<tr><td colspan="2" class="muted">{none}</td></tr>')
        masked_title = escape(_("Masked: your grant shows this field masked"))
        masked_word = escape(_("masked"))
        unreadable = escape(_("Unreadable: its key was destroyed"))
        empty = escape(_("(empty)"))
        out = []
        for f in fields:
            if f.kind == "masked":
                cell = (
                    f'<span class="masked" title="{masked_title}">{escape(f.text)}'
                    f'<span class="visually-hidden"> ({masked_word})</span></span>'
                )
            elif f.kind == "unreadable":
                cell = f'<span class="muted">{unreadable}</span>'
            elif f.kind == "empty":
                cell = f'<span class="muted">{empty}</span>'
            else:
                cell = str(escape(f.text))
            name = escape(f.name)
            out.append(f'<tr><th scope="row"><code>{name}</code></th><td>{cell}</td></tr>')
        return Markup("\n".join(out))

    def record(self, view: RecordView) -> RecordShown:
        _ = self._
        joined, label, css, detail = view.joined, "", "", ""
        if joined is None:
            label = _("Not linked to another record")
        elif joined.how == IDENTIFIER:
            label, css = _("Same identifier"), "ok"
        elif joined.how == PROBABILISTIC:
            label, css = _("Probabilistic link"), "warn"
            detail = _("weight %(weight)s bits, probability %(probability)s") % {
                "weight": self.formats.number(joined.weight, 1),
                "probability": self.formats.percent(joined.probability),
            }
        elif joined.how == REVIEWER:
            label = _("Confirmed by a reviewer")
            detail = _("by %(who)s on %(when)s") % {
                "who": joined.decided_by or "?",
                "when": self.when(joined.decided_at),
            }
        else:
            label = joined.how
        fields = self.fields(view)
        return RecordShown(
            view=view,
            fields=fields,
            rows=self.rows(fields),
            caption=_("Fields of %(dataset)s from %(department)s")
            % {"dataset": view.dataset, "department": view.department},
            updated=_("Version %(version)s, updated %(when)s")
            % {"version": view.version, "when": self.when(view.updated_at)},
            join_label=label,
            join_class=css,
            join_detail=detail,
        )

    def by_department(self, records: list[RecordView]) -> list[tuple[str, list[RecordShown]]]:
        """The records grouped by the department that published them (sorted by department,
        dataset and source id), each as shown."""
        groups: dict[str, list[RecordShown]] = {}
        for view in sorted(records, key=lambda v: (v.department, v.dataset, v.source_id)):
            groups.setdefault(view.department, []).append(self.record(view))
        return [
            (self._("Department: %(department)s") % {"department": name}, shown)
            for name, shown in groups.items()
        ]


__all__ = ["CASEWORKERS", "Presenter", "router"]
