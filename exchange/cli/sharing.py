"""``exchange sharing ...``: sharing requests from the command line (docs/sharing.md).

Each step acts for a registered user named with ``--as USERNAME``, whose department
and role apply as through the gateway (:mod:`exchange.cli.acting`), and is audited
like the API's (actions ``sharing.request.*``). Reading commands without ``--as`` act
as the operator and see every request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from exchange.access import sharing
from exchange.access.sharing import Actor
from exchange.cli.acting import acting, audited
from exchange.cli.context import state
from exchange.core.db import utcnow
from exchange.core.models import SharingRequest

app = typer.Typer(
    help="Sharing requests: ask for a dataset, decide, withdraw, renew.", no_args_is_help=True
)

AsUser = Annotated[
    str, typer.Option("--as", help="The user acting (their department and role apply).")
]
MaybeAsUser = Annotated[
    str | None,
    typer.Option("--as", help="The user acting; without it, the operator (sees everything)."),
]
FieldOption = Annotated[
    list[str] | None,
    typer.Option("--field", "--fields", help="name or name:masked; repeat for each field."),
]
ConstraintOption = Annotated[
    list[str] | None,
    typer.Option("--constraint", help="Row constraint name=value, e.g. division_prefix=3301."),
]


def _pairs(values: list[str], sep: str, what: str) -> dict[str, str]:
    out = {}
    for value in values:
        for part in value.split(",") if sep == ":" else [value]:
            name, found, rest = part.strip().partition(sep)
            if not name or (sep == "=" and not found):
                raise typer.BadParameter(f"{what} {part!r}: expected name{sep}value")
            out[name] = rest
    return out


def _fields(values: list[str]) -> dict[str, str]:
    return {k: (v or "full") for k, v in _pairs(values, ":", "field").items()}


def _print(console: Console, request: SharingRequest) -> None:
    console.print(sharing.summary(request), markup=False)


@app.command("request")
def request_(
    ctx: typer.Context,
    as_user: AsUser,
    dataset: Annotated[str, typer.Option(help="A dataset of the resource catalogue.")],
    field: FieldOption,
    purpose: Annotated[list[str], typer.Option("--purpose", help="A purpose code; repeatable.")],
    legal_basis: Annotated[str, typer.Option(help="The law or regulation relied on.")],
    justification: Annotated[str, typer.Option(help="Why the department needs the data.")],
    days: Annotated[
        int, typer.Option(help=f"How long, {sharing.MIN_DAYS} to {sharing.MAX_DAYS} days.")
    ],
    constraint: ConstraintOption = None,
    role: Annotated[str, typer.Option(help="The grantee role.")] = "caseworker",
) -> None:
    """Submit a request for the acting department administrator's department."""
    spec = sharing.RequestSpec(
        dataset=dataset,
        fields=_fields(field or []),
        purposes=purpose,
        legal_basis=legal_basis,
        justification=justification,
        duration_days=days,
        row_constraints=_pairs(constraint or [], "=", "constraint"),
        grantee_role=role,
    )

    def step(session: Session, actor: Actor) -> tuple[SharingRequest, str, str]:
        done = sharing.submit(session, actor, spec, at=utcnow())
        return done, sharing.summary(done), done.dataset

    cli = state(ctx)
    _print(cli.console, audited(cli, "sharing.request.submit", as_user, step))


@app.command("list")
def list_(
    ctx: typer.Context,
    as_user: MaybeAsUser = None,
    status: Annotated[str | None, typer.Option(help=", ".join(sharing.STATUSES))] = None,
) -> None:
    """The requests the user's department made or received (every request without --as)."""
    cli = state(ctx)
    with cli.sessions() as session:
        found = sharing.list_requests(session, acting(session, as_user), status=status)
        table = Table("id", "dataset", "requester", "owner", "purposes", "status", "grant")
        for r in found:
            table.add_row(
                str(r.id),
                r.dataset,
                r.requester_department,
                r.owner_department,
                ", ".join(r.purposes),
                r.status,
                str(r.grant_id or ""),
            )
    cli.console.print(table)


