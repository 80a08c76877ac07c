"""The auditor's pages: search the audit log, open an entry, who accessed a person, the
anomalies, and export (:mod:`gateway.console.auditor_integrity` has the log's verification,
signed heads, proofs and the citizen's access report).

Each page is one audited request made as the auditor API's route it mirrors
(:mod:`gateway.auditor`): the same work (:mod:`exchange.audit.search`,
:mod:`exchange.audit.anomalies`), the same action (``audit.search``, ``audit.person``,
``audit.export``, ``audit.anomalies``), the same role (``auditor``), and the person's blind
index among the entry's subjects when the request is about a person, so an auditor's look
at a person appears in that person's history. A resident ID is only ever typed into a
POST form (never in an address); paging and export carry the search in hidden fields.
A page that shows only a form reads nothing and is audited as ``console.form``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from exchange.audit import anomalies, search
from exchange.core.errors import ExchangeError, NotFoundError, ValidationError
from exchange.identity.apikeys import Identity
from gateway.auditor import AUDITORS
from gateway.console import auditor_integrity, i18n, web
from gateway.console.auditor_forms import (
    LogQuery,
    filters_of,
    form_page,
    parse_date,
    parse_int,
    row,
    show_error,
)
from gateway.console.i18n import N_
from gateway.deps import AppState
from gateway.params import SQL_INT_MAX
from gateway.query import person_subject

router = APIRouter(prefix=f"{web.PREFIX}/audit", include_in_schema=False)
router.include_router(auditor_integrity.router)

PAGE = 50  # entries a page of results shows

# The kinds of anomaly flag (exchange.audit.anomalies), in plain words.
KINDS = {
    "volume": N_("Many people in one hour"),
    "off_hours": N_("Records read outside office hours"),
    "denial_burst": N_("A burst of refusals"),
    "no_case_ref": N_("Records read without a case reference"),
    "auth_failures": N_("A burst of failed sign-ins"),
}

web.nav_item(f"{web.PREFIX}/audit/log", N_("Search the audit log"), AUDITORS, order=40)
web.nav_item(f"{web.PREFIX}/audit/person", N_("Who accessed a person"), AUDITORS, order=41)
web.nav_item(f"{web.PREFIX}/audit/anomalies", N_("Anomalies"), AUDITORS, order=42)
web.nav_item(f"{web.PREFIX}/audit/integrity", N_("Log integrity and proofs"), AUDITORS, order=43)
web.nav_item(f"{web.PREFIX}/audit/report", N_("Citizen's access report"), AUDITORS, order=44)

# --- searching the log --------------------------------------------------------------------


async def _search(request: Request, query: LogQuery) -> Response:
    state: AppState = request.app.state.exchange
    decision = web.decision_for(request, "audit.search")
    context: dict[str, Any] = {"query": query, "errors": {}}

    def work(session: Session, identity: Identity) -> tuple[list[dict[str, Any]], int | None]:
        filters = filters_of(state, query)
        after = parse_int(query.after or "0", "after")
        if filters.subject is not None:
            decision.subjects = [filters.subject]
        decision.reason = "searched the audit log"
        entries = search.search(session, filters, after=after, limit=PAGE)
        return [row(e) for e in entries], (entries[-1].seq if len(entries) == PAGE else None)

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return show_error(request, "auditor/log.html", context, outcome)
    entries, next_after = outcome
    return web.render(
        request,
        "auditor/log.html",
        {**context, "entries": entries, "next_after": next_after, "searched": True},
    )


@router.get("/log")
async def log_page(request: Request) -> Response:
    """The search form and a page of results, the filters in the address (never a
    person: searching by person is a POST)."""
    return await _search(request, LogQuery.of(request.query_params, person=False))


@router.post("/log")
async def log_search(request: Request) -> Response:
    form = await web.read_form(request)
    return await _search(request, LogQuery.of(form, person=True))


@router.get("/entries/{seq}")
async def entry_page(request: Request, seq: int) -> Response:
    """One entry, as ``GET /v1/audit/entries?after=SEQ-1&limit=1`` answers it."""
    decision = web.decision_for(request, "audit.search")

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        decision.reason = f"opened entry seq {seq}"
        if not 1 <= seq <= SQL_INT_MAX:
            raise NotFoundError(f"the audit log has no entry with seq {seq}")
        found = search.search(session, search.Filters(), after=seq - 1, limit=1)
        if not found or found[0].seq != seq:
            raise NotFoundError(f"the audit log has no entry with seq {seq}")
        return row(found[0])

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(request, "auditor/entry.html", {"entry": outcome})


# --- who accessed a person ----------------------------------------------------------------


@router.get("/person")
async def person_form(request: Request) -> Response:
    return await form_page(request, "auditor/person.html", "who accessed a person")


@router.post("/person")
async def person_accesses(request: Request) -> Response:
    """``POST /v1/audit/subjects/person``: the entries naming the person's blind index."""
    state: AppState = request.app.state.exchange
    form = await web.read_form(request)
    query = LogQuery.of(form, person=True)
    query = LogQuery(person=query.person, since=query.since, until=query.until, after=query.after)
    decision = web.decision_for(request, "audit.person")
    context: dict[str, Any] = {"query": query, "errors": {}}

    def work(session: Session, identity: Identity) -> dict[str, Any]:
        if not query.person:
            raise ValidationError([("person", "person.missing", "enter the person's resident ID")])
        subject = person_subject(state, query.person)
        decision.subjects = [subject]
        filters = replace(filters_of(state, query), subject=subject)
        after = parse_int(query.after or "0", "after")
        decision.reason = "who accessed a person"
        entries = search.search(session, filters, after=after, limit=PAGE)
        return {
            "subject": subject,
            "entries": [row(e) for e in entries],
            "next_after": entries[-1].seq if len(entries) == PAGE else None,
        }

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return show_error(request, "auditor/person.html", context, outcome)
    return web.render(request, "auditor/person.html", {**context, **outcome, "searched": True})


