"""What every console page shares: templates, the language, the navigation, and running a
page as one audited request.

A page that reads or changes anything runs its work exactly as the API route it mirrors
does, through :func:`gateway.audited.decide_read` (reads) or
:func:`gateway.audited.run_audited` (changes), with the same action, purpose and case
reference in its one audit entry; the caller is the console session's identity
(:func:`gateway.access.identify` takes the session cookie on ``/ui/`` paths). The page
is answered with the status its entry records: a refusal is a page that says why, with
the status of the API's refusal (401, 403, 404, ...). A form's CSRF token is read from the
form by :func:`read_form` before the work is run, and checked as the caller is identified.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio.to_thread
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from exchange import audit
from exchange.core.config import Environment as Mode
from exchange.core.errors import AuthenticationError, ExchangeError
from exchange.identity.apikeys import Identity
from exchange.identity.consolesessions import Current
from gateway.access import same_origin, slot
from gateway.audited import decide_read, pending, run_audited
from gateway.console import i18n
from gateway.deps import AppState
from gateway.problems import note_error, status_for

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PREFIX = "/ui"
CSRF_FIELD = "csrf_token"
SIGN_IN_COOKIE = "dx_signin"  # the sign-in form's CSRF token (double submit)

T = TypeVar("T")


@dataclass(frozen=True)
class NavItem:
    """A link of the navigation, shown to the roles that may open its page."""

    path: str
    label: str  # an English message id, translated when shown
    roles: frozenset[str]
    order: int = 100


NAV: list[NavItem] = []


def nav_item(path: str, label: str, roles: set[str] | frozenset[str], order: int = 100) -> None:
    """Register a navigation link (each area of the console does, as it is imported)."""
    if not any(item.path == path for item in NAV):
        NAV.append(NavItem(path, label, frozenset(roles), order))
        NAV.sort(key=lambda item: (item.order, item.path))


def _environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    formats = i18n.Formats(language)
    env.filters.update(formats.filters())
    env.globals["language"] = language
    env.globals["languages"] = i18n.LANGUAGE_NAMES
    env.globals["PREFIX"] = PREFIX
    return env


_ENVIRONMENTS = {language: _environment(language) for language in i18n.LANGUAGES}


def language(request: Request) -> str:
    """The language of the answer: ``?lang=``, else the language cookie, else the default."""
    state: AppState = request.app.state.exchange
    asked = request.query_params.get("lang") or request.cookies.get(i18n.LANGUAGE_COOKIE)
    return i18n.choose(asked, state.settings.console.default_language)


def gettext(request: Request) -> Callable[[str], str]:
    return i18n.gettext(language(request))


def current(request: Request) -> Current | None:
    """The request's console session, once the caller is identified through it."""
    found = getattr(request.state, "console", None)
    return found if isinstance(found, Current) else None


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The page ``template`` in the request's language, with what every page shows: the
    signed-in user, the navigation for their role, the CSRF token for forms."""
    lang = language(request)
    env = _ENVIRONMENTS[lang]
    session = current(request)
    identity = session.identity if session is not None else None
    nav = [item for item in NAV if identity.role in item.roles] if identity is not None else []
    body = env.get_template(template).render(
        request=request,
        path=request.url.path,
        identity=identity,
        session=session,
        csrf_token=session.csrf_token if session is not None else "",
        nav=nav,
        **(context or {}),
    )
    answer = HTMLResponse(body, status_code=status, headers=dict(headers or {}))
    return no_store(answer)


R = TypeVar("R", bound=Response)


def no_store(response: R) -> R:
    """Pages may show personal data: never kept by a browser's or a proxy's cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(
    request: Request, status: int, detail: str, code: str, headers: Mapping[str, str]
) -> Response:
    """An error answered on a console path, as a page in the user's language; a refusal of
    credentials or an ended session is the sign-in page, with what was wrong."""
    _ = gettext(request)
    if status == 401:
        return sign_in_page(request, status=401, message=detail, code=code)
    return render(
        request,
        "error.html",
        {
            "status": status,
            "code": code,
            "title": i18n.error_title(code, _),
            "detail": detail,
            "request_id": getattr(request.state, "request_id", None),
        },
        status=status,
        headers=headers,
    )


def sign_in_page(
    request: Request,
    *,
    status: int = 200,
    message: str | None = None,
    code: str | None = None,
    next_path: str | None = None,
) -> HTMLResponse:
    """The sign-in form; after signing in the user goes back to ``next_path`` (by default
    the page that asked for it)."""
    state: AppState = request.app.state.exchange
    _ = gettext(request)
    target = next_path or _return_to(request)
    if target.startswith(f"{PREFIX}/sign-in"):
        target = f"{PREFIX}/"
    # The form carries the same token as this cookie (double submit): a page elsewhere
    # cannot sign a browser in under someone else's key.
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    answer = render(
        request,
        "sign_in.html",
        {
            "message": message,
            "title": i18n.error_title(code, _) if code else None,
            "next": target,
            "sign_in_token": token,
            "oidc_label": state.settings.console.oidc_label
            if state.settings.console.oidc_discovery_url
            else None,
        },
        status=status,
    )
    answer.set_cookie(
        SIGN_IN_COOKIE,
        token,
        # Every console path, not /ui/sign-in alone: a sign-in page shown on another path
        # (an ended session's) reuses the token instead of replacing it, so the form of
        # another tab still works.
        path=PREFIX,
        secure=secure_cookie(request),
        httponly=True,
        samesite="strict",
    )
    return answer