@app.command("show")
def show(ctx: typer.Context, request_id: int, as_user: MaybeAsUser = None) -> None:
    """A request, what was granted, and its history."""
    cli = state(ctx)
    with cli.sessions() as session:
        found = sharing.get(session, acting(session, as_user), request_id)
        out = cli.console
        out.print(sharing.summary(found), markup=False)
        out.print(f"legal basis: {found.legal_basis}", markup=False)
        out.print(f"justification: {found.justification}", markup=False)
        if found.decision_reason:
            out.print(f"decision: {found.decision_reason}", markup=False)
        table = Table("at", "actor", "department", "action", "detail")
        for e in sharing.history(session, found.id):
            table.add_row(
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.department,
                e.action,
                ", ".join(f"{k}={v}" for k, v in e.detail.items()),
            )
    out.print(table)


def _decide(
    ctx: typer.Context,
    action: str,
    as_user: str,
    do: Callable[[Session, Actor], SharingRequest],
) -> None:
    def step(session: Session, actor: Actor) -> tuple[SharingRequest, str, str]:
        done = do(session, actor)
        return done, sharing.summary(done), done.dataset

    cli = state(ctx)
    _print(cli.console, audited(cli, action, as_user, step))


@app.command("approve")
def approve(ctx: typer.Context, request_id: int, as_user: AsUser) -> None:
    """Approve a request as asked (the owning department's data steward)."""
    _decide(
        ctx,
        "sharing.request.approve",
        as_user,
        lambda s, a: sharing.approve(s, a, request_id, at=utcnow()),
    )


@app.command("narrow")
def narrow(
    ctx: typer.Context,
    request_id: int,
    as_user: AsUser,
    field: FieldOption = None,
    constraint: ConstraintOption = None,
    days: Annotated[int | None, typer.Option(help="Fewer days than asked.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why less is granted.")] = None,
) -> None:
    """Approve less than asked: fewer fields, masked for full, tighter rows, fewer days.

    A part not given is granted as asked; --constraint replaces the constraints asked
    (give every one asked, the same or tighter, and any added)."""

    def do(session: Session, actor: Actor) -> SharingRequest:
        found = session.get(SharingRequest, request_id)
        ask = sharing.asked(found) if found is not None else sharing.Terms({}, {}, 0)
        terms = sharing.Terms(
            _fields(field) if field else ask.fields,
            _pairs(constraint, "=", "constraint") if constraint else ask.row_constraints,
            days if days is not None else ask.days,
        )
        return sharing.narrow(session, actor, request_id, terms, at=utcnow(), reason=reason)

    _decide(ctx, "sharing.request.narrow", as_user, do)


@app.command("refuse")
def refuse(
    ctx: typer.Context,
    request_id: int,
    as_user: AsUser,
    reason: Annotated[str, typer.Option(help="Why; shown to the requester.")],
) -> None:
    """Refuse a request, with a reason (the owning department's data steward)."""
    _decide(
        ctx,
        "sharing.request.refuse",
        as_user,
        lambda s, a: sharing.refuse(s, a, request_id, reason, at=utcnow()),
    )


@app.command("withdraw")
def withdraw(ctx: typer.Context, request_id: int, as_user: AsUser) -> None:
    """Withdraw a submitted request (the requesting department's administrator)."""
    _decide(
        ctx,
        "sharing.request.withdraw",
        as_user,
        lambda s, a: sharing.withdraw(s, a, request_id, at=utcnow()),
    )


@app.command("renew")
def renew(ctx: typer.Context, request_id: int, as_user: AsUser) -> None:
    """Renew a granted request: a new request with the terms granted; its grant starts when
    the old one ends."""
    _decide(
        ctx,
        "sharing.request.renew",
        as_user,
        lambda s, a: sharing.renew(s, a, request_id, at=utcnow()),
    )


@app.command("expiring")
def expiring(
    ctx: typer.Context,
    as_user: MaybeAsUser = None,
    within_days: Annotated[int, typer.Option(help="Ending within this many days.")] = 30,
) -> None:
    """Grants ending soon: the department's as consumer and its datasets' as owner."""
    cli = state(ctx)
    with cli.sessions() as session:
        found = sharing.expiring(
            session, acting(session, as_user), at=utcnow(), within_days=within_days
        )
        table = Table("grant", "grantee", "dataset", "purposes", "ends", "origin", "request")
        for g in found:
            table.add_row(
                str(g.id),
                f"{g.grantee_department}/{g.grantee_role}",
                g.dataset,
                ", ".join(g.purposes),
                f"{g.valid_until:%Y-%m-%d %H:%M}",
                g.origin,
                str(g.sharing_request_id or ""),
            )
    cli.console.print(table)
