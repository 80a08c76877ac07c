"""``exchange catalogue resource ...``: the resource catalogue (docs/sharing.md).

``set`` acts as the operator (the central administrator: registers a dataset with
its owner, changes anything) or, with ``--as USERNAME``, as a department
administrator editing its own department's entries; it is audited like the API's
``catalogue.resource.set``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from exchange.access import resources
from exchange.access.sharing import Actor
from exchange.cli.acting import OPERATOR_ROLE, audited
from exchange.cli.context import state
from exchange.core.db import utcnow
from exchange.core.models import CatalogueResource

app = typer.Typer(help="The resource catalogue: owners, sharing types.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every dataset in the resource catalogue."""
    cli = state(ctx)
    with cli.sessions() as session:
        table = Table("dataset", "owner", "title", "sharing", "updated", "contact")
        for r in resources.list_resources(session):
            table.add_row(
                r.dataset,
                r.owner_department,
                r.title,
                r.sharing_type,
                r.update_frequency,
                r.contact,
            )
    cli.console.print(table)


@app.command("show")
def show(ctx: typer.Context, dataset: str) -> None:
    """A dataset's entry: owner, description, sharing type and its fields."""
    cli = state(ctx)
    with cli.sessions() as session:
        r = resources.view(resources.get(session, dataset))
    out = cli.console
    out.print(f"[bold]{r.dataset}[/]: ", end="")
    out.print(r.title, markup=False)
    out.print(
        f"owner {r.owner_department}; {r.sharing_type}; updated {r.update_frequency}; "
        f"contact {r.contact or '-'}",
        markup=False,
    )
    if r.description:
        out.print(r.description, markup=False)
    table = Table("field", "type", "sensitivity", "identifier", "encrypted", "masked as", "note")
    for f in r.fields:
        table.add_row(
            f.name,
            f.type,
            f.sensitivity,
            "yes" if f.identifier else "",
            "yes" if f.encrypted else "",
            f.mask,
            f.note,
        )
    out.print(table)


@app.command("set")
def set_(
    ctx: typer.Context,
    dataset: str,
    owner: Annotated[str | None, typer.Option(help="The owner department's code.")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    frequency: Annotated[str | None, typer.Option(help=", ".join(resources.FREQUENCIES))] = None,
    sharing: Annotated[str | None, typer.Option(help=", ".join(resources.SHARING_TYPES))] = None,
    contact: Annotated[str | None, typer.Option()] = None,
    note: Annotated[
        list[str] | None,
        typer.Option("--note", help="field=text, a note on a field; repeatable."),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="A department administrator (without: the operator)."),
    ] = None,
) -> None:
    """Register a dataset with its owner, or change its entry."""
    notes = {}
    for item in note or []:
        name, found, text = item.partition("=")
        if not name or not found:
            raise typer.BadParameter(f"note {item!r}: expected field=text")
        notes[name] = text
    change = resources.ResourceChange(
        owner=owner,
        title=title,
        description=description,
        frequency=frequency,
        sharing=sharing,
        contact=contact,
        field_notes=notes,
    )

    def step(session: Session, actor: Actor) -> tuple[CatalogueResource, str, str]:
        role = OPERATOR_ROLE if as_user is None else actor.role
        editor = resources.Editor(actor.actor, actor.department, role)
        row = resources.set_resource(session, editor, dataset, change, at=utcnow())
        return row, resources.summary(row), row.dataset

    cli = state(ctx)
    row = audited(cli, "catalogue.resource.set", as_user, step)
    cli.console.print(resources.summary(row), markup=False)
