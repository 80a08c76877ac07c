"""``exchange registry model ...``: fit, list, show and choose the linkage models.

A fit stores a new version, not active; ``use`` makes a version active and relinks
every live record of its kind with it (:mod:`exchange.registry.relink`). Fits and
switches are written to the audit log (actions ``registry.model.fit`` and
``registry.model.use``) with who, the kind and the versions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.cli.context import CliContext, audit_operator, cli_actor, state
from exchange.core.errors import ModelFitError

if TYPE_CHECKING:
    from exchange.registry.linkage.features import LinkRecord
    from exchange.registry.linkage.model import Model

app = typer.Typer(
    help="Linkage models: fit one to the registry, inspect it, choose the one that links.",
    no_args_is_help=True,
)

MIN_RECORDS = 50  # fewer records than this say too little to fit a model on
DEFAULT_SAMPLE = 200_000
BAR_WIDTH = 16  # characters each side of the axis in `model show`'s chart
_READ_CHUNK = 900

Kind = Annotated[
    str, typer.Option(help="The kind of record: person or organisation.", case_sensitive=False)
]


def _kind(kind: str) -> str:
    from exchange.registry.modelstore import KINDS

    kind = kind.lower()
    if kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of: {', '.join(KINDS)}", param_hint="--kind")
    return kind


def _audit(session: Session, action: str, actor: str, kind: str, reason: str) -> None:
    audit_operator(session, action, reason, actor=actor, dataset=kind)


def _progress(cli: CliContext, what: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=cli.err_console,
    )


def sample_records(
    cli: CliContext, session: Session, kind: str, sample: int, seed: int
) -> tuple[list[LinkRecord], int]:
    """Up to ``sample`` live records of ``kind``, taken a whole entity at a time (so that
    one person's records stay together), and how many live records were considered."""
    from exchange.core.models import SourceRecord
    from exchange.registry.entities import link_record
    from exchange.registry.records import record_ref

    t = SourceRecord
    groups: dict[str, list[int]] = defaultdict(list)
    for rid, entity_id in session.execute(
        select(t.id, t.entity_id).where(t.deleted.is_(False)).order_by(t.id)
    ):
        groups[entity_id or f"#{rid}"].append(rid)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    total = sum(len(v) for v in groups.values())
    records: list[LinkRecord] = []
    with _progress(cli, f"reading {kind} records") as progress:
        task = progress.add_task("read", total=total)
        pending: list[int] = []

        def read(ids: list[int]) -> None:
            for r in session.execute(
                select(t.id, t.dataset, t.department, t.source_id, t.payload, t.updated_at).where(
                    t.id.in_(ids)
                )
            ):
                ref = record_ref(r.dataset, r.department, r.source_id)
                rec = link_record(r.dataset, ref, r.department, r.payload, r.updated_at)
                # Only records with compared fields: identifier-only datasets (payments)
                # tell nothing about names or dates.
                if rec is not None and rec.kind == kind and r.dataset == kind:
                    records.append(rec)
            progress.advance(task, len(ids))

        for key in order:
            if len(records) + len(pending) >= sample:
                break
            pending.extend(groups[key])
            if len(pending) >= _READ_CHUNK:
                read(pending)
                pending = []
        if pending:
            read(pending)
    return records, total


@app.command("fit")
def fit(
    ctx: typer.Context,
    kind: Kind = "person",
    sample: Annotated[
        int, typer.Option(min=2, help="At most this many records, taken a whole entity at a time.")
    ] = DEFAULT_SAMPLE,
    seed: Annotated[int, typer.Option(help="Seed of the sample and the estimator.")] = 0,
    by: Annotated[str | None, typer.Option(help="Who fits (default: your login).")] = None,
    description: Annotated[str | None, typer.Option(help="A note kept with the model.")] = None,
) -> None:
    """Fit a model to the registry's live records; store it as a new version, not active."""
    from exchange.registry import modelstore
    from exchange.registry.linkage.training import fit_unsupervised

    kind = _kind(kind)
    cli = state(ctx)
    with cli.sessions() as session:
        records, _ = sample_records(cli, session, kind, sample, seed)
    if not records:
        raise ModelFitError(f"no live {kind} records in the registry to fit a model to")
    if len(records) < MIN_RECORDS:
        raise ModelFitError(
            f"only {len(records)} live {kind} records: a fit needs at least {MIN_RECORDS}"
        )
    cli.err_console.print(f"fitting a {kind} model to {len(records):,} records (seed {seed})")
    try:
        model = fit_unsupervised(records, kind, seed=seed)
    except (ValueError, ArithmeticError) as exc:
        raise ModelFitError(f"the fit failed: {exc}") from exc
    actor = by or cli_actor()
    with cli.transaction() as session:
        version = modelstore.add(session, model, created_by=actor, description=description or "")
        _audit(
            session,
            "registry.model.fit",
            actor,
            kind,
            f"linkage model {kind}: version {version} fitted to {len(records)} records "
            "(not active)",
        )
    cli.console.print(f"stored {kind} model version {version} (not active)")
    cli.console.print(_summary(model))
    cli.console.print(
        f"inspect it: exchange registry model show {version} --kind {kind}; "
        f"use it: exchange registry model use {version} --kind {kind} --by NAME"
    )


@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A model's JSON (as `model show --json` prints).")],
    by: Annotated[str | None, typer.Option(help="Who adds it (default: your login).")] = None,
    description: Annotated[str | None, typer.Option(help="A note kept with the model.")] = None,
) -> None:
    """Store a model from its JSON (e.g. one with edited thresholds) as a new version."""
    from exchange.core.errors import LinkageModelError
    from exchange.registry import modelstore
    from exchange.registry.linkage.model import Model

    try:
        model = Model.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="PATH") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkageModelError(f"{path} is not a usable linkage model: {exc}") from exc
    cli = state(ctx)
    actor = by or cli_actor()
    with cli.transaction() as session:
        version = modelstore.add(session, model, created_by=actor, description=description or "")
        _audit(
            session,
            "registry.model.add",
            actor,
            model.kind,
            f"linkage model {model.kind}: version {version} added from a file (not active)",
        )
    cli.console.print(f"stored {model.kind} model version {version} (not active)")
    cli.console.print(_summary(model))


