"""``exchange registry ...``: build, rebuild, status, lag, checksum, review and entities."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import func, select

from exchange.cli.context import CliContext, audit_operator, state
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

    from exchange.core import logs
    from exchange.registry.builder import RegistryBuilder
    from exchange.registry.metrics import BuilderMetrics, Endpoint, serve

    cli = state(ctx)
    cfg = cli.settings
    logs.configure(cfg.log)
    builder = RegistryBuilder(
        cfg.kafka.bootstrap,
        cli.sessions,
        linkage_key=cfg.linkage_key.get_secret_value().encode(),
        keystore=cli.keystore,
        verify_processes=cfg.registry.verify_processes,
        manifest_window=cfg.registry.manifest_window,
    )
    metrics = BuilderMetrics(builder, cli.sessions)  # and the log of each batch applied
    endpoint: Endpoint | None = None
    if cfg.registry.metrics_port is not None:
        endpoint = serve(metrics, cfg.registry.metrics_host, cfg.registry.metrics_port)
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
        if endpoint is not None:
            endpoint.close()
        builder.close()
    cli.console.print(
        f"applied {stats.applied}, withdrawn {stats.withdrawn}, unchanged {stats.unchanged}, "
        f"dead-lettered {stats.dead_lettered}, linked {stats.linked}, "
        f"batch manifests verified {stats.manifests}"
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
    from exchange.registry.review import awaiting_review_count

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
            "awaiting review": awaiting_review_count(session),
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
    """Pairs awaiting review, highest weight first, with the evidence.

    A pair awaits review while both its records are live and in different entities: the
    count ``registry status`` gives (see docs/linkage.md, "The review queue")."""
    from exchange.registry.review import awaiting_review, awaiting_review_count

    cli = state(ctx)
    with cli.sessions() as session:
        total = awaiting_review_count(session)
        pairs = awaiting_review(session, limit)
    table = Table(
        "record", "record", "weight", "evidence",
        title=f"awaiting review: {total:,} pair{'s' if total != 1 else ''}"
        + (f", the first {len(pairs):,} shown" if len(pairs) < total else ""),
    )  # fmt: skip
    for pair in pairs:
        table.add_row(pair.a, pair.b, f"{pair.weight:.1f}", _summary(pair.explanation))
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


@entity_app.command("find")
def entity_find(
    ctx: typer.Context,
    resident_id: Annotated[
        str | None,
        typer.Option(
            "--resident-id",
            help="A resident identity number (searched by its blind index; never printed). "
            "Typed at the prompt when given as '-', so that it stays out of the shell history.",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="A department's source record: DEPARTMENT:SOURCE_ID."),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="With --source: only this dataset's record.")
    ] = None,
    uscc: Annotated[
        str | None, typer.Option(help="An organisation's unified social credit code.")
    ] = None,
) -> None:
    """The entities a resident identity number, a credit code or a source record belongs to.

    Prints one line an entity: its id, kind, how many live records of which datasets,
    from which departments, and the records the search matched. Nothing found is an
    error (exit status 2)."""
    from exchange.registry import finder

    given = [o for o, v in (("--resident-id", resident_id), ("--source", source),
                            ("--uscc", uscc)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise typer.BadParameter("give exactly one of --resident-id, --source and --uscc")
    if dataset is not None and source is None:
        raise typer.BadParameter("--dataset narrows --source only")
    cli = state(ctx)
    key = cli.settings.linkage_key.get_secret_value().encode()
    with cli.sessions() as session:
        if resident_id is not None:
            number = typer.prompt("resident identity number", hide_input=True) if (
                resident_id == "-"
            ) else resident_id  # fmt: skip
            found = finder.by_person(session, key, number)
        elif uscc is not None:
            found = finder.by_organisation(session, key, uscc)
        else:
            department, sep, source_id = (source or "").partition(":")
            if not sep or not department or not source_id:
                raise typer.BadParameter("--source is DEPARTMENT:SOURCE_ID")
            found = finder.by_source(session, department, source_id, dataset)
    subjects = [finder.person_key(key, number)] if resident_id is not None else []
    how = "resident id" if resident_id is not None else "credit code" if uscc else "source record"
    _audit_read(
        cli,
        "registry.entity.find",
        f"operator's find by {how}: {len(found)} entities",
        [*subjects, *(f.entity_id for f in found if f.entity_id)],
    )
    for item in found:
        cli.console.print(item.summary(), soft_wrap=True)


@entity_app.command("show")
def entity_show(
    ctx: typer.Context,
    entity_id: Annotated[str, typer.Argument(help="The entity id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    unmask: Annotated[
        bool,
        typer.Option(
            "--unmask",
            help="Administrators: show personal fields (names, birth date, phone) as stored "
            "instead of masked. Sensitive fields (the identity number) stay encrypted.",
        ),
    ] = False,
) -> None:
    """The golden record, the member records and the links that joined them.

    No internal field is shown (blind indexes, content hashes, row ids, ciphertexts) and
    personal values are masked as their standard says, unless --unmask."""
    from exchange.registry.entityview import entity_view
    from exchange.registry.operatorview import operator_view

    cli = state(ctx)
    registry = cli.settings.registry
    with cli.sessions() as session:
        view = entity_view(
            session, entity_id, registry.trusted_departments, registry.authoritative_departments
        )
    shown = operator_view(view, unmask=unmask)
    _audit_read(
        cli,
        "registry.entity.show",
        f"operator's entity view, {len(shown['records'])} records, "
        + ("personal fields unmasked" if unmask else "masked"),
        [entity_id, *_member_subjects(view)],
        sorted({f"{r['dataset']}.{name}" for r in shown["records"] for name in r["fields"]})
        if unmask
        else [],
    )
    if as_json:
        cli.console.print(json.dumps(shown, indent=2, ensure_ascii=False), soft_wrap=True)
        return
    for table in _entity_tables(shown):
        cli.console.print(table)


def _audit_read(
    cli: CliContext, action: str, reason: str, subjects: list[str], fields: Sequence[str] = ()
) -> None:
    """Record an operator's read of the registry in the audit log, as the gateway records a
    caseworker's: the data subjects by blind index or entity id, never an identity number."""
    with cli.transaction() as session:
        audit_operator(session, action, reason, dataset="entity", subjects=subjects, fields=fields)


