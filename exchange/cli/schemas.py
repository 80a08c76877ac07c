"""``exchange schemas ...``: the standards and the schema registry from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from exchange.cli.context import state
from exchange.core.errors import ConfigError, SubjectNotFoundError
from schemas.importer import SourceRegistry, SourceVersion, import_versions, read_source
from schemas.standards import Standard, available, load_standard, standard_from_schema
from schemas.store import SchemaStore, incompatibility_error

app = typer.Typer(help="The common data standards and the schema registry.", no_args_is_help=True)


def _store(ctx: typer.Context) -> SchemaStore:
    return SchemaStore(state(ctx).sessions)


def _read_file(path: Path) -> Standard:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return standard_from_schema(schema)
    except Exception as exc:  # fastavro raises several kinds for a bad schema
        raise ConfigError(f"{path} is not a valid Avro schema: {exc}") from exc


@app.command("list")
def list_standards(ctx: typer.Context) -> None:
    """The shipped standards, their topics, and their versions in the registry."""
    console = state(ctx).console
    store = _store(ctx)
    table = Table("standard", "record", "topic", "fields", "identifiers", "registered versions")
    for name in available():
        std = load_standard(name)
        try:
            versions = ", ".join(str(v) for v in store.versions(std.subject))
        except SubjectNotFoundError:
            versions = "-"
        ids = ", ".join(f.name for f in std.identifier_fields) or "-"
        table.add_row(name, std.name, std.topic, str(len(std.fields)), ids, versions)
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="A standard, e.g. person.")]
) -> None:
    """A standard's fields with their type, sensitivity, identifier role and validator."""
    console = state(ctx).console
    std = load_standard(name)
    console.print(f"[bold]{std.name}[/] ({std.schema.get('namespace')}): {std.schema.get('doc')}")
    console.print(f"topic {std.topic}, registry subject {std.subject}")
    table = Table("field", "type", "sensitivity", "identifier", "validator", "required", "doc")
    for f in std.fields:
        table.add_row(
            f.name,
            json.dumps(f.avro_type, ensure_ascii=False),
            f.sensitivity.value,
            "yes" if f.identifier else "",
            f.validator or "",
            "yes" if f.required else "",
            f.doc,
        )
    console.print(table)


@app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A new version of a standard (.avsc).")],
    subject: Annotated[str | None, typer.Option(help="Default: std.<dataset>.v<N>-value.")] = None,
) -> None:
    """Would FILE be accepted as the next version? Says why not, field by field."""
    console = state(ctx).console
    std = _read_file(file)
    target = subject or std.subject
    store = _store(ctx)
    level = store.get_config(target, default_to_global=True)
    try:
        store.versions(target, include_deleted=True)
    except SubjectNotFoundError:
        console.print(
            f"[green]compatible[/]: {target} has no versions yet; this would be version 1"
        )
        return
    problems = store.check(target, std.schema)  # exactly as registering it would
    if not problems:
        console.print(f"[green]compatible[/] with {target} at level {level}")
        return
    console.print(f"[red]incompatible[/] with {target} at level {level}:")
    for line in incompatibility_error(problems).details:
        console.print(f"  - {line}", markup=False)
    raise typer.Exit(1)


@app.command("register")
def register(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None, typer.Argument(help="Schemas to register. Default: every standard.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Only with one FILE.")] = None,
) -> None:
    """Register standards in the registry (idempotent); refuses incompatible versions."""
    if subject and (not files or len(files) != 1):
        raise ConfigError("--subject needs exactly one FILE")
    standards = [_read_file(f) for f in files] if files else [load_standard(n) for n in available()]
    console = state(ctx).console
    store = _store(ctx)
    for std in standards:
        target = subject or std.subject
        schema_id = store.register(target, std.schema)
        version = store.lookup(target, std.schema).version
        console.print(f"{target}: schema id {schema_id}, version {version}")


@app.command("shared-ids")
def shared_ids(ctx: typer.Context) -> None:
    """Schema ids registered under more than one subject: check what each subject meant.

    Before ids were given by the whole schema, schemas that differed only in a logical
    type, its precision or scale, a default or an alias shared one id and the first
    text registered; readers decoded every subject's records with that text.
    """
    console = state(ctx).console
    shared = _store(ctx).shared_ids()
    if not shared:
        console.print("no schema id is registered under more than one subject")
        return
    table = Table("schema id", "subjects")
    for schema_id, subjects in shared.items():
        table.add_row(str(schema_id), ", ".join(subjects))
    console.print(table)


@app.command("import")
def import_registry(
    ctx: typer.Context,
    source_url: Annotated[
        str,
        typer.Option(
            "--from",
            help="The source registry's URL, e.g. http://registry:8081 or "
            "https://exchange.example/registry.",
        ),
    ],
    user_info: Annotated[
        str | None,
        typer.Option(
            envvar="SOURCE_REGISTRY_USER_INFO",
            help="USER:PASSWORD for the source's Basic auth (for an exchange: any:<api key>). "
            "Prefer the environment variable: a command line is visible to other users.",
            show_default=False,
        ),
    ] = None,
    subject_prefix: Annotated[str, typer.Option(help="Only subjects starting with this.")] = "",
    include_deleted: Annotated[
        bool, typer.Option(help="Also soft-deleted versions (imported, then soft-deleted).")
    ] = True,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be imported.")] = False,
) -> None:
    """Copy subjects, versions and schema ids from a Confluent-compatible registry.

    Records on a topic carry their writer's schema id, so ids and version numbers are
    kept (IMPORT mode). Safe to run again. Exits 1 if any version was refused (its id
    stands for a different schema here, or its subject is READONLY).
    """
    console = state(ctx).console
    source = SourceRegistry(source_url, user_info)
    try:
        versions = read_source(
            source, subject_prefix=subject_prefix, include_deleted=include_deleted
        )
    finally:
        source.close()
    subjects = {v.subject for v in versions}
    console.print(f"{source.url}: {len(versions)} versions of {len(subjects)} subjects")
    if dry_run:
        table = Table("subject", "version", "id", "references", "deleted")
        for v in versions:
            refs = ", ".join(f"{r.name} ({r.subject} v{r.version})" for r in v.references)
            table.add_row(v.subject, str(v.version), str(v.schema_id), refs, "yes" * v.deleted)
        console.print(table)
        return

    def progress(v: SourceVersion, outcome: str) -> None:
        colour = "red" if outcome.startswith("refused") else "green"
        console.print(
            f"  {escape(v.subject)} v{v.version} (id {v.schema_id}): "
            f"[{colour}]{escape(outcome)}[/]",
            highlight=False,
        )

    report = import_versions(_store(ctx), versions, progress)
    console.print(
        f"imported {len(report.imported)}, already here {len(report.present)}, "
        f"refused {len(report.refused)}"
    )
    if report.refused:
        raise typer.Exit(1)


__all__ = ["app"]