def _summary(model: Model) -> str:
    guard = ", sibling guard on" if model.sibling_guard else ""
    return (
        f"thresholds link {model.link:g}, review {model.review:g}; prior {model.prior:.4g}"
        f"{guard}; {model.source}"
    )


@app.command("list")
def list_versions(ctx: typer.Context, kind: Kind = "person") -> None:
    """Every version of a kind's model (0 is the shipped one); the active one is marked."""
    from exchange.registry import modelstore

    kind = _kind(kind)
    cli = state(ctx)
    with cli.sessions() as session:
        found = modelstore.versions(session, kind)
    table = Table("version", "active", "link", "review", "created", "by", "description",
                  title=f"{kind} linkage models")  # fmt: skip
    for v in found:
        created = "shipped" if v.created_at is None else f"{v.created_at:%Y-%m-%d %H:%M} UTC"
        link = "-" if v.model is None else f"{v.model.link:g}"
        review = "-" if v.model is None else f"{v.model.review:g}"
        note = v.description or (v.model.source if v.model is not None else "")
        if v.problem is not None:
            note = f"unusable: {v.problem}"
        table.add_row(
            str(v.version), "*" if v.active else "", link, review, created, v.created_by or "-",
            note,
        )  # fmt: skip
    cli.console.print(table)


def weight_bar(weight: float, scale: float, width: int = BAR_WIDTH) -> Text:
    """A bar for ``weight`` on an axis in the middle: left (red) for evidence against,
    right (green) for evidence for; ``scale`` is the largest absolute weight shown."""
    cells = 0 if scale <= 0 else round(min(abs(weight), scale) / scale * width)
    bar = Text()
    if weight < 0:
        bar.append(" " * (width - cells))
        bar.append("█" * cells, style="red")
        bar.append("│")
        bar.append(" " * width)
    else:
        bar.append(" " * width)
        bar.append("│")
        bar.append("█" * cells, style="green")
        bar.append(" " * (width - cells))
    return bar


