"""``exchange registry ...``: build, rebuild, status, lag, checksum, review and entities."""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.cli.context import CliContext, state
from exchange.cli.model import app as model_app

app = typer.Typer(help="The shared registry: build it, check it, review its links.")
review_app = typer.Typer(help="The review queue: uncertain pairs.", no_args_is_help=True)
entity_app = typer.Typer(help="Entities: one person or organisation.", no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(entity_app, name="entity")
app.add_typer(model_app, name="model")


@app.command("build")
def build(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option(help="Stop once no record has arrived for a few seconds.")
    ] = False,
) -> None:
    """Consume the standard topics into the registry and link them (runs until stopped)."""
    import signal

    from exchange.registry.builder import RegistryBuilder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    cli = state(ctx)
    cfg = cli.settings
    builder = RegistryBuilder(
        cfg.kafka.bootstrap,
        cli.sessions,
        linkage_key=cfg.linkage_key.get_secret_value().encode(),
        keystore=cli.keystore,
        verify_processes=cfg.registry.verify_processes,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if until_idle:
            stats = builder.run_until_idle()
        else:
            cli.console.print(f"registry builder consuming std.* from {cfg.kafka.bootstrap}")
            builder.run(stop)
            stats = builder.stats
    except KeyboardInterrupt:
        stats = builder.stats
    finally:
        builder.close()
    cli.console.print(
        f"applied {stats.applied}, withdrawn {stats.withdrawn}, unchanged {stats.unchanged}, "
        f"dead-lettered {stats.dead_lettered}, linked {stats.linked}"
    )


@app.command("rebuild")
def rebuild_command(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Empty the registry and replay every std.* topic from the beginning; compare checksums.

    The catalogue, the keys and reviewers' decisions are kept; entities keep their ids
    where their members did not change. The registry builder must be stopped first.
    """
    from exchange.registry.rebuild import rebuild

    if not yes:
        typer.confirm("Empty the registry and rebuild it from the topics?", abort=True)
    cli = state(ctx)
    cfg, sessions = cli.settings, cli.sessions
    with Progress(
        TextColumn("[bold]rebuilding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=cli.console,
    ) as progress:
        task = progress.add_task("rebuild", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = rebuild(
            cfg.kafka.bootstrap,
            sessions,
            linkage_key=cfg.linkage_key.get_secret_value().encode(),
            keystore=cli.keystore,
            on_progress=on_progress,
        )
    cli.console.print(
        f"read {report.records_read:,} records in {report.seconds:.1f} s "
        f"({report.dead_lettered:,} dead-lettered); {report.kept_ids:,} entities kept their "
        f"ids, {report.new_ids:,} are new"
    )
    cli.console.print(f"checksum before: {report.before.digest}")
    cli.console.print(f"checksum after:  {report.after.digest}")
    if report.identical:
        cli.console.print("[green]identical: the topics reproduce the registry exactly[/]")
    else:
        cli.console.print(
            "[yellow]different: the registry before had not consumed exactly these records "
            f"(before {report.before.as_dict()}, after {report.after.as_dict()})[/]"
        )


@app.command("checksum")
def checksum(ctx: typer.Context) -> None:
    """Print the registry's content checksum (records, versions, entities, pairs)."""
    from exchange.registry.checksum import registry_checksum

    cli = state(ctx)
    with cli.sessions() as session:
        result = registry_checksum(session)
    cli.console.print(json.dumps(result.as_dict(), indent=2))


@app.command("lag")
def lag(ctx: typer.Context) -> None:
    """The builder's consumer lag on every std.* partition."""
    from exchange.registry.rebuild import consumer_lag

    cli = state(ctx)
    rows = consumer_lag(cli.settings.kafka.bootstrap)
    table = Table("topic", "partition", "committed", "end", "lag", title="registry-builder lag")
    for row in rows:
        committed = "-" if row.committed is None else f"{row.committed:,}"
        table.add_row(row.topic, str(row.partition), committed, f"{row.end:,}", f"{row.lag:,}")
    cli.console.print(table)
    cli.console.print(f"total lag: {sum(r.lag for r in rows):,}")


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Records applied, withdrawn, entities, links, awaiting review, dead letters, lag."""
    from exchange.core.models import Entity, LinkEdge, RecordVersion, SourceRecord
    from exchange.registry.rebuild import consumer_lag, dead_letter_count

    cli = state(ctx)
    with cli.sessions() as session:

        def count(query: Any) -> int:
            return int(session.scalar(query) or 0)

        facts = {
            "records": count(select(func.count()).select_from(SourceRecord)),
            "withdrawn": count(select(func.count()).where(SourceRecord.deleted.is_(True))),
            "versions": count(select(func.count()).select_from(RecordVersion)),
            "entities": count(select(func.count()).select_from(Entity)),
            "linked records": count(
                select(func.count()).where(SourceRecord.entity_id.is_not(None))
            ),
            "links": count(select(func.count()).where(LinkEdge.status.in_(("link", "confirmed")))),
            "awaiting review": count(select(func.count()).where(LinkEdge.status == "review")),
        }
        bootstrap = cli.settings.kafka.bootstrap
    table = Table("", "", title="registry")
    for name, value in facts.items():
        table.add_row(name, f"{value:,}")
    try:
        rows = consumer_lag(bootstrap)
        table.add_row("dead-lettered (dlq.registry)", f"{dead_letter_count(bootstrap):,}")
        table.add_row("consumer lag", f"{sum(r.lag for r in rows):,} over {len(rows)} partitions")
    except Exception as exc:  # the registry's facts are still worth showing
        table.add_row("kafka", f"unreachable: {exc}")
    cli.console.print(table)


def _ref(session: Session, record_id: int) -> str:
    from exchange.core.models import SourceRecord
    from exchange.registry.records import record_ref

    row = session.get(SourceRecord, record_id)
    return "?" if row is None else record_ref(row.dataset, row.department, row.source_id)


def _summary(explanation: dict[str, Any]) -> str:
    parts = [
        f"{f.get('field')} {f.get('level')} {float(f.get('weight', 0)):+.1f}"
        for f in explanation.get("fields", [])
        if f.get("level") != "null"
    ]
    reason = f" ({explanation['reason']})" if explanation.get("reason") else ""
    return f"{explanation.get('total_weight')}{reason}: " + ", ".join(parts)


@review_app.command("list")
def review_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many pairs to show.")] = 50,
) -> None:
    """Pairs awaiting review, highest weight first, with the evidence."""
    from exchange.core.models import LinkEdge, SourceRecord

    cli = state(ctx)
    with cli.sessions() as session:
        edges = session.scalars(
            select(LinkEdge).where(LinkEdge.status == "review").order_by(LinkEdge.weight.desc())
        )
        table = Table("record", "record", "weight", "evidence", title="awaiting review")
        shown = 0
        for e in edges:
            a, b = session.get(SourceRecord, e.a_id), session.get(SourceRecord, e.b_id)
            if a is not None and b is not None and a.entity_id == b.entity_id:
                continue  # other links already made them one entity: nothing to decide
            shown += 1
            if shown > limit:
                break
            table.add_row(
                _ref(session, e.a_id), _ref(session, e.b_id), f"{e.weight:.1f}",
                _summary(e.explanation),
            )  # fmt: skip
    cli.console.print(table)


# The review commands' arguments, declared once for confirm and reject.
RecordA = Annotated[str, typer.Argument(help="A record: dataset/department/source id.")]
RecordB = Annotated[str, typer.Argument(help="The other record.")]
DecidedBy = Annotated[str, typer.Option(help="Who decides (kept with the decision).")]
Reason = Annotated[str | None, typer.Option(help="Why.")]


def _decide(cli: CliContext, a: str, b: str, decision: str, by: str, reason: str | None) -> None:
    from exchange.registry.entities import EntityResolver
    from exchange.registry.modelstore import active_models

    with cli.transaction() as session:
        resolver = EntityResolver(active_models(session))
        entities = resolver.decide(session, a, b, decision, by=by, reason=reason)
    cli.console.print(f"{decision}: {a} ~ {b}; entities now {', '.join(entities) or '-'}")


@review_app.command("confirm")
def review_confirm(
    ctx: typer.Context, a: RecordA, b: RecordB, by: DecidedBy, reason: Reason = None
) -> None:
    """Link two records: they are the same person or organisation."""
    _decide(state(ctx), a, b, "confirmed", by, reason)


@review_app.command("reject")
def review_reject(
    ctx: typer.Context, a: RecordA, b: RecordB, by: DecidedBy, reason: Reason = None
) -> None:
    """Refuse a link: the two records are different people (the entity splits if need be)."""
    _decide(state(ctx), a, b, "rejected", by, reason)


@entity_app.command("split")
def entity_split(
    ctx: typer.Context,
    entity_id: Annotated[str, typer.Argument(help="The entity to split.")],
    refs: Annotated[list[str], typer.Argument(help="Records to take out of it.")],
    by: Annotated[str, typer.Option(help="Who decides.")],
) -> None:
    """Take records out of an entity (every link across the cut is rejected)."""
    from exchange.registry.entities import EntityResolver
    from exchange.registry.modelstore import active_models

    cli = state(ctx)
    with cli.transaction() as session:
        entities = EntityResolver(active_models(session)).split(session, entity_id, refs, by=by)
    cli.console.print(f"split {entity_id}: entities now {', '.join(entities)}")


@entity_app.command("show")
def entity_show(
    ctx: typer.Context, entity_id: Annotated[str, typer.Argument(help="The entity id.")]
) -> None:
    """The golden record, the member records and the links that joined them."""
    from exchange.registry.entityview import entity_view

    cli = state(ctx)
    with cli.sessions() as session:
        view = entity_view(session, entity_id, cli.settings.registry.trusted_departments)
    cli.console.print(json.dumps(view, indent=2, ensure_ascii=False))