def _member_subjects(view: dict[str, Any]) -> list[str]:
    """Whom an entity's records are about: the blind indexes they hold, else their refs."""
    out: list[str] = []
    for r in view["records"]:
        held = [v for k, v in r["fields"].items() if k.endswith("_bidx") and isinstance(v, str)]
        out.extend(held or [r["ref"]])
    return out


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _entity_tables(shown: dict[str, Any]) -> list[Table]:
    """The golden record, the member records and the links, as three tables."""
    flags = f" [bold red]conflict: {', '.join(shown['flags'])}[/]" if shown["flags"] else ""
    masked = " (masked)" if shown["masked"] else ""
    golden = Table(
        "field", "value", "source", "rule", "conflict",
        title=f"{shown['entity']} {shown['kind']}: golden record{masked}{flags}",
    )  # fmt: skip
    for name, chosen in shown["golden_record"].items():
        groups = chosen.get("conflict") or []
        conflict = " | ".join(", ".join(group) for group in groups)
        golden.add_row(
            name, _text(chosen["value"]), _text(chosen["source"]), chosen["rule"], conflict
        )
    records = Table(
        "record", "dataset", "department", "source id", "version", "updated", "joined",
        title=f"{len(shown['records'])} member records",
    )  # fmt: skip
    for r in shown["records"]:
        records.add_row(
            r["ref"], r["dataset"], r["department"], r["source_id"], _text(r["version"]),
            _text(r["updated_at"])[:19], r["joined"],
        )  # fmt: skip
    links = Table("record", "record", "decision", "weight", "by", "evidence", title="links")
    for ln in shown["links"]:
        links.add_row(
            ln["a"], ln["b"], ln["status"], f"{float(ln['weight']):.1f}",
            _text(ln["decided_by"]), _summary(ln["explanation"]),
        )  # fmt: skip
    return [golden, records, links]
