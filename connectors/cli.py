"""``exchange connector ...``: plugged into the exchange's command line by entry point.

Its commands run on the command line's shared context (settings, database, keystore,
consoles and error reporter: :mod:`exchange.cli.context`), like the exchange's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from connectors.deadletters import dead_letters, summarize
from connectors.definition import load_definition
from connectors.pipeline import Keys, dlq_topic, open_dead_letter
from connectors.publisher import run_connector
from exchange.cli.context import CliContext, state
from schemas import SchemaStore

app = typer.Typer(
    help="Department connectors: check, run, and see rejected records.", no_args_is_help=True
)


def _keys(cli: CliContext) -> Keys:
    return Keys(cli.keystore, cli.settings.linkage_key.get_secret_value().encode())


@app.command("check")
def check(
    ctx: typer.Context,
    definition: Annotated[Path, typer.Argument(help="Connector definition (TOML).")],
) -> None:
    """Validate a definition against its standard without publishing."""
    console = state(ctx).console
    spec = load_definition(definition)
    std = spec.standard
    encrypted = [f.name for f in std.wire.fields if f.encrypted]
    console.print(
        f"[green]ok[/]: {spec.connector.id} ({spec.connector.department}) maps "
        f"{len(spec.fields)} fields from a {spec.source.type} source to {std.name} ({std.topic})"
    )
    if encrypted:
        console.print(
            f"encrypted before they leave the department: {', '.join(encrypted)}", markup=False
        )


def _estimate_rows(path: Path) -> int | None:
    """Lines in a file, counted fast in binary, for the progress bar's ETA."""
    try:
        with path.open("rb") as handle:
            return max(
                sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1, 0
            )
    except OSError:
        return None


@app.command("run")
def run(
    ctx: typer.Context,
    definition: Annotated[Path, typer.Argument(help="Connector definition (TOML).")],
    restart: Annotated[
        bool, typer.Option(help="Ignore the checkpoint: publish the whole source again.")
    ] = False,
) -> None:
    """Publish the source: valid rows to the standard topic, the rest dead-lettered.

    A run that was interrupted resumes where Kafka last acknowledged.
    """
    spec = load_definition(definition)
    cli = state(ctx)
    cfg, sessions, console = cli.settings, cli.sessions, cli.console
    keys = _keys(cli)
    total = _estimate_rows(spec.source_path) if spec.source.type in ("csv", "jsonl") else None
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(f"publishing {spec.connector.id}", total=total, rate=0.0)

        def on_progress(read: int) -> None:
            if read % 500 == 0:
                elapsed = progress.tasks[task].elapsed or 1e-9
                progress.update(task, completed=read, rate=read / elapsed)

        report = run_connector(
            spec,
            bootstrap=cfg.kafka.bootstrap,
            store=SchemaStore(sessions),
            keys=keys,
            sessions=sessions,
            on_progress=on_progress,
            restart=restart,
            workers=cfg.connector_workers,
        )
        elapsed = progress.tasks[task].elapsed or 1e-9
        progress.update(task, completed=report.read, total=report.read, rate=report.read / elapsed)
    colour = "green" if report.reconciled else "red"
    console.print(f"[{colour}]{report.summary()}[/]", markup=True)
    if report.nothing_new:
        console.print("use --restart to publish the whole source again")
        return
    console.print(
        f"run {report.run_id}: published to {report.topic}; rejected rows to {report.dlq_topic}"
    )
    if report.rejections:
        table = Table("line", "source id", "field", "reason", "message", title="rejected rows")
        cipher = _keys(cli).cipher
        for entry in (open_dead_letter(cipher, e) for e in report.rejections):
            for reason in entry["reasons"]:
                table.add_row(
                    str(entry["line"]),
                    entry["source_id"] or "-",
                    reason["field"],
                    reason["code"],
                    reason["message"],
                )
        console.print(table)
        if report.rejected > len(report.rejections):
            console.print(
                f"... {report.rejected - len(report.rejections)} more; "
                f"see: exchange connector rejects {spec.standard.dataset} "
                f"--department {spec.connector.department}"
            )
    if not report.reconciled:
        raise typer.Exit(1)


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    definition: Annotated[Path, typer.Argument(help="Connector definition (TOML).")],
    source_ids: Annotated[
        list[str] | None, typer.Argument(help="Source ids (the key column) to withdraw.")
    ] = None,
    ids_file: Annotated[
        Path | None, typer.Option("--from-file", help="A file with one source id a line.")
    ] = None,
) -> None:
    """Withdraw published records: signed tombstones the registry applies as withdrawals."""
    from connectors.withdraw import withdraw_records

    spec = load_definition(definition)
    wanted = list(source_ids or [])
    if ids_file is not None:
        try:
            wanted += ids_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {ids_file}: {exc}") from exc
    if not any(s.strip() for s in wanted):
        raise typer.BadParameter("name at least one source id (or --from-file)")
    cli = state(ctx)
    keys = _keys(cli)
    count = withdraw_records(
        spec,
        wanted,
        bootstrap=cli.settings.kafka.bootstrap,
        store=SchemaStore(cli.sessions),
        keys=keys,
    )
    cli.console.print(f"withdrew {count} record(s) of {spec.connector.id} on {spec.standard.topic}")


@app.command("rejects")
def rejects(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="The dataset, e.g. person.")],
    department: Annotated[
        str, typer.Option(help="Your department: reads dlq.<department>.<dataset>.")
    ],
    connector: Annotated[str | None, typer.Option(help="Only this connector's rejections.")] = None,
    examples: Annotated[int, typer.Option(help="Example rows to show per reason.")] = 2,
) -> None:
    """Reasons a department's records of a dataset were rejected, with counts and example
    rows (their sealed values opened with the department's keys)."""
    cli = state(ctx)
    console = cli.console
    topic = dlq_topic(department, dataset)
    found = summarize(
        topic,
        dead_letters(
            cli.settings.kafka.bootstrap,
            _keys(cli).cipher,
            department,
            dataset,
            connector=connector,
        ),
        examples=examples,
    )
    if not found.total:
        console.print(f"no rejected records in {topic}")
        return
    table = Table(
        "reason",
        "field",
        "count",
        "examples (connector, line, source id: message)",
        title=f"{found.total} rejected records in {topic}",
    )
    for group in found.reasons:
        shown = "\n".join(
            f"{s.connector}, line {s.line}, {s.source_id or '-'}: {s.message}"
            for s in group.examples
        )
        table.add_row(group.code, group.field, str(group.count), shown)
    console.print(table)
