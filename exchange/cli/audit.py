"""``exchange audit ...``: verify the log, sign and show tree heads, search, export,
prove, and review anomalies, from the command line (on the database of the settings)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from exchange.audit import anomalies, heads, proofs, search
from exchange.audit.verify import check
from exchange.cli.context import state
from exchange.core.config import Settings
from exchange.core.errors import ConfigError, TreeHeadNotFoundError
from exchange.security import crypto, merkle

app = typer.Typer(help="The audit log: verify, tree heads, search, export, proofs.")


def _pinned_keys(path: Path | None) -> dict[str, bytes] | None:
    if path is None:
        return None
    try:
        pem = path.read_text(encoding="ascii")
        raw = crypto.public_key_from_pem(pem)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read an Ed25519 public key from {path}: {exc}") from exc
    key_id = _key_id(pem)
    if key_id is None:
        raise ConfigError(
            f"{path} has no '# key id: ...' line; export the key with `exchange audit public-key`"
        )
    return {key_id: raw}


def _key_id(pem: str) -> str | None:
    """The key id written above the PEM by ``exchange audit public-key`` (``# key id: ...``)."""
    for line in pem.splitlines():
        if line.startswith("# key id:"):
            return line.split(":", 1)[1].strip()
    return None


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The audit log's public key as exported by `exchange audit public-key` "
            "(pinned: not read from the database being verified).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes that read and hash a large log. Default: one a core."),
    ] = None,
) -> None:
    """Recompute the Merkle tree from storage and check every signed head.

    Exit 0 if intact; exit 1 naming the first bad entry index (0-based) otherwise."""
    keys = _pinned_keys(public_key)
    cli = state(ctx)
    with cli.sessions() as session:

        def progress(done: int, total: int) -> None:
            cli.err_console.print(f"  checked {done:,} of {total:,} entries", end="\r")

        report = check(session, public_keys=keys, progress=progress, workers=workers)
    cli.err_console.print(" " * 60, end="\r")
    if report.problem is None:
        cli.console.print(
            f"audit log intact: {report.size:,} entries, {report.heads_checked} signed tree "
            f"heads verified (public key: {report.keys_from})"
        )
        for warning in report.warnings:
            cli.console.print(f"note: {warning}")
        return
    problem = report.problem
    where = (
        f"first bad entry: index {problem.index} (seq {problem.seq})"
        if problem.index is not None
        else "a signed tree head is bad"
    )
    cli.err_console.print(f"[red]audit log broken[/]: {where}; found by {problem.localised_by}")
    cli.err_console.print(problem.message, markup=False)
    raise typer.Exit(1)


@app.command("head")
def head_cmd(
    ctx: typer.Context,
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign a new head over every entry now.")
    ] = False,
) -> None:
    """Print the latest signed tree head (as JSON), signing a new one first with --sign."""
    cli = state(ctx)
    if sign:
        head = heads.sign(cli.sessions, cli.keystore)
    else:
        with cli.sessions() as session:
            head = heads.latest(session)
    if head is None:
        raise TreeHeadNotFoundError(
            "no signed tree head yet" + ("" if sign else " (sign one with --sign)")
        )
    cli.console.print_json(json.dumps(head.as_dict()))


def _person_subject(person: str, cfg: Settings) -> str:
    from exchange.security.blindindex import blind_index
    from schemas.validators import normalise_resident_id

    key = cfg.linkage_key.get_secret_value().encode()
    return blind_index(key, "cn.resident_id", normalise_resident_id(person))


def _filters(
    actor: str | None,
    subject: str | None,
    person: str | None,
    dataset: str | None,
    purpose: str | None,
    decision: str | None,
    since: datetime | None,
    until: datetime | None,
    cfg: Settings,
    key_id: str | None = None,
) -> search.Filters:
    if person is not None:
        subject = _person_subject(person, cfg)
    return search.Filters(actor, subject, dataset, purpose, decision, since, until, key_id)


Actor = Annotated[str | None, typer.Option(help="Who acted (the API key's actor).")]
Subject = Annotated[str | None, typer.Option(help="A data subject's blind index.")]
Person = Annotated[
    str | None, typer.Option(help="A resident id; searched by its blind index, never stored.")
]
Dataset = Annotated[str | None, typer.Option(help="Dataset, e.g. person.")]
KeyId = Annotated[
    str | None, typer.Option("--key-id", help="The API key id presented (refused ones too).")
]
Purpose = Annotated[str | None, typer.Option(help="Stated purpose.")]
DecisionOpt = Annotated[str | None, typer.Option(help="allow or deny.")]
Since = Annotated[datetime | None, typer.Option(help="From (inclusive; UTC if no zone).")]
Until = Annotated[datetime | None, typer.Option(help="Until (exclusive; UTC if no zone).")]


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    actor: Actor = None,
    subject: Subject = None,
    person: Person = None,
    dataset: Dataset = None,
    purpose: Purpose = None,
    decision: DecisionOpt = None,
    since: Since = None,
    until: Until = None,
    key_id: KeyId = None,
    after: Annotated[int, typer.Option(help="Only entries with seq > AFTER.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 50,
) -> None:
    """Search the log; one row per entry, in log order."""
    cli = state(ctx)
    with cli.sessions() as session:
        filters = _filters(
            actor, subject, person, dataset, purpose, decision, since, until, cli.settings, key_id
        )
        entries = search.search(session, filters, after=after, limit=limit)
    table = Table("index", "at (UTC)", "actor", "role", "action", "purpose", "case", "decision")
    for e in entries:
        table.add_row(
            str(e.seq - 1),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor or "-",
            e.role or "-",
            e.action,
            e.purpose or "-",
            e.case_ref or "-",
            f"{e.decision} {e.status}",
        )
    cli.console.print(table)
    if len(entries) == limit:
        cli.console.print(f"more: --after {entries[-1].seq}")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default stdout).")
    ] = None,
    actor: Actor = None,
    subject: Subject = None,
    person: Person = None,
    dataset: Dataset = None,
    purpose: Purpose = None,
    decision: DecisionOpt = None,
    since: Since = None,
    until: Until = None,
) -> None:
    """Export matching entries as CSV or JSON Lines."""
    cli = state(ctx)
    with cli.sessions() as session:
        filters = _filters(
            actor, subject, person, dataset, purpose, decision, since, until, cli.settings
        )
        chunks = search.export(search.iter_entries(session, filters), format)
        if output is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            cli.err_console.print(f"written to {output}")


