"""One audited request: authenticate, decide, do the work, write exactly one audit entry.

The entry is committed before anything is answered; if it cannot be written the
request fails (503) and nothing is disclosed (fail closed). A domain error raised
by the work is answered after its entry is written, so every request, allowed or
denied, leaves exactly one entry.

Work that changes the database (:func:`run_audited`) runs in the transaction that
appends the entry, under the audit lock, so the change and its entry commit
together. Read-only work (lookups, searches: :func:`run_audited_read`) runs in its
own session outside the audit lock, and its entry is group-committed afterwards
(:mod:`exchange.audit.group`): the gateway serves many reads at once and
serialises only the appends. Such work sees the database as of its own reads.
The route returns at once an :class:`AuditedResponse`, which waits in the event
loop for the entry's commit before it sends anything, and sends a 503 problem
instead if the entry could not be written: a request holds no worker thread while
its entry waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from exchange import audit
from exchange.access import catalogue
from exchange.audit.group import Ticket
from exchange.core.db import transaction
from exchange.core.errors import (
    AuditWriteError,
    AuthThrottledError,
    ExchangeError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from exchange.identity.apikeys import Identity
from gateway.access import append, append_committed, identify, submit
from gateway.deps import AppState
from gateway.problems import domain_problem, status_for
from gateway.views import json_response

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def pending(
    request_id: str,
    action: str,
    *,
    purpose: str | None = None,
    case_ref: str | None = None,
    dataset: str | None = None,
) -> audit.Decision:
    """The decision of a request not decided yet: a denial answered 500 until
    :func:`run_audited` records what happened, so nothing reads as allowed by mistake.

    The entry keeps ``purpose`` only if it has the form of a purpose code and
    ``case_ref`` only if no rule refuses it whatever the purpose (no identity or phone
    number, no padding): a refused value never reaches the audit log, whatever happens
    to the request next (:func:`stated_purpose` checks both for the work)."""
    if purpose is not None and not catalogue.is_canonical_code(purpose):
        purpose = None
    if case_ref is not None and catalogue.case_ref_problem(case_ref) is not None:
        case_ref = None
    return audit.Decision(
        request_id=request_id,
        action=action,
        decision="deny",
        reason="",
        status=500,
        purpose=purpose,
        case_ref=case_ref,
        dataset=dataset,
    )


def stated_purpose(
    state: AppState,
    session: Session,
    decision: audit.Decision,
    purpose: str | None,
    case_ref: str | None,
) -> str:
    """The purpose code a request states, exactly a code of the catalogue and active, with
    a case reference that meets the purpose's rules; the ValidationError otherwise, after
    taking from ``decision`` a purpose that is not a code of the catalogue."""
    try:
        return state.catalogue.active_purpose(session, purpose, case_ref)
    except ValidationError:
        if not state.catalogue.is_code(session, decision.purpose):
            decision.purpose = None
        raise


def run_audited(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T],
    *,
    roles: frozenset[str] | None = None,
) -> T:
    """Run ``work`` for the caller, in the transaction that appends its entry, and audit
    the outcome in ``decision``.

    ``work`` may fill in ``decision`` (datasets, subjects, fields, reason); an
    outcome without an error is recorded as ``allow``/200 unless ``work`` set
    another status. A :class:`NotFoundError` is recorded as an allowed request
    answered 404 (the caller was entitled to ask); any other domain error as a
    denial with its status and message.
    """
    with state.audit_lock, transaction(state.sessions) as session:
        outcome = _decide(state, request, decision, work, session, roles)
        append(session, decision)
    if isinstance(outcome, ExchangeError):
        raise outcome
    return outcome


class AuditedResponse(Response):
    """``response``, sent once the audit entry of ``ticket`` is committed; if it could not
    be, a 503 problem is sent instead and nothing of ``response`` (fail closed)."""

    def __init__(self, ticket: Ticket, response: Response, request: Request) -> None:
        # Not Response.__init__: the body and headers are ``response``'s, already rendered.
        self.status_code = response.status_code
        self.body = response.body
        self.raw_headers = response.raw_headers
        self.background = response.background
        self._ticket = ticket
        self._request = request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._ticket.settled()
        if self._ticket.error is None:
            await super().__call__(scope, receive, send)
            return
        log.error("audit entry not written: %r", self._ticket.error)
        await domain_problem(self._request, AuditWriteError())(scope, receive, send)


def run_audited_read(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], M],
) -> Response:
    """Run read-only ``work`` for the caller and audit the outcome in ``decision`` (as
    :func:`run_audited` does); the answer, the model as JSON or the problem of a domain
    error, is sent by an :class:`AuditedResponse` once the entry is committed. ``work``
    must not write: its session is never committed."""
    try:
        with state.sessions() as session:
            outcome = _decide(state, request, decision, work, session, None)
    except AuthThrottledError:
        raise  # refused before authentication: counted in a metric, not audited
    except Exception:
        # A failure of the work itself (a database error): nothing was read out, but the
        # request was still made; it leaves its entry, then the 500 is answered.
        decision.decision, decision.status = "deny", 500
        decision.reason, decision.fields = "internal error; nothing was disclosed", []
        append_committed(state, decision)
        raise
    ticket = submit(state, decision)
    if isinstance(outcome, ExchangeError):
        return AuditedResponse(ticket, domain_problem(request, outcome), request)
    return AuditedResponse(ticket, json_response(outcome), request)


def _decide(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T],
    session: Session,
    roles: frozenset[str] | None,
) -> T | ExchangeError:
    """Authenticate, check the role and run ``work``; record the outcome in ``decision``."""
    outcome: T | ExchangeError
    try:
        # Fills the decision's actor, department and role as soon as they are known,
        # so a rate-limited request is audited under the identity that made it.
        identity = identify(state, session, request, decision)
        if roles is not None and identity.role not in roles:
            raise PermissionDeniedError(
                f"role {identity.role!r} may not {decision.action}; "
                f"allowed: {', '.join(sorted(roles))}"
            )
        outcome = work(session, identity)
        decision.decision = "allow"
        if decision.status >= 400 or decision.status < 200:
            decision.status = 200
    except AuthThrottledError:
        raise  # refused before authentication: counted in a metric, not audited
    except NotFoundError as exc:
        outcome = exc
        decision.decision, decision.status, decision.reason = "allow", status_for(exc), exc.message
        decision.fields = []
    except ExchangeError as exc:
        outcome = exc
        decision.decision, decision.status, decision.reason = (
            "deny",
            status_for(exc),
            exc.message,
        )
        decision.fields = []
    return outcome


def end_reads(session: Session) -> None:
    """In read-only work, once everything is read: keep the objects read (detached, their
    values loaded) and end the read transaction, giving its connection back to the pool.
    Decryption may take another connection (the key store's), and a request must never
    hold one while it waits for a second: under load the pool would run dry."""
    session.expunge_all()
    session.rollback()
