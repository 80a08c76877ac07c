"""Authenticate, authorize by role, and audit the decision, for routes whose rule is a role.

The decision is handed to the request's audit slot (:class:`AuditSlot`): the
audit middleware (:class:`gateway.audited.AuditMiddleware`) writes it, with the
status actually answered, before the response starts, so every request, allowed
or denied, leaves exactly one entry whose status is the one the caller got, even
when the route refuses after the role check (an unknown object, a malformed body).
Keys come in ``X-API-Key``, as
``Authorization: Bearer dx_...`` or, for clients that only speak HTTP Basic
(Confluent's schema registry clients), as the password. A bearer token that is
not an API key is verified as an OIDC JWT when the gateway is configured for one.
Each identity's requests are then counted against its rate limit.

Before any credential is looked at, the request takes a token from its client
address's budget of failed authentications (``gateway.auth_failures_per_minute``);
a success gives it back. An address with none left is refused at once
(:class:`AuthThrottledError`, 429) without a database read or scrypt, counted in
the ``exchange_gateway_auth_throttled_total`` metric and not audited, so a flood of
wrong keys neither slows the gateway down nor fills the audit log. A key this
process has verified before still passes. The client address is the connection's
peer, or what ``gateway.client_address_header`` says when the peer is one of
``gateway.trusted_proxies``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import time
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import audit
from exchange.core.config import Environment, GatewaySettings
from exchange.core.db import utcnow
from exchange.core.errors import (
    AuditWriteError,
    AuthenticationError,
    AuthThrottledError,
    CsrfError,
    PermissionDeniedError,
    RateLimitedError,
    SessionExpiredError,
)
from exchange.core.models import ApiKey
from exchange.identity import apikeys, consolesessions, ratelimit
from exchange.identity.apikeys import Identity
from gateway.deps import AppState
from gateway.problems import is_registry, status_for


def presented_key(request: Request) -> str | None:
    """The API key sent in ``X-API-Key``, as a ``dx_`` bearer token, or as the password of
    HTTP Basic auth."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value.startswith(apikeys.PREFIX):
        return value
    if scheme.lower() == "basic" and value:
        try:
            _, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed"
        return password or None
    return None


def _bearer_token(request: Request) -> str | None:
    """A bearer token that is not an API key (an OIDC JWT, if anything)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or value.startswith(apikeys.PREFIX):
        return None
    return value


SESSION_COOKIE = "dx_session"
CONSOLE_PREFIX = "/ui/"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def console_cookie(request: Request) -> str | None:
    """The web console's session token: its cookie, on the console's own paths only (the
    API never takes a cookie, so a page elsewhere cannot make a browser call it)."""
    if not request.url.path.startswith(CONSOLE_PREFIX):
        return None
    return request.cookies.get(SESSION_COOKIE) or None


def _console_identity(state: AppState, request: Request, token: str) -> Identity:
    """The identity of a console session, which is kept in ``request.state.console``."""
    settings = state.settings.console
    lifetime = consolesessions.Lifetime(
        idle=timedelta(minutes=settings.idle_minutes),
        absolute=timedelta(hours=settings.absolute_hours),
    )
    current = consolesessions.resolve(state.sessions, token, lifetime)
    request.state.console = current
    return current.identity


def _check_form(request: Request) -> None:
    """A console form (any method but GET and HEAD) must come from this origin and carry
    its session's CSRF token (read by the console from the form into
    ``request.state.csrf_sent``); CsrfError otherwise."""
    if request.method in _SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != same_origin(request):
        # Not the header itself: the caller chooses it, and the message is the entry's reason.
        raise CsrfError("form sent from another site: refused")
    current: consolesessions.Current = request.state.console
    if not current.csrf_matches(getattr(request.state, "csrf_sent", None)):
        raise CsrfError(
            "the form's security token is missing or out of date: reload the page and send it again"
        )


def same_origin(request: Request) -> str:
    """This gateway's origin as the browser sees it (scheme, host and port)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def _trusted(address: str, proxies: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