@app.command("prove")
def prove_cmd(
    ctx: typer.Context,
    index: Annotated[int, typer.Argument(help="Entry index (0-based; seq - 1).")],
    tree_size: Annotated[
        int | None, typer.Option(help="A signed head's tree size (default: the latest).")
    ] = None,
) -> None:
    """Print the inclusion proof of entry INDEX in a signed tree head, checked first."""
    cli = state(ctx)
    with cli.sessions() as session:
        proof = proofs.inclusion(session, index, tree_size)
    merkle.verify_inclusion(
        bytes.fromhex(proof.leaf_hash),
        proof.index,
        proof.head.tree_size,
        [bytes.fromhex(p) for p in proof.path],
        bytes.fromhex(proof.head.root),
    )
    body = {
        "index": proof.index,
        "leaf_hash": proof.leaf_hash,
        "entry": proof.entry,
        "path": proof.path,
        "head": proof.head.as_dict(),
    }
    cli.console.print_json(json.dumps(body, ensure_ascii=False))


@app.command("consistency")
def consistency_cmd(
    ctx: typer.Context,
    first: Annotated[int, typer.Argument(help="The older signed head's tree size.")],
    second: Annotated[int, typer.Argument(help="The newer signed head's tree size.")],
) -> None:
    """Print the consistency proof between two signed tree heads, checked first."""
    cli = state(ctx)
    with cli.sessions() as session:
        proof = proofs.consistency(session, first, second)
    merkle.verify_consistency(
        first,
        second,
        bytes.fromhex(proof.first.root),
        bytes.fromhex(proof.second.root),
        [bytes.fromhex(p) for p in proof.path],
    )
    body = {"first": proof.first.as_dict(), "second": proof.second.as_dict(), "path": proof.path}
    cli.console.print_json(json.dumps(body))


@app.command("anomalies")
def anomalies_cmd(
    ctx: typer.Context,
    since: Annotated[datetime | None, typer.Option(help="Default: 30 days ago.")] = None,
    until: Annotated[datetime | None, typer.Option(help="Default: now.")] = None,
) -> None:
    """List anomaly flags: volume, off-hours, denial bursts, no case reference."""
    window = search.Filters(since=since, until=until)
    cli = state(ctx)
    with cli.sessions() as session:
        found = anomalies.scan(session, cli.settings.audit, since=window.since, until=window.until)
    table = Table("kind", "actor", "from (UTC)", "to (UTC)", "count", "detail")
    for a in found:
        table.add_row(
            a.kind,
            a.actor,
            a.start.strftime("%Y-%m-%d %H:%M"),
            a.end.strftime("%Y-%m-%d %H:%M"),
            str(a.count),
            a.detail,
        )
    cli.console.print(table)
    cli.console.print(f"{len(found)} flag(s)")


@app.command("public-key")
def public_key_cmd(ctx: typer.Context) -> None:
    """Print the audit log's current public key (PEM, with its key id) for auditors to pin.

    Creates the key if the log has none yet."""
    keystore = state(ctx).keystore
    key_id, _ = keystore.signing_key(heads.SIGNER)
    public = keystore.public_keys(heads.SIGNER)[key_id]
    sys.stdout.write(f"# key id: {key_id}\n{crypto.public_key_pem(public)}")


@app.command("rotate-key")
def rotate_key_cmd(ctx: typer.Context) -> None:
    """Make a new signing key for tree heads; heads signed before keep verifying with the
    retired public key. Prints the new public key (PEM) for the auditors to pin."""
    keystore = state(ctx).keystore
    key_id = keystore.rotate_signing_key(heads.SIGNER)
    public = keystore.public_keys(heads.SIGNER)[key_id]
    sys.stdout.write(f"# key id: {key_id}\n{crypto.public_key_pem(public)}")


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    person: Annotated[
        str, typer.Option(help="The person's resident id (never written into the report).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")],
) -> None:
    """A citizen's access report: who accessed the person's records, when, from which
    department, for which purpose, with each entry's inclusion proof in the latest signed
    tree head; a printable, self-contained HTML page."""
    from exchange.audit import report
    from exchange.core.db import utcnow

    cli = state(ctx)
    subject = _person_subject(person, cli.settings)
    label = "the person whose identity number ends in " + person.strip()[-4:]
    with cli.sessions() as session:
        built = report.build(session, subject, label=label, generated_at=utcnow())
    output.write_text(report.render(built), encoding="utf-8")
    unsigned = sum(1 for line in built.lines if line.path is None)
    cli.console.print(
        f"{len(built.lines)} accesses written to {output}"
        + (f"; {unsigned} not yet in a signed head" if unsigned else "")
    )
