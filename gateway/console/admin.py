"""The central administrator's pages: departments, users and their API keys.

Each page mirrors a route of the admin API (:mod:`gateway.admin`), with its role
(``admin``), its work and its audit action:

- ``GET /ui/admin/departments`` (``admin.department.list``) with the form to add one;
  ``POST`` adds it (``admin.department.create``).
- ``GET /ui/admin/users`` (``admin.user.list``) with the form to register one; ``POST``
  registers it (``admin.user.create``); ``POST /ui/admin/users/disable`` disables one
  (``admin.user.disable``; the user name is in the form, not the address).
- ``GET /ui/admin/users/{username}/keys`` (``admin.key.list``): a user's keys, never their
  secrets; ``POST`` makes one (``admin.key.create``); ``POST /ui/admin/keys/{key_id}/revoke``
  revokes one (``admin.key.revoke``).

A change answers 303 to the page that shows its result, and its audit entry records that
status. A user name in a key page's address is a staff login, as in the API's paths,
never a data subject's identifier.

**A new key is shown once.** Its plaintext is in no address and in no log: the answer to
its creation hands it to the next page in a cookie (``HttpOnly``, ``SameSite=Strict``,
limited to that page's path) holding it sealed (AES-256-GCM) under a key derived from the
console session's own token (which the database does not keep) and bound to the key's
id; that page shows it and deletes the cookie, so a reload shows it no more.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from exchange.core.errors import DecryptionError, ExchangeError, ValidationError
from exchange.identity import apikeys, identities
from exchange.identity.apikeys import Identity
from exchange.security.crypto import hmac_sha256, open_sealed, seal
from gateway.access import SESSION_COOKIE
from gateway.admin import ADMIN, admin_work, new_key
from gateway.console import web
from gateway.console.admin_forms import form_refused

router = APIRouter(prefix=f"{web.PREFIX}/admin", include_in_schema=False)
T = TypeVar("T")

web.nav_item(f"{web.PREFIX}/admin/departments", "Departments", ADMIN, order=400)
web.nav_item(f"{web.PREFIX}/admin/users", "Users and keys", ADMIN, order=410)

NEW_KEY_COOKIE = "dx_new_key"
ROLES = identities.ROLES
DEPARTMENT_FORM = ("code", "name")
USER_FORM = ("username", "department", "role", "display_name", "oidc_subject")
KEY_FORM = ("label", "expires_in_days")


async def _listing(
    request: Request, action: str, work: Callable[[Session], T], target: str | None = None
) -> T | ExchangeError:
    """A listing page's read, audited under the API's listing action."""
    decision = web.decision_for(request, action)

    def read(session: Session, identity: Identity) -> T:
        del identity
        decision.reason = "listed" + (f"; target: {target}" if target else "")
        return work(session)

    return await web.read(request, decision, read, roles=ADMIN)


# ---- departments ------------------------------------------------------------------------------


@router.get("/departments")
async def departments(request: Request) -> Response:
    found = await _listing(request, "admin.department.list", identities.list_departments)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    return web.render(
        request,
        "admin/departments.html",
        {"departments": found, "form": {}, "added": request.query_params.get("added")},
    )


@router.post("/departments")
async def add_department(request: Request) -> Response:
    form = await web.read_form(request)
    code, name = web.field(form, "code"), web.field(form, "name")
    decision = web.decision_for(request, "admin.department.create")
    work = admin_work(
        decision,
        f"department {code}",
        lambda session: identities.create_department(session, code, name),
        303,
    )
    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        context = {"form": {"code": code, "name": name}}
        return form_refused(request, "admin/department_form.html", context, done, DEPARTMENT_FORM)
    return web.see_other(f"{web.PREFIX}/admin/departments?added={quote(done.code)}")


# ---- users ------------------------------------------------------------------------------------


def _options(request: Request, departments: list[identities.DepartmentInfo]) -> dict[str, Any]:
    """The choices of the user form: departments and roles, as shown."""
    _ = web.gettext(request)
    return {
        "department_options": [(d.code, f"{d.name} ({d.code})") for d in departments],
        "role_options": [(role, _(role)) for role in ROLES],
    }


def _users_and_departments(session: Session) -> dict[str, Any]:
    return {
        "users": identities.list_users(session),
        "departments": identities.list_departments(session),
    }


@router.get("/users")
async def users(request: Request) -> Response:
    found = await _listing(request, "admin.user.list", _users_and_departments)
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    return web.render(
        request,
        "admin/users.html",
        {
            **found,
            **_options(request, found["departments"]),
            "form": {},
            "done": request.query_params.get("done"),
        },
    )


@router.post("/users")
async def add_user(request: Request) -> Response:
    form = await web.read_form(request)
    typed = {name: web.field(form, name) for name in USER_FORM}
    decision = web.decision_for(request, "admin.user.create")
    seen: dict[str, Any] = {}

    def change(session: Session) -> identities.UserInfo:
        seen["departments"] = identities.list_departments(session)
        return identities.create_user(
            session,
            username=typed["username"],
            department=typed["department"],
            role=typed["role"],
            display_name=typed["display_name"] or None,
            oidc_subject=typed["oidc_subject"] or None,
        )

    target = f"user {typed['username']} ({typed['role']} in {typed['department']})"
    done = await web.change(
        request, decision, admin_work(decision, target, change, 303), roles=ADMIN
    )
    if isinstance(done, ExchangeError):
        context = {"form": typed, **_options(request, seen.get("departments", []))}
        return form_refused(request, "admin/user_form.html", context, done, USER_FORM)
    return web.see_other(f"{web.PREFIX}/admin/users?done=added")


@router.post("/users/disable")
async def disable_user(request: Request) -> Response:
    form = await web.read_form(request)
    username = web.field(form, "username")
    decision = web.decision_for(request, "admin.user.disable")
    work = admin_work(
        decision,
        f"user {username}",
        lambda session: identities.disable_user(session, username),
        303,
    )
    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        return web.refusal(request, done)
    return web.see_other(f"{web.PREFIX}/admin/users?done=disabled")


# ---- keys ---------------------------------------------------------------------------------------


def _keys_path(username: str) -> str:
    return f"{web.PREFIX}/admin/users/{quote(username, safe='')}/keys"


def _sealing_key(request: Request) -> bytes:
    """The key the new key travels sealed under: derived from the session's own token,
    which only the browser holds (the database keeps its hash)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return hmac_sha256(token.encode(), b"exchange.console.new-key.v1")


