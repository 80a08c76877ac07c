"""The admin API: departments, users and their API keys.

Admin role only; actions ``admin.<object>.<verb>``. A change is made in the
transaction that writes its audit entry (:func:`gateway.audited.run_audited`), so
the entry records what happened: done, naming the object created or changed, or
refused with the error's status and message (a name taken: 409; no such user:
404, ...). Listings are authorized and audited through
:func:`gateway.access.authorize`. A new key's plaintext is in the response to its
creation only, never in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from exchange.audit import Decision
from exchange.core.db import utcnow
from exchange.identity import apikeys, identities
from exchange.identity.apikeys import Identity
from gateway.access import authorize
from gateway.audited import pending, run_audited
from gateway.deps import AppState, StateDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])

ADMIN = frozenset({"admin"})
T = TypeVar("T")


def _change(
    state: AppState,
    request: Request,
    action: str,
    target: str,
    change: Callable[[Session], T],
    *,
    status: int = 200,
) -> T:
    """Make an admin change and its audit entry in one transaction: the entry records the
    outcome (done, or refused with the error's status and message), never a secret.
    ``target`` names the object changed (e.g. ``user li.na``)."""
    decision = pending(str(request.state.request_id), action)
    return run_audited(
        state, request, decision, admin_work(decision, target, change, status), roles=ADMIN
    )


def admin_work(
    decision: Decision, target: str, change: Callable[[Session], T], status: int = 200
) -> Callable[[Session, Identity], T]:
    """The work of an admin change, as :func:`gateway.audited.run_audited` runs it (the API
    and the web console alike): the change, then the entry's status and its reason naming
    ``target``."""

    def work(session: Session, identity: Identity) -> T:
        del identity
        result = change(session)
        decision.status, decision.reason = status, f"done; target: {target}"
        return result

    return work


def new_key(
    state: AppState, username: str, label: str | None, expires_in_days: int | None
) -> tuple[str, Callable[[Session], identities.CreatedKey]]:
    """A new key for ``username``: the target naming it in the audit entry (by its id, never
    its secret: the key is drawn first so that the entry can name it) and the change that
    stores it."""
    plaintext = apikeys.new_key()
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    target = f"key {apikeys.key_id_of(plaintext)} for user {username}"
    return target, lambda session: identities.create_key(
        session,
        username,
        label=label,
        expires_at=expires,
        plaintext=plaintext,
        origin=state.settings.env.value,
    )


Role = Literal["caseworker", "publisher", "auditor", "admin", "department_admin", "data_steward"]
_REFUSALS: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, malformed, wrong, revoked or expired credentials"},
    403: {"description": "The caller is not an admin"},
    429: {"description": "The caller's rate limit is spent (see Retry-After)"},
    503: {"description": "The audit log could not be written; nothing was changed"},
}
Username = Annotated[str, Path(min_length=1, max_length=255)]


class DepartmentCreate(BaseModel):
    code: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z][a-z0-9_]*$",
        examples=["civil_affairs"],
        description="Stable code: lower case letters, digits and underscores.",
    )
    name: str = Field(min_length=1, max_length=255, examples=["Civil Affairs Bureau"])


class DepartmentPublic(BaseModel):
    code: str
    name: str
    created_at: datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=255, examples=["li.na"])
    department: str = Field(min_length=1, max_length=100, examples=["civil_affairs"])
    role: Role
    display_name: str | None = Field(default=None, max_length=255)
    oidc_subject: str | None = Field(
        default=None,
        max_length=255,
        description="The `sub` claim the OIDC provider gives this user, if bearer tokens are used.",
    )


class UserPublic(BaseModel):
    username: str
    department: str
    role: str
    display_name: str | None
    oidc_subject: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None


class KeyCreate(BaseModel):
    label: str | None = Field(default=None, max_length=255, examples=["laptop"])
    expires_in_days: int | None = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days until the key expires; null for a key that never expires.",
    )


class KeyPublic(BaseModel):
    """A key as it may be listed: never its secret."""

    key_id: str
    username: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key's plaintext: shown in this response only.")


def _department(info: identities.DepartmentInfo) -> DepartmentPublic:
    return DepartmentPublic(code=info.code, name=info.name, created_at=info.created_at)


def _user(info: identities.UserInfo) -> UserPublic:
    return UserPublic(
        username=info.username,
        department=info.department,
        role=info.role,
        display_name=info.display_name,
        oidc_subject=info.oidc_subject,
        active=info.active,
        created_at=info.created_at,
        disabled_at=info.disabled_at,
    )


def _key(info: identities.KeyInfo) -> KeyPublic:
    return KeyPublic(
        key_id=info.key_id,
        username=info.username,
        label=info.label,
        created_at=info.created_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
    )


@router.post(
    "/departments",
    status_code=201,
    summary="Register a department",
    responses={**_REFUSALS, 409: {"description": "The department exists already"}},
)
def create_department(
    body: DepartmentCreate, request: Request, state: StateDep
) -> DepartmentPublic:
    return _change(
        state,
        request,
        "admin.department.create",
        f"department {body.code}",
        lambda session: _department(identities.create_department(session, body.code, body.name)),
        status=201,
    )


@router.get("/departments", summary="List the departments", responses=_REFUSALS)
def list_departments(request: Request, state: StateDep) -> list[DepartmentPublic]:
    authorize(state, request, action="admin.department.list", roles=ADMIN)
    with state.sessions() as session:
        return [_department(d) for d in identities.list_departments(session)]


@router.post(
    "/users",
    status_code=201,
    summary="Register a user in a department, with a role",
    responses={
        **_REFUSALS,
        400: {"description": "No such department, or an unusable user name"},
        409: {"description": "The user name or OIDC subject is taken"},
    },
)
def create_user(body: UserCreate, request: Request, state: StateDep) -> UserPublic:
    return _change(
        state,
        request,
        "admin.user.create",
        f"user {body.username} ({body.role} in {body.department})",
        lambda session: _user(
            identities.create_user(
                session,
                username=body.username,
                department=body.department,
                role=body.role,
                display_name=body.display_name,
                oidc_subject=body.oidc_subject,
            )
        ),
        status=201,
    )


@router.get("/users", summary="List the users", responses=_REFUSALS)
def list_users(
    request: Request,
    state: StateDep,
    department: Annotated[str | None, Query(max_length=100)] = None,
) -> list[UserPublic]:
    authorize(state, request, action="admin.user.list", roles=ADMIN)
    with state.sessions() as session:
        return [_user(u) for u in identities.list_users(session, department=department)]


@router.post(
    "/users/{username}/disable",
    summary="Disable a user: their keys and tokens are refused from the next request",
    responses={**_REFUSALS, 404: {"description": "No such user"}},
)
def disable_user(username: Username, request: Request, state: StateDep) -> UserPublic:
    return _change(
        state,
        request,
        "admin.user.disable",
        f"user {username}",
        lambda session: _user(identities.disable_user(session, username)),
    )


@router.post(
    "/users/{username}/keys",
    status_code=201,
    summary="Make an API key for a user (its plaintext is in this response only)",
    responses={
        **_REFUSALS,
        404: {"description": "No such user"},
        409: {"description": "The user is disabled"},
    },
)
def create_key(
    username: Username, body: KeyCreate, request: Request, state: StateDep
) -> KeyCreated:
    target, change = new_key(state, username, body.label, body.expires_in_days)
    created = _change(state, request, "admin.key.create", target, change, status=201)
    return KeyCreated(key=created.key, **_key(created.info).model_dump())


@router.get(
    "/users/{username}/keys",
    summary="List a user's keys (never their secrets)",
    responses={**_REFUSALS, 404: {"description": "No such user"}},
)
def list_keys(username: Username, request: Request, state: StateDep) -> list[KeyPublic]:
    authorize(state, request, action="admin.key.list", roles=ADMIN, target=f"user {username}")
    with state.sessions() as session:
        return [_key(k) for k in identities.list_keys(session, username)]


@router.delete(
    "/keys/{key_id}",
    summary="Revoke an API key: it is refused from the next request",
    responses={**_REFUSALS, 404: {"description": "No such key"}},
)
def revoke_key(
    key_id: Annotated[str, Path(min_length=1, max_length=32)], request: Request, state: StateDep
) -> KeyPublic:
    return _change(
        state,
        request,
        "admin.key.revoke",
        f"key {key_id}",
        lambda session: _key(identities.revoke_key(session, key_id)),
    )