@app.command("show")
def show(
    ctx: typer.Context,
    version: Annotated[
        int | None, typer.Argument(help="The version (default: the active one; 0: shipped).")
    ] = None,
    kind: Kind = "person",
    as_json: Annotated[bool, typer.Option("--json", help="Print the model's JSON.")] = False,
) -> None:
    """A model's parameters and, per field and level, m, u and the match weight as a chart."""
    from exchange.core.errors import LinkageModelError
    from exchange.registry import modelstore

    kind = _kind(kind)
    cli = state(ctx)
    with cli.sessions() as session:
        info = modelstore.version_info(session, kind, version)
    if info.model is None:
        raise LinkageModelError(info.problem or f"{kind} model version {info.version} is unusable")
    model = info.model
    if as_json:
        typer.echo(model.to_json())
        return
    head = Table.grid(padding=(0, 2))
    head.add_row("model", f"{kind} version {info.version}" + (" (active)" if info.active else ""))
    head.add_row("source", model.source or "-")
    if info.description and info.description != model.source:
        head.add_row("description", info.description)
    if info.created_at is None:
        head.add_row("created", "shipped with the exchange")
    else:
        head.add_row("created", f"{info.created_at:%Y-%m-%d %H:%M} UTC by {info.created_by}")
    head.add_row("thresholds", f"link {model.link:g}, review {model.review:g}")
    head.add_row("prior", f"{model.prior:.4g} (share of matches among candidate pairs)")
    head.add_row("sibling guard", "on" if model.sibling_guard else "off")
    cli.console.print(head)
    scale = max((abs(w) for f in model.fields for w in f.weights[1:]), default=1.0)
    table = Table(
        "field", "level", "m", "u", "weight",
        title=f"{kind} model version {info.version}: evidence per field and level",
        caption=f"bars: the match weight log2(m/u); a full bar is {scale:.1f}",
    )  # fmt: skip
    table.add_column("against ← │ → for", no_wrap=True, min_width=2 * BAR_WIDTH + 1)
    for f in model.fields:
        for i, level in enumerate(f.levels[1:], start=1):
            weight = f.weights[i]
            table.add_row(
                f.name if i == 1 else "", level, f"{f.m[i]:.4g}", f"{f.u[i]:.4g}",
                f"{weight:+.1f}", weight_bar(weight, scale),
            )  # fmt: skip
        table.add_section()
    cli.console.print(table)


@app.command("use")
def use(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The version to link with (0: shipped).")],
    by: Annotated[str, typer.Option(help="Who decides (kept in the audit log).")],
    kind: Kind = "person",
    batch: Annotated[int, typer.Option(min=1, help="Records relinked per transaction.")] = 2_000,
) -> None:
    """Make a version active, and relink every live record of its kind with it.

    Entities whose members do not change keep their ids; reviewers' decisions stand.
    Running it again for the active version relinks again (after an interruption)."""
    from exchange.registry import modelstore
    from exchange.registry.relink import relink

    kind = _kind(kind)
    cli = state(ctx)
    with cli.transaction() as session:
        before = modelstore.activate(session, kind, version, by=by)
        _audit(
            session,
            "registry.model.use",
            by,
            kind,
            f"linkage model {kind}: version {before} -> {version}",
        )
        models = modelstore.active_models(session)
    cli.console.print(f"{kind} links with model version {version} (was {before}); relinking")
    with _progress(cli, f"relinking {kind} records") as progress:
        task = progress.add_task("relink", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = relink(cli.sessions, kind, models, batch=batch, on_progress=on_progress)
    cli.console.print(
        f"relinked {report.records:,} {kind} records: {report.entities_before:,} entities "
        f"before, {report.entities_after:,} after; {report.kept_ids:,} kept their ids; "
        f"{report.moved_records:,} records changed entity"
    )
