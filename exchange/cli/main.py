"""The ``exchange`` command line.

Commands of other packages plug in through the ``exchange.commands`` entry-point
group (e.g. ``exchange connector ...`` from ``connectors``), so this package
never imports them. Every command runs on one shared context
(:mod:`exchange.cli.context`), opened by the root callback: settings, database,
consoles, and the error reporter through which every ExchangeError ends the
command with its message and exit code 2, never a stack trace.
"""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from exchange.cli import admin, audit, catalogue, indicators, keys, registry, schemas, sharing
from exchange.cli.context import CliContext, RootGroup, state

if TYPE_CHECKING:
    from exchange.local.stack import Stack

app = typer.Typer(
    name="exchange",
    help="Data Exchange: publish department records under common standards, "
    "link them in a shared registry, and serve them to caseworkers with an audit trail.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=RootGroup,
)
apikeys_app = typer.Typer(help="API keys of gateway users.", no_args_is_help=True)
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(audit.app, name="audit", no_args_is_help=True)
app.add_typer(schemas.app, name="schemas")
app.add_typer(keys.app, name="keys")
app.add_typer(admin.app, name="admin")
app.add_typer(registry.app, name="registry", no_args_is_help=True)
app.add_typer(catalogue.app, name="catalogue")
app.add_typer(sharing.app, name="sharing")
app.add_typer(indicators.app, name="indicators")


@app.callback()
def _open(ctx: typer.Context) -> None:
    # Opens the shared context every command uses; nothing in it is made until asked for.
    state(ctx)


def _say(cli: CliContext, message: str) -> None:
    cli.console.print(f"[bold cyan]•[/] {message}")


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the local stack: Kafka broker, registry builder and gateway (SQLite by default)."""
    from exchange.local.stack import Stack

    cli = state(ctx)
    stack = Stack(cli.settings)
    stack.up(lambda message: _say(cli, message))
    _print_status(cli, stack)


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the local stack; no broker or server process is left behind."""
    from exchange.local.stack import Stack

    cli = state(ctx)
    Stack(cli.settings).down(lambda message: _say(cli, message))
    _say(cli, "stack is down")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say what runs where."""
    from exchange.local.stack import Stack

    cli = state(ctx)
    _print_status(cli, Stack(cli.settings))


def _print_status(cli: CliContext, stack: Stack) -> None:
    table = Table("component", "state", "pid", "address")
    for row in stack.status():
        shown = "[green]running[/]" if row.running else "[red]stopped[/]"
        table.add_row(row.name, shown, str(row.pid or "-"), row.address)
    cli.console.print(table)
    cli.console.print(f"data directory: {stack.data_dir}")


@app.command()
def demo(ctx: typer.Context) -> None:
    """Start the stack; five departments publish the same people; a caseworker checks a
    household for the minimum living allowance through the gateway; print the summary."""
    from exchange.local.demo import run_demo

    cli = state(ctx)
    run_demo(cli.settings, cli.console, lambda: cli.sessions)


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings, secrets masked."""
    import json

    cli = state(ctx)
    cli.console.print_json(json.dumps(cli.settings.masked()))


@apikeys_app.command("create")
def keys_create(
    ctx: typer.Context,
    actor: Annotated[str, typer.Option(help="Who will use the key (user name).")],
    department: Annotated[str, typer.Option(help="The user's department.")],
    role: Annotated[
        str,
        typer.Option(
            help="caseworker, publisher, auditor, admin, department_admin or data_steward."
        ),
    ],
    expires_days: Annotated[
        int, typer.Option(help="Days until the key expires (at least 1).")
    ] = 90,
    never_expires: Annotated[
        bool, typer.Option("--never-expires", help="Make a key that does not expire.")
    ] = False,
) -> None:
    """Create an API key; it is printed once and stored only as a salted hash."""
    from exchange.core.db import utcnow
    from exchange.identity.apikeys import create_key
    from exchange.identity.identities import ROLES

    if role not in ROLES:
        raise typer.BadParameter("role must be one of " + ", ".join(ROLES))
    if expires_days <= 0 and not never_expires:
        # A key that expired at its creation would be refused from its first use.
        raise typer.BadParameter(
            f"{expires_days} is not a number of days: the key would be expired at once; "
            "give 1 or more, or --never-expires",
            param_hint="'--expires-days'",
        )
    cli = state(ctx)
    expires = None if never_expires else utcnow() + timedelta(days=expires_days)
    key = cli.apply(
        create_key,
        actor=actor,
        department=department,
        role=role,
        expires_at=expires,
        origin=cli.settings.env.value,
    )
    cli.console.print("API key (shown once; store it safely):")
    cli.console.print(key, markup=False)


def load_plugins() -> None:
    """Add the commands of the ``exchange.commands`` entry points (once each)."""
    present = {group.name for group in app.registered_groups}
    for ep in entry_points(group="exchange.commands"):
        if ep.name not in present:
            app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    load_plugins()
    app()


if __name__ == "__main__":
    main()


__all__ = ["app", "load_plugins", "main"]
