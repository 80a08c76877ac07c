"""Departments, users and their API keys: who may call the gateway, and as what.

The administrative side of authentication, shared by the admin API
(``gateway.admin``) and the ``exchange admin`` commands. Functions work in the
caller's session; the caller commits. What they return are plain records that
never hold a secret: a key's plaintext appears once, in :class:`CreatedKey`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.core.db import utcnow
from exchange.core.errors import ConflictError, NotFoundError, ValidationError
from exchange.core.models import ApiKey, Department, User
from exchange.identity import apikeys

# The same roles as exchange.access.catalogue.ROLES (a sibling layer: it cannot be imported
# here; tests/unit/test_sharing_roles.py keeps the two the same).
ROLES = ("caseworker", "publisher", "auditor", "admin", "department_admin", "data_steward")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,254}$")


@dataclass(frozen=True)
class DepartmentInfo:
    code: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class UserInfo:
    username: str
    department: str
    role: str
    display_name: str | None
    oidc_subject: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class KeyInfo:
    """An API key as it may be shown: never its secret or hash."""

    key_id: str
    username: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``key`` is its plaintext, to be shown once and never stored."""

    key: str
    info: KeyInfo


def _invalid(field: str, code: str, message: str) -> ValidationError:
    return ValidationError([(field, code, message)])


def _department(row: Department) -> DepartmentInfo:
    return DepartmentInfo(code=row.code, name=row.name, created_at=row.created_at)


def _user(row: User) -> UserInfo:
    return UserInfo(
        username=row.username,
        department=row.department,
        role=row.role,
        display_name=row.display_name,
        oidc_subject=row.oidc_subject,
        active=row.active,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def _key(row: ApiKey, username: str) -> KeyInfo:
    return KeyInfo(
        key_id=row.key_id,
        username=username,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


# --- departments ---------------------------------------------------------------------------


def create_department(session: Session, code: str, name: str) -> DepartmentInfo:
    """Register a department; its code is lower case letters, digits and underscores."""
    if not _CODE.match(code):
        raise _invalid(
            "code",
            "department.code",
            f"department code {code!r} must start with a letter and hold only lower case "
            "letters, digits and underscores (at most 100)",
        )
    if not name.strip():
        raise _invalid("name", "department.name", "the department needs a name")
    if session.get(Department, code) is not None:
        raise ConflictError(f"department {code!r} exists already")
    row = Department(code=code, name=name.strip(), created_at=utcnow())
    session.add(row)
    session.flush()
    return _department(row)


def list_departments(session: Session) -> list[DepartmentInfo]:
    rows = session.scalars(select(Department).order_by(Department.code))
    return [_department(r) for r in rows]


# --- users ---------------------------------------------------------------------------------


def _user_row(session: Session, username: str) -> User:
    row = session.scalar(select(User).where(User.username == username))
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return row


def create_user(
    session: Session,
    *,
    username: str,
    department: str,
    role: str,
    display_name: str | None = None,
    oidc_subject: str | None = None,
) -> UserInfo:
    """Register a user in an existing department, in one of :data:`ROLES`."""
    if not _USERNAME.match(username):
        raise _invalid(
            "username",
            "user.username",
            f"user name {username!r} must start with a letter or digit and hold only "
            "letters, digits and . _ @ - (at most 255)",
        )
    if role not in ROLES:
        raise _invalid("role", "user.role", f"role {role!r} is not one of: {', '.join(ROLES)}")
    if session.get(Department, department) is None:
        raise _invalid(
            "department",
            "user.department",
            f"no department {department!r}; add it first (exchange admin department add)",
        )
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"user {username!r} exists already")
    if oidc_subject is not None:
        if not oidc_subject.strip():
            raise _invalid("oidc_subject", "user.oidc_subject", "the OIDC subject is empty")
        taken = session.scalar(select(User.username).where(User.oidc_subject == oidc_subject))
        if taken is not None:
            raise ConflictError(f"OIDC subject {oidc_subject!r} belongs to user {taken!r}")
    row = User(
        username=username,
        department=department,
        role=role,
        display_name=display_name,
        oidc_subject=oidc_subject,
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _user(row)


def list_users(session: Session, *, department: str | None = None) -> list[UserInfo]:
    query = select(User).order_by(User.username)
    if department is not None:
        query = query.where(User.department == department)
    return [_user(r) for r in session.scalars(query)]


def get_user(session: Session, username: str) -> UserInfo:
    return _user(_user_row(session, username))


def disable_user(session: Session, username: str, *, at: datetime | None = None) -> UserInfo:
    """Disable a user: their keys and tokens are refused from the next request on.

    Disabling a disabled user changes nothing (its first ``disabled_at`` stays).
    """
    row = _user_row(session, username)
    if row.active:
        row.active = False
        row.disabled_at = at or utcnow()
        session.flush()
    return _user(row)


# --- keys ----------------------------------------------------------------------------------


def create_key(
    session: Session,
    username: str,
    *,
    label: str | None = None,
    expires_at: datetime | None = None,
    plaintext: str | None = None,
    origin: str = apikeys.ORIGIN_DEVELOPMENT,
) -> CreatedKey:
    """Make an API key for an active user; the plaintext is in the result, once.

    ``plaintext`` fixes the key (e.g. one drawn with :func:`apikeys.new_key` so its
    id can be named before it is stored). ``origin``: see :func:`apikeys.create_key`.
    """
    user = _user_row(session, username)
    if not user.active:
        raise ConflictError(f"user {username!r} is disabled; no key can be made for them")
    if expires_at is not None and expires_at <= utcnow():
        raise _invalid("expires_at", "key.expires_at", "the expiry is in the past")
    key = apikeys.create_key(
        session,
        actor=user.username,
        department=user.department,
        role=user.role,
        expires_at=expires_at,
        plaintext=plaintext or apikeys.new_key(),
        user_id=user.id,
        label=label,
        origin=origin,
    )
    session.flush()
    row = session.scalars(select(ApiKey).where(ApiKey.key_id == apikeys.key_id_of(key))).one()
    return CreatedKey(key=key, info=_key(row, user.username))


def list_keys(session: Session, username: str) -> list[KeyInfo]:
    """A user's keys, oldest first, revoked and expired ones included."""
    user = _user_row(session, username)
    rows = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [_key(r, user.username) for r in rows]


def revoke_key(session: Session, key_id: str, *, at: datetime | None = None) -> KeyInfo:
    """Revoke a key (refused from the next request on); revoking twice keeps the first time."""
    found = session.execute(
        select(ApiKey, User.username)
        .outerjoin(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_id == key_id)
    ).first()
    if found is None:
        raise NotFoundError(f"no API key {key_id!r}")
    row, username = found[0], found[1]
    if row.revoked_at is None:
        row.revoked_at = at or utcnow()
        session.flush()
    return _key(row, username or row.actor)


__all__ = [
    "ROLES",
    "CreatedKey",
    "DepartmentInfo",
    "KeyInfo",
    "UserInfo",
    "create_department",
    "create_key",
    "disable_user",
    "get_user",
    "list_departments",
    "list_keys",
    "list_users",
    "revoke_key",
]
