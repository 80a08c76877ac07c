"""The ``exchange`` command line.

Commands of other packages plug in through the ``exchange.commands`` entry-point
group (e.g. ``exchange connector ...`` from ``connectors``), so this package
never imports them. Every ExchangeError ends the command with its message and
exit code 2, never a stack trace.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from exchange.core.config import Settings, load_settings
from exchange.core.errors import ExchangeError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

app = typer.Typer(
    name="exchange",
    help="Data Exchange: publish department records under common standards, "
    "link them in a shared registry, and serve them to caseworkers with an audit trail.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
apikeys_app = typer.Typer(help="API keys of gateway users.", no_args_is_help=True)
app.add_typer(apikeys_app, name="apikeys")


def _audit_app() -> typer.Typer:
    from exchange.cli.audit import app as audit_cli_app

    return audit_cli_app


app.add_typer(_audit_app(), name="audit", no_args_is_help=True)


def _schemas_app() -> typer.Typer:
    from exchange.cli.schemas import app as schemas_app

    return schemas_app


app.add_typer(_schemas_app(), name="schemas")


def _keys_app() -> typer.Typer:
    from exchange.cli.keys import app as keys_cli_app

    return keys_cli_app


app.add_typer(_keys_app(), name="keys")


def _admin_app() -> typer.Typer:
    from exchange.cli.admin import app as admin_cli_app

    return admin_cli_app


app.add_typer(_admin_app(), name="admin")


def _registry_app() -> typer.Typer:
    from exchange.cli.registry import app as registry_cli_app

    return registry_cli_app


app.add_typer(_registry_app(), name="registry", no_args_is_help=True)


def _catalogue_app() -> typer.Typer:
    from exchange.cli.catalogue import app as catalogue_cli_app

    return catalogue_cli_app


app.add_typer(_catalogue_app(), name="catalogue")


def settings() -> Settings:
    return load_settings()


def say(message: str) -> None:
    console.print(f"[bold cyan]•[/] {message}")


@app.command()
def up() -> None:
    """Start the local stack: Kafka broker, registry builder and gateway (SQLite by default)."""
    from exchange.local.stack import Stack

    stack = Stack(settings())
    stack.up(say)
    _print_status(stack)


@app.command()
def down() -> None:
    """Stop the local stack; no broker or server process is left behind."""
    from exchange.local.stack import Stack

    Stack(settings()).down(say)
    say("stack is down")


@app.command()
def status() -> None:
    """Say what runs where."""
    from exchange.local.stack import Stack

    _print_status(Stack(settings()))


def _print_status(stack: object) -> None:
    from exchange.local.stack import Stack

    assert isinstance(stack, Stack)
    table = Table("component", "state", "pid", "address")
    for row in stack.status():
        state = "[green]running[/]" if row.running else "[red]stopped[/]"
        table.add_row(row.name, state, str(row.pid or "-"), row.address)
    console.print(table)
    console.print(f"data directory: {stack.data_dir}")


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="How many synthetic residents to publish.")] = 8,
) -> None:
    """Start the stack, publish a small department dataset, and query it through the gateway."""
    from exchange.local.demo import run_demo

    run_demo(settings(), console, people=people)


@app.command("config")
def show_config() -> None:
    """Print the effective settings, secrets masked."""
    import json

    console.print_json(json.dumps(settings().masked()))


@apikeys_app.command("create")
def keys_create(
    actor: Annotated[str, typer.Option(help="Who will use the key (user name).")],
    department: Annotated[str, typer.Option(help="The user's department.")],
    role: Annotated[str, typer.Option(help="caseworker, publisher, auditor or admin.")],
    expires_days: Annotated[int | None, typer.Option(help="Days until the key expires.")] = 90,
) -> None:
    """Create an API key; it is printed once and stored only as a salted hash."""
    from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
    from exchange.identity.apikeys import create_key

    if role not in {"caseworker", "publisher", "auditor", "admin"}:
        raise typer.BadParameter("role must be caseworker, publisher, auditor or admin")
    cfg = settings()
    engine = make_engine(cfg.db_url)
    migrate(engine)
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    with transaction(session_factory(engine)) as session:
        key = create_key(session, actor=actor, department=department, role=role, expires_at=expires)
    console.print("API key (shown once; store it safely):")
    console.print(key, markup=False)


def _load_plugins() -> None:
    for ep in entry_points(group="exchange.commands"):
        app.add_typer(ep.load(), name=ep.name)


def main() -> None:
    _load_plugins()
    try:
        app()
    except ExchangeError as exc:
        err_console.print(f"[bold red]error[/] ({exc.code}): ", end="")
        err_console.print(exc.message, markup=False)
        sys.exit(2)


if __name__ == "__main__":
    main()


__all__ = ["app", "main"]
