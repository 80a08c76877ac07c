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
from rich.table import Table

from exchange.cli.context import CliContext, state
from exchange.core.db import utcnow
from exchange.core.errors import ConfigError
from exchange.indicators import Indicators, Period, Scope, compute, month, period_of
from exchange.indicators.render import to_csv
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


def _n(value: float | int | None, decimals: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def tables(found: Indicators) -> list[Table]:
    """The indicators as rich tables, one a section."""
    span = f"{found.period.start:%Y-%m-%d %H:%M} to {found.period.end:%Y-%m-%d %H:%M} UTC"
    pub = Table(title=f"Records published and rejected, {span}")
    for name in ("department", "dataset", "runs", "read", "published", "rejected", "by reason"):
        pub.add_column(name)
    for name in ("registry rejected", "by reason", "applied"):
        pub.add_column(name)
    for p in found.publishing:
        pub.add_row(
            p.department, p.dataset, _n(p.runs), _n(p.read), _n(p.published), _n(p.rejected),
            ", ".join(f"{k}: {v}" for k, v in p.rejected_by_reason.items()),
            _n(p.registry_rejected),
            ", ".join(f"{k}: {v}" for k, v in p.registry_rejected_by_reason.items()),
            _n(p.applied),
        )  # fmt: skip
    fresh = Table(title="Freshness: source change time to registry")
    for name in ("department", "dataset", "versions", "with time", "without", "p50", "p95"):
        fresh.add_column(name)
    for f in found.freshness:
        fresh.add_row(
            f.department, f.dataset, _n(f.versions), _n(f.with_change_time),
            _n(f.without_change_time), _seconds(f.p50_s), _seconds(f.p95_s),
        )  # fmt: skip
    timely = Table(title="Timeliness against the declared update frequency")
    for name in ("owner", "dataset", "frequency", "intervals", "with data", "share", "age at end"):
        timely.add_column(name)
    timely.add_column("within frequency")
    for t in found.timeliness:
        timely.add_row(
            t.department, t.dataset, t.frequency, _n(t.expected_intervals),
            _n(t.intervals_with_data), _pct(t.share), _seconds(t.age_s),
            "n/a" if t.within_frequency is None else ("yes" if t.within_frequency else "no"),
        )  # fmt: skip
    link = found.linkage
    linked = Table(
        title=f"Linkage: {_n(link.known_to_two_or_more)} of {_n(link.people)} people known to "
        f"two or more departments ({_pct(link.rate)})"
    )
    for name in ("department", "people", "known elsewhere", "rate"):
        linked.add_column(name)
    for d in link.by_department:
        linked.add_row(d.department, _n(d.people), _n(d.known_elsewhere), _pct(d.rate))
    asked = Table(title="Data requests served and refused")
    for name in ("department", "purpose", "dataset", "served", "refused", "p50 ms", "p95 ms"):
        asked.add_column(name)
    for r in found.requests:
        asked.add_row(
            r.department or "n/a", r.purpose, r.dataset or "n/a", _n(r.served), _n(r.refused),
            _n(r.latency_p50_ms), _n(r.latency_p95_ms),
        )  # fmt: skip
    slow = Table(title="Query latency (arrival to answer)")
    for name in ("action", "requests", "without latency", "p50 ms", "p95 ms"):
        slow.add_column(name)
    for lat in found.latency:
        slow.add_row(
            lat.action or "(all)", _n(lat.requests), _n(lat.without_latency), _n(lat.p50_ms),
            _n(lat.p95_ms),
        )  # fmt: skip
    turn = Table(title="Sharing-request turnaround (submitted to decided)")
    for name in ("owner", "dataset", "decided", "approved", "narrowed", "refused", "open"):
        turn.add_column(name)
    turn.add_column("p50")
    turn.add_column("p95")
    for t2 in found.turnaround:
        turn.add_row(
            t2.department, t2.dataset, _n(t2.decided), _n(t2.approved), _n(t2.narrowed),
            _n(t2.refused), _n(t2.open), _seconds(t2.p50_s), _seconds(t2.p95_s),
        )  # fmt: skip
    return [pub, fresh, timely, linked, asked, slow, turn]


def _seconds(value: float | None) -> str:
    """A duration for people: seconds, minutes, hours or days."""
    if value is None:
        return "n/a"
    size = abs(value)
    if size < 120:
        return f"{value:.0f} s"
    if size < 7200:
        return f"{value / 60:.1f} min"
    if size < 172_800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"
