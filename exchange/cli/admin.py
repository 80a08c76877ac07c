"""``exchange admin ...``: departments, users and API keys, on the local database.

The root of trust: whoever runs these commands against the database makes the
first admin, who can then use the admin API. A key's plaintext is printed once,
when it is made; listings never show secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import wraps
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from exchange.core.config import load_settings
from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
from exchange.core.errors import ExchangeError
from exchange.identity import identities

app = typer.Typer(help="Departments, users and their API keys.", no_args_is_help=True)
department_app = typer.Typer(help="Departments taking part in the exchange.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the gateway.", no_args_is_help=True)
key_app = typer.Typer(help="Users' API keys.", no_args_is_help=True)
app.add_typer(department_app, name="department")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


def _reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """End the command with the error's message and exit code 2, never a stack trace."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ExchangeError as exc:
            err_console.print(f"[bold red]error[/] ({exc.code}): ", end="")
            err_console.print(exc.message, markup=False)
            raise typer.Exit(2) from exc

    return run


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine(load_settings().db_url)
    try:
        migrate(engine)
        with transaction(session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@department_app.command("add")
@_reports_errors
def department_add(
    code: Annotated[str, typer.Argument(help="Stable code, e.g. civil_affairs.")],
    name: Annotated[str, typer.Option(help="The department's name.")],
) -> None:
    """Register a department."""
    with _session() as session:
        info = identities.create_department(session, code, name)
    console.print(f"department {info.code} added")


@department_app.command("list")
@_reports_errors
def department_list() -> None:
    """The departments."""
    with _session() as session:
        rows = identities.list_departments(session)
    if not rows:
        console.print("no departments")
        return
    table = Table("code", "name", "created")
    for d in rows:
        table.add_row(d.code, d.name, _when(d.created_at))
    console.print(table)


@user_app.command("add")
@_reports_errors
def user_add(
    username: Annotated[str, typer.Argument(help="The user's login name.")],
    department: Annotated[str, typer.Option(help="Code of the user's department.")],
    role: Annotated[str, typer.Option(help="caseworker, publisher, auditor or admin.")],
    display_name: Annotated[str | None, typer.Option(help="Full name, for people.")] = None,
    oidc_subject: Annotated[
        str | None, typer.Option(help="The user's `sub` at the OIDC provider.")
    ] = None,
) -> None:
    """Register a user in a department, with a role."""
    with _session() as session:
        info = identities.create_user(
            session,
            username=username,
            department=department,
            role=role,
            display_name=display_name,
            oidc_subject=oidc_subject,
        )
    console.print(f"user {info.username} added ({info.role} in {info.department})")


@user_app.command("list")
@_reports_errors
def user_list(
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
) -> None:
    """The users, active and disabled."""
    with _session() as session:
        rows = identities.list_users(session, department=department)
    if not rows:
        console.print("no users")
        return
    table = Table("user", "department", "role", "name", "OIDC subject", "state")
    for u in rows:
        state = "active" if u.active else f"disabled {_when(u.disabled_at)}"
        table.add_row(
            u.username, u.department, u.role, u.display_name or "-", u.oidc_subject or "-", state
        )
    console.print(table)


@user_app.command("disable")
@_reports_errors
def user_disable(username: Annotated[str, typer.Argument(help="The user to disable.")]) -> None:
    """Disable a user: their keys and tokens are refused from the next request on."""
    with _session() as session:
        info = identities.disable_user(session, username)
    console.print(f"user {info.username} disabled")


@key_app.command("create")
@_reports_errors
def key_create(
    username: Annotated[str, typer.Argument(help="Whose key.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires_days: Annotated[
        int | None, typer.Option(min=0, help="Days until the key expires (0: never).")
    ] = 90,
) -> None:
    """Make an API key for a user; it is printed once and stored only as a salted hash."""
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    with _session() as session:
        created = identities.create_key(session, username, label=label, expires_at=expires)
    console.print(f"API key {created.info.key_id} for {username} (shown once; store it safely):")
    console.print(created.key, markup=False)


@key_app.command("list")
@_reports_errors
def key_list(username: Annotated[str, typer.Argument(help="Whose keys.")]) -> None:
    """A user's keys, without their secrets."""
    with _session() as session:
        rows = identities.list_keys(session, username)
    if not rows:
        console.print(f"no keys for {username}")
        return
    table = Table("key id", "label", "created", "expires", "revoked")
    for k in rows:
        table.add_row(
            k.key_id, k.label or "-", _when(k.created_at), _when(k.expires_at), _when(k.revoked_at)
        )
    console.print(table)


@key_app.command("revoke")
@_reports_errors
def key_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key: it is refused from the next request on."""
    with _session() as session:
        info = identities.revoke_key(session, key_id)
    console.print(f"key {info.key_id} of {info.username} revoked at {_when(info.revoked_at)}")
