"""One audited request: authenticate, decide, do the work, write exactly one audit entry.

The entry is appended in the same transaction as the work and committed before
the response is built; if it cannot be written the request fails (503) and
nothing is disclosed (fail closed). A domain error raised by the work is
answered after its entry is written, so every request, allowed or denied,
leaves exactly one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from exchange import audit
from exchange.apikeys import Identity
from exchange.db import transaction, utcnow
from exchange.errors import AuditWriteError, ExchangeError, NotFoundError, PermissionDeniedError
from gateway.access import identify
from gateway.deps import AppState
from gateway.problems import status_for

T = TypeVar("T")


def run_audited(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    work: Callable[[Session, Identity], T],
    *,
    roles: frozenset[str] | None = None,
) -> T:
    """Run ``work`` for the caller and audit the outcome in ``decision``.

    ``work`` may fill in ``decision`` (datasets, subjects, fields, reason); an
    outcome without an error is recorded as ``allow``/200 unless ``work`` set
    another status. A :class:`NotFoundError` is recorded as an allowed request
    answered 404 (the caller was entitled to ask); any other domain error as a
    denial with its status and message.
    """
    outcome: T | ExchangeError
    with state.audit_lock, transaction(state.sessions) as session:
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
        except NotFoundError as exc:
            outcome = exc
            decision.decision, decision.status, decision.reason = "allow", 404, exc.message
            decision.fields = []
        except ExchangeError as exc:
            outcome = exc
            decision.decision, decision.status, decision.reason = (
                "deny",
                status_for(exc),
                exc.message,
            )
            decision.fields = []
        try:
            audit.append(session, decision, at=utcnow())
        except Exception as exc:
            raise AuditWriteError(
                "the audit log could not be written; the request is refused"
            ) from exc
    if isinstance(outcome, ExchangeError):
        raise outcome
    return outcome