# --- export --------------------------------------------------------------------------------


@router.post("/export")
async def export(request: Request) -> Response:
    """``GET /v1/audit/export``: every entry the search finds, as a CSV (formula-guarded
    cells) or JSON Lines download, streamed; the export is one audited request."""
    state: AppState = request.app.state.exchange
    form = await web.read_form(request)
    query = LogQuery.of(form, person=True)
    fmt = web.field(form, "format") or "csv"
    decision = web.decision_for(request, "audit.export")

    def work(session: Session, identity: Identity) -> search.Filters:
        if fmt not in search.EXPORT_FORMATS:
            raise ValidationError([("format", "format.invalid", "format must be csv or jsonl")])
        filters = filters_of(state, query)
        if filters.subject is not None:
            decision.subjects = [filters.subject]
        decision.reason = f"exported the audit log as {fmt}"
        return filters

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        context = {"query": query, "errors": {}}
        return show_error(request, "auditor/log.html", context, outcome)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    answer = StreamingResponse(
        _stream(state, outcome, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-log.{fmt}"'},
    )
    return web.no_store(answer)


def _stream(state: AppState, filters: search.Filters, fmt: str) -> Iterator[str]:
    with state.sessions() as session:
        yield from search.export(search.iter_entries(session, filters), fmt)


# --- anomalies ------------------------------------------------------------------------------


@router.get("/anomalies")
async def anomalies_page(request: Request) -> Response:
    """``GET /v1/audit/anomalies``: the flags of a period (default the last 30 days), each
    with the entries behind it."""
    state: AppState = request.app.state.exchange
    since_text = request.query_params.get("since", "").strip()
    until_text = request.query_params.get("until", "").strip()
    decision = web.decision_for(request, "audit.anomalies")
    context: dict[str, Any] = {"since": since_text, "until": until_text, "errors": {}}

    def work(session: Session, identity: Identity) -> list[anomalies.Anomaly]:
        since = parse_date(since_text, "since")
        until = parse_date(until_text, "until")
        if until is not None:
            until += timedelta(days=1)  # the whole of the last day
        if since is not None and until is not None and since >= until:
            raise ValidationError([("until", "period.order", "the end comes before the start")])
        window = search.Filters(since=since, until=until)
        decision.reason = "anomaly flags"
        return anomalies.scan(session, state.settings.audit, since=window.since, until=window.until)

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return show_error(request, "auditor/anomalies.html", {**context, "kinds": KINDS}, outcome)
    flags = [(flag, _search_link(flag)) for flag in outcome]
    return web.render(
        request, "auditor/anomalies.html", {**context, "flags": flags, "kinds": KINDS}
    )


def _search_link(flag: anomalies.Anomaly) -> dict[str, str]:
    """The log search (as the search form's fields, in the console's time zone, to the
    minute) that lists the entries of a flag's actor over its period."""
    start = flag.start.astimezone(i18n.TIMEZONE).replace(second=0, microsecond=0)
    end = flag.end.astimezone(i18n.TIMEZONE).replace(second=0, microsecond=0)
    minute = "%Y-%m-%dT%H:%M"
    return {
        "actor": flag.actor,
        "since": start.strftime(minute),
        "until": (end + timedelta(minutes=1)).strftime(minute),
    }


__all__ = ["router"]
