"""Web console sessions: made at sign-in, found by their cookie, ended by time or sign-out.

A session is referenced by a random token in an ``HttpOnly`` cookie; the database keeps
only the token's SHA-256 (a copy of the table lets nobody sign in). Each session has a
CSRF token that every form it sends must carry. It ends after ``idle`` without use,
``absolute`` after sign-in, at sign-out, or as soon as the credential it was made from
stops being valid (a revoked or expired key, a disabled user): that credential is
checked again on every request, as an API call's would be.

Kept in the database, so any gateway process answers any session's requests.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction, utcnow
from exchange.core.driver import DriverSelect
from exchange.core.errors import SessionExpiredError
from exchange.core.models import ApiKey, ConsoleLogin, ConsoleSession, User
from exchange.identity.apikeys import Identity
from exchange.security.crypto import equal

# A session's last use is written at most this often (idle expiry is counted from it).
TOUCH_EVERY = timedelta(seconds=30)
LOGIN_TTL = timedelta(minutes=10)


def digest(token: str) -> str:
    """What the database keeps of a cookie's token (or an OIDC state)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Current:
    """A valid session: who it is and what its forms must carry."""

    id: str
    identity: Identity
    csrf_token: str
    created_at: datetime
    purpose: str | None
    case_ref: str | None

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and equal(str(sent).encode(), self.csrf_token.encode())


def start(session: Session, identity: Identity, *, now: datetime | None = None) -> str:
    """Make a session for ``identity``; the token for its cookie (shown nowhere else)."""
    moment = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id=digest(token),
            csrf_token=secrets.token_urlsafe(32),
            method=identity.method,
            key_id=identity.key_id,
            user_id=identity.user_id,
            actor=identity.actor,
            department=identity.department,
            role=identity.role,
            created_at=moment,
            last_seen_at=moment,
        )
    )
    return token


# The session and the credential it was made from, in one read on the driver's cursor
# (exchange.core.driver): it runs on every console request, and an ORM transaction with two
# reads cost a console page about 0.5 ms of CPU more than an API call's authentication
# (bench/console_person_page.py). A transaction is opened only to write.
_SESSION_AND_CREDENTIAL = DriverSelect(
    select(
        ConsoleSession.id,
        ConsoleSession.csrf_token,
        ConsoleSession.method,
        ConsoleSession.key_id,
        ConsoleSession.user_id,
        ConsoleSession.actor,
        ConsoleSession.department,
        ConsoleSession.role,
        ConsoleSession.created_at,
        ConsoleSession.last_seen_at,
        ConsoleSession.ended_at,
        ConsoleSession.purpose,
        ConsoleSession.case_ref,
        ApiKey.key_id.label("found_key"),
        ApiKey.revoked_at,
        ApiKey.expires_at,
        User.id.label("found_user"),
        User.active,
    )
    .select_from(ConsoleSession)
    .outerjoin(ApiKey, ApiKey.key_id == ConsoleSession.key_id)
    .outerjoin(User, User.id == ConsoleSession.user_id)
    .where(ConsoleSession.id == bindparam("id"))
)


def _credential_problem(row: Any, moment: datetime) -> str | None:
    """Why the credential the session was made from is no longer valid, if it is not."""
    if row.method == "api_key":
        if row.found_key is None or row.revoked_at is not None:
            return "the API key it was signed in with has been revoked"
        if row.expires_at is not None and row.expires_at <= moment:
            return "the API key it was signed in with has expired"
    if row.user_id is not None and (row.found_user is None or not row.active):
        return "the user has been disabled"
    return None


def resolve(
    sessions: sessionmaker[Session],
    token: str,
    lifetime: Lifetime,
    *,
    now: datetime | None = None,
) -> Current:
    """The session ``token`` refers to, still valid; SessionExpiredError says why not (and
    ends it). Notes its use, at most every :data:`TOUCH_EVERY`."""
    moment = now or utcnow()
    key = digest(token)
    with sessions() as session:
        rows = _SESSION_AND_CREDENTIAL.all(session, {"id": key})
    row = rows[0] if rows else None
    if row is None:
        raise SessionExpiredError("you are signed out: sign in again")
    if row.ended_at is not None:
        raise SessionExpiredError("you are signed out: sign in again", key_id=row.key_id)
    why = None
    if moment - row.created_at >= lifetime.absolute:
        hours = lifetime.absolute.total_seconds() / 3600
        why = f"your session has ended after {hours:g} hours: sign in again"
    elif moment - row.last_seen_at >= lifetime.idle:
        minutes = lifetime.idle.total_seconds() / 60
        why = f"your session has ended after {minutes:g} minutes without use: sign in again"
    else:
        problem = _credential_problem(row, moment)
        if problem is not None:
            why = f"your session has ended: {problem}"
    if why is not None:
        with transaction(sessions) as session:
            session.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id == key, ConsoleSession.ended_at.is_(None))
                .values(ended_at=moment)
            )
        raise SessionExpiredError(why, key_id=row.key_id)
    if moment - row.last_seen_at >= TOUCH_EVERY:
        with transaction(sessions) as session:
            session.execute(
                update(ConsoleSession).where(ConsoleSession.id == key).values(last_seen_at=moment)
            )
    identity = Identity(
        actor=row.actor,
        department=row.department,
        role=row.role,
        key_id=row.key_id,
        user_id=row.user_id,
        method=row.method,
    )
    return Current(
        id=row.id,
        identity=identity,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        purpose=row.purpose,
        case_ref=row.case_ref,
    )


def end(session: Session, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the session is ended (its cookie no longer works anywhere)."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == digest(token), ConsoleSession.ended_at.is_(None))
        .values(ended_at=now or utcnow())
    )


def choose_case(session: Session, session_id: str, purpose: str, case_ref: str | None) -> None:
    """Keep the purpose and case reference a caseworker chose for the session's lookups."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id)
        .values(purpose=purpose, case_ref=case_ref)
    )


def begin_login(session: Session, return_to: str, *, now: datetime | None = None) -> dict[str, str]:
    """Start a single sign-on: the ``state``, ``nonce`` and PKCE ``code_verifier`` to
    send (the database keeps the state's hash, the nonce and the verifier)."""
    moment = now or utcnow()
    # Anyone may start a sign-on (no sign-in needed): starts nobody finished are cleared
    # here as well as at a callback, so a flood of them keeps ten minutes' worth at most.
    session.execute(delete(ConsoleLogin).where(ConsoleLogin.created_at < moment - LOGIN_TTL))
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    session.add(
        ConsoleLogin(
            id=digest(state),
            nonce=nonce,
            code_verifier=verifier,
            return_to=return_to,
            created_at=moment,
        )
    )
    return {"state": state, "nonce": nonce, "code_verifier": verifier}


def finish_login(session: Session, state: str, *, now: datetime | None = None) -> ConsoleLogin:
    """The sign-on ``state`` names, used up (a state works once, for ten minutes);
    SessionExpiredError otherwise."""
    moment = now or utcnow()
    session.execute(delete(ConsoleLogin).where(ConsoleLogin.created_at < moment - LOGIN_TTL))
    row = session.get(ConsoleLogin, digest(state)) if state else None
    if row is None:
        raise SessionExpiredError(
            "this single sign-on is unknown, used already or older than ten minutes: start again"
        )
    session.delete(row)
    return row


__all__ = [
    "Current",
    "Lifetime",
    "begin_login",
    "choose_case",
    "digest",
    "end",
    "finish_login",
    "resolve",
    "start",
]
