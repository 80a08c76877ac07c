"""Signing in and out of the console, single sign-on, the language switch and the home page.

- ``GET /ui/sign-in``: the form (API key; single sign-on when configured). Not audited:
  it discloses nothing. It sets a sign-in CSRF cookie that the form must send back.
- ``POST /ui/sign-in``: an API key from the form. Audited (``console.sign_in``) like any
  authentication: allowed with the session made, or denied 401 with the reason. The
  client address's budget of failed authentications applies, as for the API.
- ``GET /ui/sign-in/oidc``: starts single sign-on (authorization code, PKCE, nonce);
  ``GET /ui/sign-in/oidc/callback``: the provider's answer, audited (``console.sign_in``).
- ``POST /ui/sign-out``: ends the session (CSRF token required), audited.
- ``GET /ui/language/{lang}``: chooses the language (a cookie), not audited.
- ``GET /ui/``: the home page, with the links for the user's role.

The session cookie is ``HttpOnly``, ``SameSite=Strict``, limited to ``/ui``, and
``Secure`` over TLS (``console.secure_cookie``); it holds a random token whose hash the
database keeps (:mod:`exchange.identity.consolesessions`). No secret is ever put in a URL.
"""

from __future__ import annotations

from functools import cache

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from exchange import audit
from exchange.core.config import Environment
from exchange.core.db import transaction
from exchange.core.errors import (
    AuthenticationError,
    AuthThrottledError,
    CsrfError,
    ExchangeError,
)
from exchange.identity import apikeys, consolesessions, oidcclient, ratelimit
from exchange.identity.apikeys import Identity
from exchange.identity.oidc import identity_of
from exchange.security.crypto import equal
from gateway.access import (
    SESSION_COOKIE,
    client_address,
    hand_over,
    issued_key_id,
    same_origin,
)
from gateway.console import i18n, web
from gateway.deps import AppState

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)

# Where a sign-on returns to is kept in console_logins.return_to, String(255), a length
# PostgreSQL enforces.
RETURN_TO_LENGTH = 255
SSO_COOKIE = "dx_sso"  # binds a single sign-on's state to the browser that started it
# The error codes a provider may send back to the callback (RFC 6749 4.1.2.1, OpenID
# Connect Core 3.1.2.6). Anyone can open the callback with an ``error`` of their choosing:
# only one of these is repeated on the page and in the audit entry's reason.
PROVIDER_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)
ALL_ROLES = frozenset(
    {"caseworker", "auditor", "admin", "publisher", "department_admin", "data_steward"}
)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    state: AppState = request.app.state.exchange
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=state.settings.console.absolute_hours * 3600,
        path=web.PREFIX,
        secure=web.secure_cookie(request),
        httponly=True,
        samesite="strict",
    )


def _decision(request: Request, action: str) -> audit.Decision:
    return web.decision_for(request, action)


def _fill(decision: audit.Decision, identity: Identity) -> None:
    decision.actor, decision.department, decision.role, decision.key_id = (
        identity.actor,
        identity.department,
        identity.role,
        identity.key_id,
    )


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    web.unaudited(request)
    return web.sign_in_page(request, next_path=web.safe_next(next))


def _take_budget(state: AppState, request: Request, address: str, key: str | None) -> float:
    """Take a token of the client address's budget of failed authentications (given back on
    success); AuthThrottledError, not audited, when none is left (a key this process has
    verified before still passes, as for the API)."""
    wait = state.auth_failures.take(address)
    if wait and not apikeys.vouched(key):
        web.unaudited(request)
        state.metrics.auth_throttled.inc()
        raise ratelimit.throttled(wait)
    return wait


