"""``exchange catalogue ...``: datasets, purposes and grants of the access catalogue.

Changes made here are audited like the admin API's (actions ``catalogue.*``),
with the operator's login name as the actor (``cli:<user>``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from exchange.access import catalogue
from exchange.cli import resources
from exchange.cli.context import CliContext, audit_operator, cli_actor, state
from exchange.core.db import utcnow

app = typer.Typer(help="The access catalogue: datasets, purposes, grants.", no_args_is_help=True)
app.add_typer(resources.app, name="resource")
T = TypeVar("T")


def _change(cli: CliContext, action: str, do: Callable[[Session], tuple[T, str, str | None]]) -> T:
    """Make a change and audit it in one transaction (a refused change is not stored)."""
    with cli.transaction() as session:
        result, reason, dataset = do(session)
        audit_operator(session, action, reason, dataset=dataset)
        return result


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command("datasets")
def datasets(ctx: typer.Context) -> None:
    """The datasets grants may name, with each field's sensitivity and masking."""
    cli = state(ctx)
    for d in catalogue.datasets():
        table = Table("field", "type", "sensitivity", "identifier", "encrypted", "masked as")
        for f in d.fields:
            table.add_row(
                f.name,
                f.type,
                f.sensitivity.value,
                "yes" if f.identifier else "",
                "yes" if f.encrypted else "",
                str(f.mask),
            )
        division = f", division field {d.division_field}" if d.division_field else ""
        cli.console.print(f"[bold]{d.name}[/] v{d.version} ({d.topic}{division})")
        cli.console.print(table)


@app.command("purposes")
def purposes(ctx: typer.Context) -> None:
    """List purposes, active and deactivated."""
    cli = state(ctx)
    with cli.sessions() as session:
        table = Table("code", "title", "legal basis", "active", "case ref")
        for p in catalogue.list_purposes(session):
            case_ref = ("required" if p.case_ref_required else "optional") + (
                f" {p.case_ref_pattern}" if p.case_ref_pattern else ""
            )
            table.add_row(
                p.code, p.title, p.legal_basis or "", "yes" if p.active else "no", case_ref
            )
    cli.console.print(table)


@app.command("purpose-add")
def purpose_add(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="e.g. minimum-living-allowance")],
    title: Annotated[str, typer.Option(help="What the purpose is, in words.")],
    legal_basis: Annotated[str | None, typer.Option(help="The law or regulation.")] = None,
    case_ref_required: Annotated[
        bool, typer.Option(help="Requests stating the purpose must give a case reference.")
    ] = False,
    case_ref_pattern: Annotated[
        str | None,
        typer.Option(help="A regular expression the whole case reference must match."),
    ] = None,
) -> None:
    """Add a purpose that requests may state and grants may serve."""

    def do(session: Session) -> tuple[str, str, None]:
        purpose = catalogue.add_purpose(
            session,
            code,
            title,
            legal_basis,
            case_ref_required=case_ref_required,
            case_ref_pattern=case_ref_pattern,
        )
        return purpose.code, f"purpose {purpose.code!r} added", None

    cli = state(ctx)
    cli.console.print(f"purpose {_change(cli, 'catalogue.purpose.add', do)} added")


@app.command("purpose-case-ref")
def purpose_case_ref(
    ctx: typer.Context,
    code: str,
    required: Annotated[
        bool,
        typer.Option("--required/--optional", help="Whether requests must give a case reference."),
    ],
    pattern: Annotated[
        str | None,
        typer.Option(help="A regular expression the whole case reference must match."),
    ] = None,
) -> None:
    """Say whether requests stating a purpose must give a case reference, and its pattern."""

    def do(session: Session) -> tuple[str, str, None]:
        purpose = catalogue.set_case_ref_rule(session, code, required=required, pattern=pattern)
        rule = ("required" if purpose.case_ref_required else "optional") + (
            f", pattern {purpose.case_ref_pattern}" if purpose.case_ref_pattern else ""
        )
        return code, f"purpose {code!r} case reference: {rule}", None

    cli = state(ctx)
    done = _change(cli, "catalogue.purpose.case_ref", do)
    cli.console.print(f"purpose {done} case reference rule set")