def _return_to(request: Request) -> str:
    """The page to come back to after signing in: the one asked for; for a form (a POST,
    whose address may answer nothing else) the page it was sent from, when the browser
    says so (``Referer``, sent within the console's origin), else the home page."""
    if request.method in ("GET", "HEAD"):
        return safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    origin = same_origin(request)
    referer = request.headers.get("referer", "")
    if referer.startswith(f"{origin}/"):
        return safe_next(referer[len(origin) :])
    return f"{PREFIX}/"


def secure_cookie(request: Request) -> bool:
    """Whether the console's cookies are marked Secure (``console.secure_cookie``; by
    default over https and in production)."""
    state: AppState = request.app.state.exchange
    setting = state.settings.console.secure_cookie
    if setting is not None:
        return setting
    return request.url.scheme == "https" or state.settings.env is Mode.PRODUCTION


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site, and never out
    of the console by dot segments (a browser resolves ``/ui/..//x``, also written
    ``/ui/%2e%2e//x``, to ``//x`` before it asks) or by characters it drops (tabs, line
    breaks)."""
    home = f"{PREFIX}/"
    if not target or not target.startswith(home) or target.startswith("//"):
        return home
    if "\\" in target or any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return home
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "//" in path or any(part in (".", "..") for part in unquote(path).split("/")):
        return home
    return target


async def read_form(request: Request) -> FormData:
    """The form a page was sent, its CSRF token noted for the check made as the caller is
    identified (:func:`gateway.access.identify`)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    request.state.csrf_sent = sent if isinstance(sent, str) else None
    return form


def field(form: FormData, name: str) -> str:
    """A form field's text, stripped; empty when missing."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def fields(form: FormData, name: str) -> list[str]:
    """Every value of a repeated form field (check boxes), stripped, empty ones dropped."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def decision_for(
    request: Request,
    action: str,
    *,
    purpose: str | None = None,
    case_ref: str | None = None,
    dataset: str | None = None,
) -> audit.Decision:
    """The audit decision of a page's request, as :func:`gateway.audited.pending` makes
    the API's."""
    return pending(
        str(request.state.request_id), action, purpose=purpose, case_ref=case_ref, dataset=dataset
    )


async def read(
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T],
    *,
    roles: frozenset[str] | None = None,
) -> T | ExchangeError:
    """Run a page's read-only work as one audited request (in the threadpool, like the
    API's); the outcome, or the domain error to show (:func:`refusal`)."""
    state: AppState = request.app.state.exchange
    return await anyio.to_thread.run_sync(
        lambda: decide_read(state, request, decision, work, roles=roles)
    )


async def change(
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T],
    *,
    roles: frozenset[str] | None = None,
) -> T | ExchangeError:
    """Run a page's change as one audited request, the change and its entry committed
    together (:func:`gateway.audited.run_audited`); the outcome, or the domain error."""
    state: AppState = request.app.state.exchange

    def run() -> T | ExchangeError:
        try:
            return run_audited(state, request, decision, work, roles=roles)
        except ExchangeError as exc:
            return exc

    return await anyio.to_thread.run_sync(run)


def refusal(request: Request, exc: ExchangeError) -> Response:
    """The page answering a domain error: its status is the one the audit entry records
    (the sign-in page for a refused or ended session)."""
    note_error(request, exc.message)
    return error_page(request, status_for(exc), exc.message, exc.code, {})


def form_error(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    exc: ExchangeError,
) -> Response:
    """A form shown again with the error that refused it, with the error's status (a
    refused session is sent to sign in instead)."""
    if isinstance(exc, AuthenticationError):
        return refusal(request, exc)
    _ = gettext(request)
    note_error(request, exc.message)
    return render(
        request,
        template,
        {
            **context,
            "error": {
                "title": i18n.error_title(exc.code, _),
                "detail": exc.message,
                "code": exc.code,
            },
        },
        status=status_for(exc),
    )


def unaudited(request: Request) -> None:
    """A page that discloses nothing and decides nothing (the sign-in form, a language
    switch): no audit entry."""
    slot(request).unaudited = True


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


__all__ = [
    "CSRF_FIELD",
    "NAV",
    "PREFIX",
    "STATIC",
    "change",
    "current",
    "decision_for",
    "error_page",
    "field",
    "fields",
    "form_error",
    "gettext",
    "language",
    "nav_item",
    "read",
    "read_form",
    "refusal",
    "render",
    "see_other",
    "sign_in_page",
    "unaudited",
]