def _check_sign_in_csrf(request: Request, sent: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != same_origin(request):
        # Not the header itself: the caller chooses it, and the message is the entry's reason.
        raise CsrfError("form sent from another site: refused")
    expected = request.cookies.get(web.SIGN_IN_COOKIE, "")
    if not expected or not sent or not equal(expected.encode(), sent.encode()):
        raise CsrfError(
            "the sign-in form's security token is missing or out of date: reload the page "
            "and sign in again"
        )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    state: AppState = request.app.state.exchange
    form = await request.form()
    key = web.field(form, "api_key")
    target = web.safe_next(web.field(form, "next"))
    decision = _decision(request, "console.sign_in")
    decision.reason = "sign-in with an API key"
    hand_over(request, decision)
    address = client_address(state.settings.gateway, request)

    def work() -> str:
        # The address's budget of failures first: a form refused for its token spends it
        # too, so a flood of forged forms is throttled (429, counted, not audited one by
        # one) instead of writing the audit log as fast as it is sent.
        wait = _take_budget(state, request, address, key)
        _check_sign_in_csrf(request, web.field(form, web.CSRF_FIELD))
        with transaction(state.sessions) as session:
            try:
                identity = apikeys.authenticate(
                    session, key, production=state.settings.env is Environment.PRODUCTION
                )
            except AuthenticationError:
                state.metrics.auth_failures.inc()
                # As the API records it: the id of a key the exchange issued (revoked,
                # expired, a disabled user's, a wrong secret), so a replayed key is traced.
                decision.key_id = issued_key_id(session, key)
                raise
            if not wait:
                state.auth_failures.refund(address)
            _fill(decision, identity)
            previous = request.cookies.get(SESSION_COOKIE)
            if previous:  # signing in again ends the session this browser had
                consolesessions.end(session, previous)
            return consolesessions.start(session, identity)

    try:
        token = await anyio.to_thread.run_sync(work)
    except ExchangeError as exc:
        decision.decision, decision.reason = "deny", f"sign-in refused: {exc.message}"
        decision.status = 401 if isinstance(exc, AuthenticationError) else 403
        if isinstance(exc, AuthenticationError):
            return web.sign_in_page(
                request, status=401, message=exc.message, code=exc.code, next_path=target
            )
        return web.refusal(request, exc)
    decision.decision, decision.status = "allow", 303
    answer = web.see_other(target)
    set_session_cookie(request, answer, token)
    return answer


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await web.read_form(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    state: AppState = request.app.state.exchange
    decision = _decision(request, "console.sign_out")

    def work(session, identity: Identity) -> None:  # type: ignore[no-untyped-def]
        consolesessions.end(session, token)
        decision.reason = "signed out"
        decision.status = 303

    outcome = await web.change(request, decision, work)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    answer = web.see_other(f"{web.PREFIX}/sign-in")
    answer.delete_cookie(SESSION_COOKIE, path=web.PREFIX)
    del state
    return answer


@cache
def _provider(url: str) -> oidcclient.Provider:
    return oidcclient.discover(url)


def _sign_on(state: AppState) -> oidcclient.SignOn:
    console = state.settings.console
    if not (console.oidc_discovery_url and console.oidc_client_id):
        raise AuthenticationError("single sign-on is not configured: sign in with an API key")
    secret = console.oidc_client_secret.get_secret_value() if console.oidc_client_secret else None
    found: oidcclient.SignOn | None = getattr(state, "sign_on", None)
    if found is None:
        found = oidcclient.SignOn(
            _provider(console.oidc_discovery_url),
            client_id=console.oidc_client_id,
            client_secret=secret,
        )
        state.sign_on = found  # type: ignore[attr-defined]
    return found


def _redirect_uri(request: Request) -> str:
    state: AppState = request.app.state.exchange
    configured = state.settings.console.oidc_redirect_url
    return configured or f"{same_origin(request)}{web.PREFIX}/sign-in/oidc/callback"


@router.get("/sign-in/oidc")
async def sign_on_start(request: Request, next: str | None = None) -> Response:
    web.unaudited(request)
    state: AppState = request.app.state.exchange

    def begin() -> tuple[str, str]:
        sign_on = _sign_on(state)
        target = web.safe_next(next)
        if len(target) > RETURN_TO_LENGTH:  # a page with a long query: the home page instead
            target = f"{web.PREFIX}/"
        with transaction(state.sessions) as session:
            login = consolesessions.begin_login(session, target)
        url = oidcclient.authorization_url(
            sign_on.provider,
            client_id=sign_on.client_id,
            redirect_uri=_redirect_uri(request),
            state=login["state"],
            nonce=login["nonce"],
            code_verifier=login["code_verifier"],
        )
        return url, login["state"]

    try:
        url, login_state = await anyio.to_thread.run_sync(begin)
    except ExchangeError as exc:
        return web.sign_in_page(request, status=503, message=exc.message, code=exc.code)
    answer = web.see_other(url)
    # Lax, not Strict: the provider's redirect back is a navigation from another site.
    answer.set_cookie(
        SSO_COOKIE,
        login_state,
        max_age=600,
        path=f"{web.PREFIX}/sign-in/oidc",
        secure=web.secure_cookie(request),
        httponly=True,
        samesite="lax",
    )
    return answer


@router.get("/sign-in/oidc/callback")
async def sign_on_callback(request: Request) -> Response:
    state: AppState = request.app.state.exchange
    params = request.query_params
    decision = _decision(request, "console.sign_in")
    decision.reason = "single sign-on"
    hand_over(request, decision)
    returned = params.get("state", "")
    bound = request.cookies.get(SSO_COOKIE, "")
    address = client_address(state.settings.gateway, request)

    def work() -> tuple[str, str]:
        # Anyone can open the callback: its refusals spend the address's budget of failures
        # as the sign-in form's do (429 once spent, not audited one by one).
        wait = _take_budget(state, request, address, None)
        error = params.get("error")
        if error:
            code = error if error in PROVIDER_ERRORS else "an error it did not name"
            raise AuthenticationError(f"the identity provider refused the sign-in ({code})")
        if not returned or not bound or not equal(returned.encode(), bound.encode()):
            raise AuthenticationError(
                "this single sign-on was not started in this browser: start again"
            )
        sign_on = _sign_on(state)
        with transaction(state.sessions) as session:
            login = consolesessions.finish_login(session, returned)
        token = sign_on.id_token(
            params.get("code", ""),
            redirect_uri=_redirect_uri(request),
            code_verifier=login.code_verifier,
        )
        subject = sign_on.subject(token, nonce=login.nonce)
        with transaction(state.sessions) as session:
            identity = identity_of(session, subject)
            _fill(decision, identity)
            if not wait:
                state.auth_failures.refund(address)
            return consolesessions.start(session, identity), login.return_to

    try:
        token, target = await anyio.to_thread.run_sync(work)
    except AuthThrottledError as exc:
        return web.refusal(request, exc)
    except ExchangeError as exc:
        decision.decision, decision.status = "deny", 401
        decision.reason = f"single sign-on refused: {exc.message}"
        answer = web.sign_in_page(request, status=401, message=exc.message, code=exc.code)
        answer.delete_cookie(SSO_COOKIE, path=f"{web.PREFIX}/sign-in/oidc")
        return answer
    decision.decision, decision.status = "allow", 200
    # A page that moves on by itself, not a redirect: the session cookie is SameSite=Strict,
    # and a browser does not send it on a redirect that a navigation from another site
    # (the provider's) started.
    answer = web.render(request, "continue.html", {"target": web.safe_next(target)})
    set_session_cookie(request, answer, token)
    answer.delete_cookie(SSO_COOKIE, path=f"{web.PREFIX}/sign-in/oidc")
    return answer


@router.get("/language/{lang}")
async def choose_language(request: Request, lang: str, next: str | None = None) -> Response:
    web.unaudited(request)
    answer = web.see_other(web.safe_next(next))
    answer.set_cookie(
        i18n.LANGUAGE_COOKIE,
        i18n.choose(lang, "zh"),
        max_age=365 * 86400,
        path=web.PREFIX,
        secure=web.secure_cookie(request),
        httponly=True,
        samesite="strict",
    )
    return answer


@router.get("/")
async def home(request: Request) -> Response:
    decision = _decision(request, "console.home")

    def work(session, identity: Identity) -> Identity:  # type: ignore[no-untyped-def]
        decision.reason = "console home page"
        return identity

    outcome = await web.read(request, decision, work, roles=ALL_ROLES)
    if isinstance(outcome, ExchangeError):
        return web.refusal(request, outcome)
    return web.render(request, "home.html")
