"""One audited request: authenticate, decide, do the work, write exactly one audit entry.

Every request to a route leaves exactly one entry, whose ``status`` is the HTTP
status the caller was answered, whatever the route and the outcome. The
:class:`AuditMiddleware` sees each response start and, before it lets it through,
writes the request's entry with that status: the decision a route handed over
(:func:`gateway.access.authorize`, :func:`run_audited_read`), finished with the
status and error answered; or, for a request the route never saw (its parameters
or body refused by validation, 422 or 400), an entry of its own naming the caller
(identified then) and the route's path template. If the entry cannot be written
the request is answered 503 and nothing of the response is sent (fail closed).

Work that changes the database (:func:`run_audited`) runs in the transaction that
appends the entry, under the audit lock, so the change and its entry commit
together; the middleware then writes nothing more. Read-only work (lookups,
searches: :func:`run_audited_read`) runs in its own session outside the audit
lock, and its entry is group-committed by the middleware
(:mod:`exchange.audit.group`), which waits for the commit in the event loop: a
request holds no worker thread while its entry waits.

Not audited: ``/healthz``, ``/readyz``, ``/metrics`` (behind its own credential) and
the API documentation (``/openapi.json``, ``/docs``, ``/redoc``), which disclose
nothing, and requests that match no route (404 or 405 from the router).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange import audit
from exchange.access import catalogue
from exchange.core.db import transaction
from exchange.core.errors import (
    AuditWriteError,
    AuthThrottledError,
    CsrfError,
    ExchangeError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from exchange.identity.apikeys import Identity
from gateway.access import AuditSlot, append, hand_over, identify_audited, slot
from gateway.deps import AppState
from gateway.problems import domain_problem, status_for
from gateway.views import json_response

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Paths that take no credentials and disclose nothing: never audited.
UNAUDITED = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
# Static assets (the API documentation's, the console's): public, disclose nothing.
UNAUDITED_PREFIXES = ("/static/", "/ui/static/")
INTERNAL_ERROR = "internal error; nothing was disclosed"


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
    hand_over(request, decision)  # written by the middleware if this transaction fails
    with state.audit_lock, transaction(state.sessions) as session:
        outcome = _decide(state, request, decision, work, session, roles)
        # Latency (sharing indicators): to the append, just before the answer starts.
        decision.latency_ms = slot(request).latency_ms()
        append(session, decision)
    slot(request).written = True
    state.metrics.audit_written(1, 0)
    if isinstance(outcome, ExchangeError):
        raise outcome
    return outcome


def run_audited_read(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], M],
) -> Response:
    """Run read-only ``work`` for the caller and audit the outcome in ``decision`` (as
    :func:`run_audited` does); the answer is the model as JSON or the problem of a domain
    error, and the audit middleware writes ``decision`` before it is sent. ``work`` must
    not write: its session is never committed."""
    outcome = decide_read(state, request, decision, work)
    if isinstance(outcome, ExchangeError):
        return domain_problem(request, outcome)
    return json_response(outcome)


def decide_read(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T],
    *,
    roles: frozenset[str] | None = None,
) -> T | ExchangeError:
    """Run read-only ``work`` for the caller, audit the outcome in ``decision`` (written by
    the middleware with the status answered) and give back what it returned or the domain
    error to answer with :func:`gateway.problems.status_for` (the web console renders
    either as a page, the API as JSON)."""
    hand_over(request, decision)
    try:
        with state.sessions() as session:
            return _decide(state, request, decision, work, session, roles)
    except AuthThrottledError:
        raise  # refused before authentication: counted in a metric, not audited
    except Exception:
        # A failure of the work itself (a database error): nothing was read out, but the
        # request was still made; the middleware writes its entry with the 500 answered.
        decision.decision, decision.status = "deny", 500
        decision.reason, decision.fields = INTERNAL_ERROR, []
        raise


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
        identity = identify_audited(state, session, request, decision)
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
        decision.decision = "deny" if exc.refused else "allow"
        decision.status, decision.reason = status_for(exc), exc.message
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


def _answered(status: int, error: str | None) -> str:
    """The reason an entry gives for an answer the route did not decide: the error answered,
    else what the status says."""
    return error or (INTERNAL_ERROR if status >= 500 else f"answered {status}")


def finish(decision: audit.Decision, status: int, error: str | None) -> None:
    """Make ``decision`` say what was answered: ``status``, and when the route refused
    after the decision was made (an unknown object, a malformed body), the error; a
    request answered 404 is recorded as allowed (the caller was entitled to ask), any
    other error as denied, with nothing disclosed."""
    if status == decision.status:
        return
    decision.status = status
    if status < 400:
        decision.decision = "allow"
        return
    if not (status == 404 and decision.decision == "allow"):
        decision.decision = "deny"
    _, marker, target = decision.reason.partition("; target: ")
    reason = _answered(status, error)
    decision.reason = f"{reason}; target: {target}" if marker else reason
    decision.fields = []


def unrouted_decision(
    state: AppState, request: Request, status: int, error: str | None
) -> audit.Decision:
    """The entry of a request its route never decided on (refused by validation before the
    route ran): the caller identified now (refused credentials are noted in the reason),
    the route named by its path template, never by the path (which may hold an
    identifier)."""
    route = request.scope.get("route")
    template = getattr(route, "path", "?")
    reason = _answered(status, error)
    decision = audit.Decision(
        request_id=str(request.state.request_id),
        action="request.refused" if status >= 400 else "request",
        decision="deny" if status >= 400 else "allow",
        reason=f"{request.method} {template}: {reason}",
        status=status,
    )
    with state.sessions() as session:
        try:
            identify_audited(state, session, request, decision)
        except CsrfError:
            # A console form refused before it was read: its token could not be checked;
            # the caller was identified, and nothing was done.
            pass
        except ExchangeError as exc:
            decision.reason = f"{decision.reason}; credentials refused: {exc.message}"
    return decision


class AuditMiddleware:
    """Writes each request's one audit entry, with the status answered, before the response
    starts; answers 503 (and sends nothing of the response) if it cannot be written."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in UNAUDITED
            or scope["path"].startswith(UNAUDITED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        found = AuditSlot()
        scope.setdefault("state", {})["audit"] = found
        started = refused = False

        async def audited_send(message: Message) -> None:
            nonlocal started, refused
            if message["type"] == "http.response.start":
                started = True
                if not await self._write(scope, found, int(message["status"])):
                    refused = True
                    await domain_problem(Request(scope), AuditWriteError())(scope, receive, send)
                    return
            elif refused:
                return  # the body of a response whose entry could not be written
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not started:
                # Answered 500 by the request id middleware; the entry first, if it can be.
                found.reason = INTERNAL_ERROR
                await self._write(scope, found, 500)
            raise

    async def _write(self, scope: Scope, found: AuditSlot, status: int) -> bool:
        """Write the request's entry with ``status``; whether it was written."""
        state: AppState = scope["app"].state.exchange
        decision = found.decision
        if found.unaudited:
            return True  # refused before authentication: a metric counts it
        if found.written:
            if decision is not None and decision.status != status:
                log.error(
                    "audit entry of request %s says %d, the answer was %d",
                    decision.request_id,
                    decision.status,
                    status,
                )
            return True
        if decision is None:
            if scope.get("route") is None:
                return True  # no route matched: nothing was asked of the exchange
            try:
                decision = await anyio.to_thread.run_sync(
                    unrouted_decision, state, Request(scope), status, found.reason
                )
            except Exception:
                log.exception("the caller of an unrouted request could not be identified")
                return False
        else:
            finish(decision, status, found.reason)
        found.written = True  # once, even if the writer then fails
        # Latency (sharing indicators): from the request's arrival to its answer starting.
        decision.latency_ms = found.latency_ms()
        try:
            ticket = state.audit_writer.submit(decision)
        except Exception:
            log.exception("audit entry not queued")
            return False
        await ticket.settled()
        if ticket.error is not None:
            log.error("audit entry not written: %r", ticket.error)
            return False
        return True
