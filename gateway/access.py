"""Authenticate, authorize by role, and audit the decision, for routes whose rule is a role.

The decision is appended to the audit log and committed before the route runs;
a denied request raises after its entry is written, so every decision, allow or
deny, leaves exactly one entry. Keys come in ``X-API-Key`` or, for clients that
only speak HTTP Basic (Confluent's schema registry clients), as the password.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from sqlalchemy.orm import Session

from exchange import apikeys, audit
from exchange.apikeys import Identity
from exchange.db import transaction, utcnow
from exchange.errors import AuditWriteError, AuthenticationError, PermissionDeniedError
from gateway.deps import AppState


def presented_key(request: Request) -> str | None:
    """The API key sent in ``X-API-Key``, or as the password of HTTP Basic auth."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            _, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed"
        return password or None
    return None


def identify(state: AppState, session: Session, request: Request) -> Identity:
    """Who is calling: the identity of the credentials the request presents.

    Raises AuthenticationError (401) for missing, malformed, wrong, revoked or
    expired credentials. Every route authenticates through here, inside the
    transaction that writes its audit entry.
    """
    del state  # reserved for per-identity limits and token verification
    return apikeys.authenticate(session, presented_key(request))


def authorize(
    state: AppState,
    request: Request,
    *,
    action: str,
    roles: frozenset[str],
    dataset: str | None = None,
    department: str | None = None,
    subjects: list[str] | None = None,
) -> Identity:
    """Return the caller's identity if its role is in ``roles`` (and, when given, it
    belongs to ``department``); audit the decision either way, naming ``subjects`` (blind
    indexes of the data subjects the request is about) in the entry."""
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
    error: AuthenticationError | PermissionDeniedError | None = None
    with state.audit_lock, transaction(state.sessions) as session:
        try:
            identity = identify(state, session, request)
            decision.actor, decision.department, decision.role = (
                identity.actor,
                identity.department,
                identity.role,
            )
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
        except AuthenticationError as exc:
            error, decision.reason = exc, exc.message
        except PermissionDeniedError as exc:
            error, decision.status, decision.reason = exc, 403, exc.message
        try:
            audit.append(session, decision, at=utcnow())
        except Exception as exc:
            raise AuditWriteError(
                "the audit log could not be written; the request is refused"
            ) from exc
    if error is not None:
        raise error
    assert identity is not None
    return identity
