"""``exchange indicators``: the sharing indicators over a period, as a table, CSV or JSON;
``exchange indicators report``: a month's report as a self-contained HTML page.

Read from the database of the settings; nothing is changed (the indicators hold no
personal data, so reading them is not an operator's read of the registry).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from exchange.cli.context import CliContext, state
from exchange.core.db import utcnow
from exchange.core.errors import ConfigError
from exchange.indicators import Indicators, Period, Scope, compute, month, period_of
from exchange.indicators.render import tables, to_csv
from exchange.indicators.report import html, pdf


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


app = typer.Typer(
    help="Sharing indicators: published and rejected records, freshness, timeliness, "
    "linkage, requests served and refused, turnaround, latency (docs/indicators.md).",
    invoke_without_command=True,
)

Department = Annotated[
    str | None, typer.Option("--department", help="Only this department (see docs).")
]
Dataset = Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")]


def _compute(cli: CliContext, period: Period, scope: Scope) -> Indicators:
    with cli.sessions() as session:
        return compute(session, period, scope, now=utcnow())


@app.callback()
def indicators(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Start, included: YYYY-MM-DD (UTC) or ISO 8601 with zone."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="End, excluded. Default: now (and --from: 30 days before)."),
    ] = None,
    department: Department = None,
    dataset: Dataset = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.table,
) -> None:
    """Print the sharing indicators over [--from, --to)."""
    if ctx.invoked_subcommand is not None:
        return
    cli = state(ctx)
    found = _compute(cli, period_of(start, end, now=utcnow()), Scope(department, dataset))
    if fmt is Format.json:
        cli.console.out(found.model_dump_json(indent=2), highlight=False)
    elif fmt is Format.csv:
        cli.console.out(to_csv(found), end="", highlight=False)
    else:
        for table in tables(found):
            cli.console.print(table)


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    month_text: Annotated[str, typer.Option("--month", help="The month, YYYY-MM (UTC).")],
    out: Annotated[
        Path,
        typer.Option("--out", help="The file to write: HTML, or PDF if it ends in .pdf."),
    ],
    department: Department = None,
    dataset: Dataset = None,
) -> None:
    """Write a month's indicators as a self-contained HTML report with charts (or PDF)."""
    cli = state(ctx)
    period = month(month_text)
    found = _compute(cli, period, Scope(department, dataset))
    page = html(found, title=f"Sharing indicators, {period.start:%B %Y}")
    try:
        if out.suffix.lower() == ".pdf":
            out.write_bytes(pdf(page))
        else:
            out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {out}: {exc.strerror}") from exc
    cli.console.print(f"report for {month_text} written to {out}")
