"""``exchange admin ...``: departments, users and API keys, on the local database.

The root of trust: whoever runs these commands against the database makes the
first admin, who can then use the admin API. A key's plaintext is printed once,
when it is made; listings never show secrets.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from exchange.cli.context import state
from exchange.core.db import utcnow
from exchange.identity import identities

app = typer.Typer(help="Departments, users and their API keys.", no_args_is_help=True)
department_app = typer.Typer(help="Departments taking part in the exchange.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the gateway.", no_args_is_help=True)
key_app = typer.Typer(help="Users' API keys.", no_args_is_help=True)
app.add_typer(department_app, name="department")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@department_app.command("add")
def department_add(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Stable code, e.g. civil_affairs.")],
    name: Annotated[str, typer.Option(help="The department's name.")],
) -> None:
    """Register a department."""
    cli = state(ctx)
    info = cli.apply(identities.create_department, code, name)
    cli.console.print(f"department {info.code} added")


@department_app.command("list")
def department_list(ctx: typer.Context) -> None:
    """The departments."""
    cli = state(ctx)
    rows = cli.apply(identities.list_departments)
    if not rows:
        cli.console.print("no departments")
        return
    table = Table("code", "name", "created")
    for d in rows:
        table.add_row(d.code, d.name, _when(d.created_at))
    cli.console.print(table)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user's login name.")],
    department: Annotated[str, typer.Option(help="Code of the user's department.")],
    role: Annotated[
        str,
        typer.Option(
            help="caseworker, publisher, auditor, admin, department_admin or data_steward."
        ),
    ],
    display_name: Annotated[str | None, typer.Option(help="Full name, for people.")] = None,
    oidc_subject: Annotated[
        str | None, typer.Option(help="The user's `sub` at the OIDC provider.")
    ] = None,
) -> None:
    """Register a user in a department, with a role."""
    cli = state(ctx)
    with cli.transaction() as session:
        info = identities.create_user(
            session,
            username=username,
            department=department,
            role=role,
            display_name=display_name,
            oidc_subject=oidc_subject,
        )
    cli.console.print(f"user {info.username} added ({info.role} in {info.department})")


@user_app.command("list")
def user_list(
    ctx: typer.Context,
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
) -> None:
    """The users, active and disabled."""
    cli = state(ctx)
    rows = cli.apply(identities.list_users, department=department)
    if not rows:
        cli.console.print("no users")
        return
    table = Table("user", "department", "role", "name", "OIDC subject", "state")
    for u in rows:
        shown = "active" if u.active else f"disabled {_when(u.disabled_at)}"
        table.add_row(
            u.username, u.department, u.role, u.display_name or "-", u.oidc_subject or "-", shown
        )
    cli.console.print(table)


@user_app.command("disable")
def user_disable(
    ctx: typer.Context, username: Annotated[str, typer.Argument(help="The user to disable.")]
) -> None:
    """Disable a user: their keys and tokens are refused from the next request on."""
    cli = state(ctx)
    info = cli.apply(identities.disable_user, username)
    cli.console.print(f"user {info.username} disabled")


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Whose key.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires_days: Annotated[
        int, typer.Option(help="Days until the key expires (at least 1).")
    ] = 90,
    never_expires: Annotated[
        bool, typer.Option("--never-expires", help="Make a key that does not expire.")
    ] = False,
) -> None:
    """Make an API key for a user; it is printed once and stored only as a salted hash."""
    if expires_days <= 0 and not never_expires:
        # As `exchange apikeys create`: 0 once meant "never" here, and -1 would make a key
        # expired from the start; both are refused, and --never-expires says it plainly.
        raise typer.BadParameter(
            f"{expires_days} is not a number of days: the key would be expired at once; "
            "give 1 or more, or --never-expires",
            param_hint="'--expires-days'",
        )
    cli = state(ctx)
    expires = None if never_expires else utcnow() + timedelta(days=expires_days)
    created = cli.apply(
        identities.create_key,
        username,
        label=label,
        expires_at=expires,
        origin=cli.settings.env.value,
    )
    cli.console.print(
        f"API key {created.info.key_id} for {username} (shown once; store it safely):"
    )
    cli.console.print(created.key, markup=False)


@key_app.command("list")
def key_list(
    ctx: typer.Context, username: Annotated[str, typer.Argument(help="Whose keys.")]
) -> None:
    """A user's keys, without their secrets."""
    cli = state(ctx)
    rows = cli.apply(identities.list_keys, username)
    if not rows:
        cli.console.print(f"no keys for {username}")
        return
    table = Table("key id", "label", "created", "expires", "revoked")
    for k in rows:
        table.add_row(
            k.key_id, k.label or "-", _when(k.created_at), _when(k.expires_at), _when(k.revoked_at)
        )
    cli.console.print(table)


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke a key: it is refused from the next request on."""
    cli = state(ctx)
    info = cli.apply(identities.revoke_key, key_id)
    cli.console.print(f"key {info.key_id} of {info.username} revoked at {_when(info.revoked_at)}")
