"""What the auditor's pages share: the search form as typed, its parsing into the API's
filters (a resident ID into the blind index the log names a person by), field errors in
the user's language, and the audited visit of a page that only shows a form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from exchange.audit import search
from exchange.core.errors import ExchangeError, ValidationError
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import Identity
from gateway.auditor import AUDITORS
from gateway.console import i18n, web
from gateway.console.i18n import N_
from gateway.deps import AppState
from gateway.params import SQL_INT_MAX
from gateway.query import person_subject

# What a form's field problems say, by the reason code the page raised them with.
FIELD_PROBLEMS = {
    "time.invalid": N_("Enter a date and time, for example 2026-12-07 09:00."),
    "date.invalid": N_("Enter a date, for example 2026-12-07."),
    "period.order": N_("The start must come before the end."),
    "person.missing": N_("Enter the person's resident ID."),
    "decision.invalid": N_("Choose allowed or refused."),
    "number.invalid": N_("Enter a whole number, 0 or more."),
    "size.invalid": N_("Enter a tree size of 1 or more."),
    "proof.order": N_("The first tree size must not be larger than the second."),
    "format.invalid": N_("Choose CSV or JSON Lines."),
    "key.invalid": N_("Paste the public key as exported by `exchange audit public-key`."),
}


@dataclass(frozen=True)
class LogQuery:
    """What the search form holds, as typed (``person``: a resident ID, only ever sent in a
    POST form's body)."""

    actor: str = ""
    person: str = ""
    dataset: str = ""
    purpose: str = ""
    decision: str = ""
    since: str = ""
    until: str = ""
    after: str = ""

    @classmethod
    def of(cls, values: Mapping[str, Any], *, person: bool) -> LogQuery:
        def text(name: str) -> str:
            value = values.get(name)
            return value.strip() if isinstance(value, str) else ""

        return cls(
            actor=text("actor"),
            person=text("person") if person else "",
            dataset=text("dataset"),
            purpose=text("purpose"),
            decision=text("decision"),
            since=text("since"),
            until=text("until"),
            after=text("after"),
        )

    def hidden(self) -> dict[str, str]:
        """The search as hidden fields of the next page's and the export's forms."""
        return {k: v for k, v in vars(self).items() if v and k != "after"}


# The years a typed time may name: outside them a time zone's shift (or the day added to an
# end date) overflows Python's datetime, which would answer 500 instead of the field's error.
YEARS = range(1900, 9999)


def parse_time(value: str, name: str) -> datetime | None:
    """A typed or ``datetime-local`` time, in the console's time zone unless it says its
    own; ValidationError naming the field otherwise."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        # Never the value typed in the message: it becomes the audit entry's reason.
        raise ValidationError([(name, "time.invalid", "not a date and time")]) from None
    if moment.year not in YEARS:
        raise ValidationError([(name, "time.invalid", "not a time between 1900 and 9998")])
    return moment if moment.tzinfo else moment.replace(tzinfo=i18n.TIMEZONE)


def parse_int(value: str, name: str, *, minimum: int = 0, code: str = "number.invalid") -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not minimum <= number <= SQL_INT_MAX:
        raise ValidationError([(name, code, f"{name} must be a whole number from {minimum}")])
    return number


def filters_of(state: AppState, query: LogQuery) -> search.Filters:
    """The search's filters, as the API's ``/v1/audit/entries`` takes them (the person as
    the blind index the log names them by)."""
    if query.decision not in ("", "allow", "deny"):
        raise ValidationError([("decision", "decision.invalid", "decision must be allow or deny")])
    since, until = parse_time(query.since, "since"), parse_time(query.until, "until")
    if since is not None and until is not None and since >= until:
        raise ValidationError([("until", "period.order", "the end must come after the start")])
    return search.Filters(
        actor=query.actor or None,
        subject=person_subject(state, query.person) if query.person else None,
        dataset=query.dataset or None,
        purpose=query.purpose or None,
        decision=query.decision or None,
        since=since,
        until=until,
    )


def row(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the pages show it: the API's view of it, its time as a datetime."""
    return {**search.public(entry), "when": entry.at}


def field_errors(exc: ExchangeError, _: Callable[[str], str]) -> dict[str, str]:
    """A ValidationError's problems, translated, by the form field they concern."""
    if not isinstance(exc, ValidationError):
        return {}
    return {
        name: _(FIELD_PROBLEMS[code]) if code in FIELD_PROBLEMS else message
        for name, code, message in exc.reasons
    }


def show_error(
    request: Request, template: str, context: dict[str, Any], exc: ExchangeError
) -> Response:
    """The form again with what was wrong against its fields (or the refusal page for a
    refused role or session)."""
    if isinstance(exc, ValidationError):
        context = {**context, "errors": field_errors(exc, web.gettext(request))}
        return web.form_error(request, template, context, exc)
    return web.refusal(request, exc)


async def form_page(request: Request, template: str, page: str) -> Response:
    """A page that only shows a form: nothing is read, but the role is checked and the
    visit audited (``console.form``), as every console page is."""
    decision = web.decision_for(request, "console.form")

    def work(session: Session, identity: Identity) -> None:
        decision.reason = f"form: {page}"

    outcome = await web.read(request, decision, work, roles=AUDITORS)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(request, template, {"query": LogQuery(), "errors": {}})


def parse_date(value: str, name: str) -> datetime | None:
    """A date (the start of that day in the console's time zone), or None if empty."""
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError([(name, "date.invalid", "not a date")]) from None
    if day.year not in YEARS:
        raise ValidationError([(name, "date.invalid", "not a date between 1900 and 9998")])
    start = datetime(day.year, day.month, day.day)
    return start.replace(tzinfo=i18n.TIMEZONE)


__all__ = [
    "FIELD_PROBLEMS",
    "LogQuery",
    "field_errors",
    "filters_of",
    "form_page",
    "parse_date",
    "parse_int",
    "parse_time",
    "row",
    "show_error",
]
