"""On whose behalf a command acts, and how its step is audited.

The sharing commands (``exchange sharing ...``, ``exchange catalogue resource set
--as``) act for a registered user: ``--as USERNAME`` names them, and that user's
department and role then apply exactly as they would through the gateway (a data
steward decides only on its own department's datasets). The audit entry names the
user as actor, with their department and role, and its reason says the step came
from the command line and which login ran it. Without ``--as`` a command acts as the
operator (the central administrator: role ``operator``), which may read everything
and register resources but may not request or decide.

A step refused by the rules changes nothing and is reported (``error (<code>): ...``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from exchange import audit
from exchange.access.sharing import Actor
from exchange.cli.context import CliContext, cli_actor
from exchange.core.db import utcnow
from exchange.core.errors import PermissionDeniedError
from exchange.identity import identities

T = TypeVar("T")
OPERATOR_ROLE = "operator"


def operator() -> Actor:
    """The operator running the command, acting as the central administrator."""
    return Actor(cli_actor(), "", "admin")


def acting(session: Session, username: str | None) -> Actor:
    """The user ``username`` (their department and role), or the operator for None;
    NotFoundError for an unknown user, PermissionDeniedError for a disabled one."""
    if username is None:
        return operator()
    user = identities.get_user(session, username)
    if not user.active:
        raise PermissionDeniedError(f"user {username!r} is disabled")
    return Actor(user.username, user.department, user.role)


def audited(
    cli: CliContext,
    action: str,
    username: str | None,
    step: Callable[[Session, Actor], tuple[T, str, str | None]],
) -> T:
    """Run ``step`` for the user ``username`` (or the operator) and audit it in the same
    transaction; ``step`` returns its result, the entry's reason and the dataset. A step
    refused by the rules changes nothing and is reported, not audited (as every command
    that changes the catalogue: the gateway audits refusals, the operator's shell is its
    own record)."""
    with cli.transaction() as session:
        who = acting(session, username)
        result, reason, dataset = step(session, who)
        audit.append(
            session,
            audit.Decision(
                request_id=f"cli-{utcnow():%Y%m%dT%H%M%S%f}",
                action=action,
                decision="allow",
                reason=f"{reason} (command line, run by {cli_actor()})",
                status=200,
                actor=who.actor,
                department=who.department or None,
                role=who.role if username is not None else OPERATOR_ROLE,
                dataset=dataset,
            ),
            at=utcnow(),
        )
        return result