def _shown_once(request: Request, keys: list[identities.KeyInfo]) -> str | None:
    """The new key handed over by its creation's answer, if it is one of ``keys``."""
    sealed = request.cookies.get(NEW_KEY_COOKIE)
    if not sealed:
        return None
    try:
        key_id, _, token = sealed.partition(".")
        if key_id not in {k.key_id for k in keys}:
            return None
        plaintext = open_sealed(
            _sealing_key(request), base64.urlsafe_b64decode(token), key_id.encode()
        ).decode()
    except (DecryptionError, ValueError):
        return None
    return plaintext if apikeys.key_id_of(plaintext) == key_id else None


@router.get("/users/{username}/keys")
async def keys(request: Request, username: str) -> Response:
    def work(session: Session) -> dict[str, Any]:
        return {
            "user": identities.get_user(session, username),
            "keys": identities.list_keys(session, username),
        }

    found = await _listing(request, "admin.key.list", work, target=f"user {username}")
    if isinstance(found, ExchangeError):
        return web.refusal(request, found)
    shown = _shown_once(request, found["keys"])
    answer = web.render(
        request,
        "admin/keys.html",
        {
            **found,
            "new_key": shown,
            "form": {"expires_in_days": "90"},
            "now": datetime.now(UTC),
            "done": request.query_params.get("done"),
        },
    )
    if request.cookies.get(NEW_KEY_COOKIE):
        answer.delete_cookie(NEW_KEY_COOKIE, path=_keys_path(username))
    return answer


def _days(text: str) -> int | None:
    """The key's lifetime from the form: empty for a key that never expires."""
    if not text:
        return None
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 3650:
        raise ValidationError(
            [("expires_in_days", "key.expires_in_days", "a key lasts 1 to 3,650 days")]
        )
    return days


@router.post("/users/{username}/keys")
async def add_key(request: Request, username: str) -> Response:
    form = await web.read_form(request)
    typed = {name: web.field(form, name) for name in KEY_FORM}
    state = request.app.state.exchange
    decision = web.decision_for(request, "admin.key.create")
    holder: dict[str, Any] = {}

    def work(session: Session, identity: Identity) -> identities.CreatedKey:
        holder["user"] = identities.get_user(session, username)
        target, change = new_key(
            state, username, typed["label"] or None, _days(typed["expires_in_days"])
        )
        made: identities.CreatedKey = admin_work(decision, target, change, 303)(session, identity)
        return made

    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        if "user" not in holder:
            return web.refusal(request, done)
        context = {"user": holder["user"], "form": typed}
        return form_refused(request, "admin/key_form.html", context, done, KEY_FORM)
    answer = web.see_other(_keys_path(username) + "?done=created")
    sealed = seal(_sealing_key(request), done.key.encode(), done.info.key_id.encode())
    answer.set_cookie(
        NEW_KEY_COOKIE,
        f"{done.info.key_id}.{base64.urlsafe_b64encode(sealed).decode()}",
        path=_keys_path(username),
        secure=web.secure_cookie(request),
        httponly=True,
        samesite="strict",
    )
    return answer


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    await web.read_form(request)
    decision = web.decision_for(request, "admin.key.revoke")
    work = admin_work(
        decision, f"key {key_id}", lambda session: identities.revoke_key(session, key_id), 303
    )
    done = await web.change(request, decision, work, roles=ADMIN)
    if isinstance(done, ExchangeError):
        return web.refusal(request, done)
    return web.see_other(_keys_path(done.username) + "?done=revoked")