def client_address(gateway: GatewaySettings, request: Request) -> str:
    """The address the request came from: the connection's peer or, when the peer is a
    trusted proxy and ``client_address_header`` names a header, the right-most address
    of that header that is not a trusted proxy (the one the proxy itself saw)."""
    peer = request.client.host if request.client else ""
    header = gateway.client_address_header
    if not header or not _trusted(peer, gateway.trusted_proxies):
        return peer
    hops = [h.strip() for h in request.headers.get(header, "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, gateway.trusted_proxies):
            return hop
    return hops[0] if hops else peer


def identify(
    state: AppState,
    session: Session,
    request: Request,
    decision: audit.Decision | None = None,
) -> Identity:
    """Who is calling: the identity of the credentials the request presents.

    Raises AuthThrottledError (429, not to be audited) when the client address has
    spent its budget of failed authentications, AuthenticationError (401) for missing,
    malformed, wrong, revoked or expired credentials, those of a disabled user, or (in
    production) those of the demo or of development mode, and RateLimitedError (429)
    when the identity has spent its request budget. Every route authenticates
    through here, inside the transaction that writes its audit entry; a route that
    audits itself answers them with :func:`gateway.problems.status_for`. ``decision``,
    when given, gets the caller's actor, department and role as soon as they are known,
    so a rate-limited request is audited under the identity that made it.
    """
    if request.url.path.startswith(CONSOLE_PREFIX):
        # The console takes its session cookie only: its forms' CSRF check is made on the
        # session, and a browser sends HTTP Basic credentials by itself (the registry's
        # routes ask for them), so a page elsewhere could post a form with those.
        token, key, cookie = None, None, console_cookie(request)
    else:
        token = None if request.headers.get("x-api-key") else _bearer_token(request)
        key = presented_key(request) if token is None else None
        cookie = None
    address = client_address(state.settings.gateway, request)
    # Before anything is read or hashed: an address out of failed-authentication tokens
    # is refused here (not audited), unless its key is one this process verified before.
    wait = state.auth_failures.take(address)
    if wait and not apikeys.vouched(key):
        state.metrics.auth_throttled.inc()
        slot(request).unaudited = True
        raise ratelimit.throttled(wait)
    try:
        if cookie is not None:
            identity = _console_identity(state, request, cookie)
        elif key is None and token is None and request.url.path.startswith(CONSOLE_PREFIX):
            raise AuthenticationError("you are not signed in: sign in to use the console")
        elif token is None:
            identity = apikeys.authenticate(
                session, key, production=state.settings.env is Environment.PRODUCTION
            )
        elif state.oidc is None:
            raise AuthenticationError(
                "bearer tokens are not accepted here: send an API key in the X-API-Key header"
            )
        else:
            identity = state.oidc.authenticate(session, token)
    except AuthenticationError:
        state.metrics.auth_failures.inc()
        raise
    if not wait:
        state.auth_failures.refund(address)
    if decision is not None:
        decision.actor, decision.department, decision.role, decision.key_id = (
            identity.actor,
            identity.department,
            identity.role,
            identity.key_id,
        )
    if cookie is not None:
        _check_form(request)
    limiter = state.registry_rate_limiter if is_registry(request) else state.rate_limiter
    limiter.acquire(identity.limit_key)
    return identity


@dataclass
class AuditSlot:
    """What a request will be audited as: kept in ``request.state.audit`` by the audit
    middleware, which writes ``decision`` with the status answered before the response
    starts. ``written``: the entry was already appended in the transaction of the route's
    change (:func:`gateway.audited.run_audited`). ``reason``: the error the request was
    answered with, noted by the exception handlers."""

    decision: audit.Decision | None = None
    written: bool = False
    reason: str | None = None
    # Refused before authentication (AuthThrottledError): counted in a metric, never
    # audited one by one, so a flood of failed attempts cannot fill the log.
    unaudited: bool = False
    # When the request arrived (time.perf_counter(): the slot is made as the audit
    # middleware receives the request), for the entry's latency_ms.
    arrived: float = field(default_factory=time.perf_counter)

    def latency_ms(self) -> int:
        """Whole milliseconds since the request arrived (the entry's ``latency_ms``)."""
        return max(0, round((time.perf_counter() - self.arrived) * 1000))


def slot(request: Request) -> AuditSlot:
    """The request's audit slot (a fresh one outside the audit middleware, e.g. in a test
    that calls a route directly: nothing then writes it)."""
    found = getattr(request.state, "audit", None)
    if not isinstance(found, AuditSlot):
        found = AuditSlot()
        request.state.audit = found
    return found


def hand_over(request: Request, decision: audit.Decision) -> None:
    """Make ``decision`` the request's entry, written by the audit middleware with the
    status answered (a later call replaces an earlier one: one entry per request)."""
    found = slot(request)
    found.decision, found.written = decision, False


def identify_audited(
    state: AppState, session: Session, request: Request, decision: audit.Decision
) -> Identity:
    """:func:`identify`, and on refused credentials the id of the key presented in
    ``decision.key_id`` if it is a key the exchange issued (revoked, expired, of a disabled
    user, or with a wrong secret), so that a replayed key can be traced; an id that names no
    key is not recorded (what a caller types there might be anything, a person's number)."""
    try:
        return identify(state, session, request, decision)
    except SessionExpiredError as exc:
        decision.key_id = exc.key_id  # the key (or sign-on) the console session was made from
        raise
    except AuthenticationError:
        decision.key_id = known_key_id(session, request)
        raise


def known_key_id(session: Session, request: Request) -> str | None:
    """The id of the API key the request presents, if the exchange issued a key of that id."""
    return issued_key_id(session, presented_key(request))


def issued_key_id(session: Session, presented: str | None) -> str | None:
    """The id of the API key ``presented`` (from a header, or the console's sign-in form),
    if the exchange issued a key of that id."""
    if presented is None:
        return None
    try:
        key_id = apikeys.key_id_of(presented)
    except AuthenticationError:
        return None
    found = session.scalar(select(ApiKey.key_id).where(ApiKey.key_id == key_id))
    return str(found) if found is not None else None


def authorize(
    state: AppState,
    request: Request,
    *,
    action: str,
    roles: frozenset[str],
    dataset: str | None = None,
    department: str | None = None,
    target: str | None = None,
    subjects: list[str] | None = None,
) -> Identity:
    """Return the caller's identity if its role is in ``roles`` (and, when given, it
    belongs to ``department``); audit the decision either way.

    ``target`` names the object the request creates or changes (e.g. ``user li.na``);
    it is written into the audit entry's reason. Never put a secret in it.
    ``subjects`` (blind indexes of the data subjects the request is about) are named
    in the entry. The entry is written by the audit middleware once the route has
    answered, with the status it answered: an allowed request the route then refuses
    (404, 400, 422) is recorded as such."""
    decision = audit.Decision(
        request_id=str(request.state.request_id),
        action=action,
        decision="deny",
        reason="",
        status=401,
        dataset=dataset,
        subjects=list(subjects or []),
    )
    identity: Identity | None = None
    error: AuthenticationError | PermissionDeniedError | RateLimitedError | None = None
    with state.sessions() as session:
        try:
            identity = identify_audited(state, session, request, decision)
            if identity.role not in roles:
                raise PermissionDeniedError(
                    f"role {identity.role!r} may not {action}; allowed: {', '.join(sorted(roles))}"
                )
            if department is not None and identity.department != department:
                raise PermissionDeniedError(
                    f"{action} is for department {department!r}; the key belongs to "
                    f"{identity.department!r}"
                )
            decision.decision, decision.status, decision.reason = "allow", 200, "role allowed"
        except AuthThrottledError:
            raise  # refused before authentication: counted in a metric, not audited
        except (AuthenticationError, PermissionDeniedError, RateLimitedError) as exc:
            error, decision.status = exc, status_for(exc)
            decision.reason = ratelimit.REASON if isinstance(exc, RateLimitedError) else exc.message
    if target is not None:
        decision.reason = f"{decision.reason}; target: {target}"
    hand_over(request, decision)
    if error is not None:
        raise error
    assert identity is not None
    return identity


def append(session: Session, decision: audit.Decision) -> None:
    """Append ``decision`` in the caller's transaction; AuditWriteError if it fails."""
    try:
        audit.append(session, decision, at=utcnow())
    except Exception as exc:
        raise AuditWriteError() from exc
