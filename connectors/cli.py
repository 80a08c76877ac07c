"""``exchange connector ...``: plugged into the exchange's command line by entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.definition import load_definition
from connectors.publisher import run_connector
from exchange.config import load_settings
from exchange.db import make_engine, migrate, session_factory
from schemas import SchemaStore

app = typer.Typer(help="Department connectors: check and run.", no_args_is_help=True)
console = Console(highlight=False)


@app.command("check")
def check(definition: Annotated[Path, typer.Argument(help="Connector definition (TOML).")]) -> None:
    """Validate a definition against its standard without publishing."""
    spec = load_definition(definition)
    console.print(
        f"[green]ok[/]: {spec.connector.id} maps {len(spec.fields)} fields of "
        f"{spec.source_path.name} to {spec.standard.name} ({spec.standard.topic})"
    )


@app.command("run")
def run(definition: Annotated[Path, typer.Argument(help="Connector definition (TOML).")]) -> None:
    """Publish the source once: valid rows to the standard topic, the rest dead-lettered."""
    spec = load_definition(definition)
    cfg = load_settings()
    engine = make_engine(cfg.db_url)
    migrate(engine)
    store = SchemaStore(session_factory(engine))
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        TextColumn("{task.fields[rate]:.0f} rows/s"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(f"publishing {spec.source_path.name}", total=None, rate=0.0)

        def on_progress(read: int) -> None:
            if read % 200 == 0:
                elapsed = progress.tasks[task].elapsed or 1e-9
                progress.update(task, completed=read, rate=read / elapsed)

        report = run_connector(
            spec, bootstrap=cfg.kafka.bootstrap, store=store, on_progress=on_progress
        )
        elapsed = progress.tasks[task].elapsed or 1e-9
        progress.update(task, completed=report.read, total=report.read, rate=report.read / elapsed)
    colour = "green" if report.reconciled else "red"
    console.print(f"[{colour}]{report.summary()}[/]")
    console.print(f"published to {report.topic}; rejected rows to {report.dlq_topic}")
    if report.rejections:
        table = Table("line", "source id", "field", "reason", "message", title="rejected rows")
        for entry in report.rejections:
            for reason in entry["reasons"]:
                table.add_row(
                    str(entry["line"]),
                    entry["source_id"] or "-",
                    reason["field"],
                    reason["code"],
                    reason["message"],
                )
        console.print(table)
    if not report.reconciled:
        raise typer.Exit(1)