@app.command("purpose-deactivate")
def purpose_deactivate(ctx: typer.Context, code: str) -> None:
    """Deactivate a purpose: no request may state it any more, no new grant may serve it."""

    def do(session: Session) -> tuple[str, str, None]:
        catalogue.deactivate_purpose(session, code)
        return code, f"purpose {code!r} deactivated", None

    cli = state(ctx)
    cli.console.print(f"purpose {_change(cli, 'catalogue.purpose.deactivate', do)} deactivated")


@app.command("grants")
def grants(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked grants.")] = False,
) -> None:
    """List grants."""
    cli = state(ctx)
    with cli.sessions() as session:
        table = Table("id", "grantee", "dataset", "fields", "purposes", "rows", "valid", "revoked")
        for g in catalogue.list_grants(session, include_revoked=all_):
            table.add_row(
                str(g.id),
                f"{g.grantee_department}/{g.grantee_role}",
                g.dataset,
                ", ".join(f"{k}:{v}" if v != "full" else k for k, v in sorted(g.fields.items())),
                ", ".join(g.purposes),
                ", ".join(f"{k}={v}" for k, v in sorted((g.row_constraints or {}).items())),
                f"{g.valid_from:%Y-%m-%d} .. "
                + (f"{g.valid_until:%Y-%m-%d}" if g.valid_until else ""),
                f"{g.revoked_at:%Y-%m-%d} by {g.revoked_by}" if g.revoked_at else "",
            )
    cli.console.print(table)


def _pairs(values: list[str], sep: str, what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, found, rest = value.partition(sep)
        if not name or (sep == "=" and not found):
            raise typer.BadParameter(f"{what} {value!r}: expected name{sep}value")
        out[name] = rest
    return out


@app.command("grant-add")
def grant_add(
    ctx: typer.Context,
    department: Annotated[str, typer.Option(help="The consuming department.")],
    role: Annotated[str, typer.Option(help="The grantee role: caseworker.")],
    dataset: Annotated[str, typer.Option(help="A dataset (standard), e.g. person.")],
    field: Annotated[
        list[str], typer.Option("--field", help="name or name:masked; repeat for each field.")
    ],
    purpose: Annotated[list[str], typer.Option("--purpose", help="A purpose code; repeatable.")],
    constraint: Annotated[
        list[str] | None,
        typer.Option("--constraint", help="Row constraint name=value, e.g. division_prefix=3301."),
    ] = None,
    valid_from: Annotated[str | None, typer.Option(help="ISO date or time (UTC).")] = None,
    valid_until: Annotated[str | None, typer.Option(help="ISO date or time (UTC).")] = None,
    note: Annotated[str | None, typer.Option(help="Why the grant exists.")] = None,
) -> None:
    """Add a grant; it is checked against the catalogue and every problem is named."""
    fields = {k: (v or "full") for k, v in _pairs(field, ":", "field").items()}
    spec = catalogue.GrantSpec(
        department=department,
        role=role,
        dataset=dataset,
        fields=fields,
        purposes=purpose,
        row_constraints=_pairs(constraint or [], "=", "constraint"),
        valid_from=_when(valid_from),
        valid_until=_when(valid_until),
        note=note,
    )

    def do(session: Session) -> tuple[int, str, str]:
        grant = catalogue.add_grant(session, spec, created_by=cli_actor(), at=utcnow())
        return grant.id, "direct (bootstrapping) " + catalogue.summary(grant), grant.dataset

    cli = state(ctx)
    cli.console.print(f"grant {_change(cli, 'catalogue.grant.add', do)} added")


@app.command("grant-revoke")
def grant_revoke(ctx: typer.Context, grant_id: int) -> None:
    """Revoke a grant; it stays on record."""

    def do(session: Session) -> tuple[int, str, str]:
        grant = catalogue.revoke_grant(session, grant_id, by=cli_actor(), at=utcnow())
        return grant.id, "revoked " + catalogue.summary(grant), grant.dataset

    cli = state(ctx)
    cli.console.print(f"grant {_change(cli, 'catalogue.grant.revoke', do)} revoked")
