"""Copying a Confluent-compatible registry's subjects into ours, keeping ids and versions.

For a department that already runs a schema registry (Confluent's, or another
exchange's): its producers' records carry its schema ids, so the ids must survive
the move. :func:`read_source` reads every subject, version, id, schema and reference
over Confluent's REST API (soft-deleted versions too, since records written with
them may still be on a topic); :func:`import_versions` registers them here in
IMPORT mode, each subject switched to IMPORT for the copy and back afterwards,
referenced versions before the versions that reference them. Re-running it is
safe: what is here already is counted, not copied twice. A version that cannot be
imported (its id stands for a different schema here, or its subject is READONLY)
is reported with the reason and the others go on.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from exchange.core.errors import (
    ConfigError,
    ModeNotFoundError,
    RegistryError,
    SchemaNotFoundError,
)
from schemas.references import Reference, parse_references
from schemas.store import SchemaStore

ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"


@dataclass(frozen=True)
class SourceVersion:
    """One version of a subject in the source registry."""

    subject: str
    version: int
    schema_id: int
    schema: str
    references: tuple[Reference, ...]
    deleted: bool


@dataclass
class ImportReport:
    """What an import did: versions copied, found here already, and refused (with why)."""

    imported: list[SourceVersion] = field(default_factory=list)
    present: list[SourceVersion] = field(default_factory=list)
    refused: list[tuple[SourceVersion, str]] = field(default_factory=list)

    @property
    def subjects(self) -> set[str]:
        return {v.subject for v in [*self.imported, *self.present]}


class SourceRegistry:
    """A Confluent-compatible registry read over HTTP (Basic auth ``user:password``)."""

    def __init__(self, url: str, user_info: str | None = None, timeout: float = 30) -> None:
        auth = None
        if user_info:
            user, _, password = user_info.partition(":")
            auth = httpx.BasicAuth(user, password)
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url, auth=auth, timeout=timeout, headers={"Accept": ACCEPT}
        )

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, *, missing: Any = ..., **params: Any) -> Any:
        """The JSON answer to GET ``path``; ``missing``, if given, for a 404 (ConfigError
        for any other failure)."""
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot reach the source registry at {self.url}: {exc}") from exc
        if response.status_code == 404 and missing is not ...:
            return missing
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text[:200]
            raise ConfigError(
                f"the source registry answered {response.status_code} to GET {path}: {message}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ConfigError(f"the source registry's answer to GET {path} is not JSON") from exc


def read_source(
    source: SourceRegistry, *, subject_prefix: str = "", include_deleted: bool = True
) -> list[SourceVersion]:
    """Every version of every subject (starting with ``subject_prefix``) in ``source``."""
    found: list[SourceVersion] = []
    for subject in source.get("/subjects", deleted=str(include_deleted).lower()):
        if not subject.startswith(subject_prefix):
            continue
        path = f"/subjects/{quote(subject, safe='')}/versions"
        # A subject whose versions are all soft-deleted has no live ones: 40401 here.
        live = set(source.get(path, missing=[]))
        every = source.get(path, deleted="true") if include_deleted else sorted(live)
        for number in every:
            got = source.get(f"{path}/{number}", deleted="true")
            schema_type = got.get("schemaType", "AVRO")
            if schema_type != "AVRO":
                raise ConfigError(
                    f"{subject} version {number} is a {schema_type} schema; only AVRO is "
                    "supported here"
                )
            found.append(
                SourceVersion(
                    subject=subject,
                    version=int(got["version"]),
                    schema_id=int(got["id"]),
                    schema=got["schema"],
                    references=tuple(parse_references(got.get("references") or [])),
                    deleted=number not in live,
                )
            )
    return found


def in_dependency_order(versions: Iterable[SourceVersion]) -> list[SourceVersion]:
    """By id, except that a version comes after the versions its references name
    (Kahn's algorithm, the lowest id first among those ready)."""
    every = list(versions)
    by_key = {(v.subject, v.version): v for v in every}
    waiting_on: dict[tuple[str, int], set[tuple[str, int]]] = {}
    unblocks: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for v in every:
        key = (v.subject, v.version)
        needs = {(r.subject, r.version) for r in v.references} & by_key.keys()
        needs.discard(key)
        waiting_on[key] = needs
        for need in needs:
            unblocks.setdefault(need, []).append(key)

    def rank(key: tuple[str, int]) -> tuple[int, str, int]:
        return (by_key[key].schema_id, *key)

    ready = [rank(k) for k, needs in waiting_on.items() if not needs]
    heapq.heapify(ready)
    ordered: list[SourceVersion] = []
    while ready:
        _, subject, number = heapq.heappop(ready)
        key = (subject, number)
        ordered.append(by_key[key])
        for other in unblocks.get(key, []):
            waiting_on[other].discard(key)
            if not waiting_on[other]:
                heapq.heappush(ready, rank(other))
    # A cycle: what is left goes last, by id, and the registry says what is wrong.
    placed = {(v.subject, v.version) for v in ordered}
    ordered += sorted((v for v in every if (v.subject, v.version) not in placed),
                      key=lambda v: (v.schema_id, v.subject, v.version))  # fmt: skip
    return ordered


def import_versions(
    store: SchemaStore,
    versions: Iterable[SourceVersion],
    progress: Callable[[SourceVersion, str], None] | None = None,
) -> ImportReport:
    """Register ``versions`` in ``store`` with their ids and version numbers (IMPORT mode)."""
    ordered = in_dependency_order(versions)
    report = ImportReport()
    own_modes: dict[str, str | None] = {}
    try:
        for v in ordered:
            if v.subject not in own_modes:
                own_modes[v.subject] = _switch_to_import(store, v.subject)
            if own_modes[v.subject] == "READONLY":
                outcome = f"refused: subject {v.subject} is READONLY here"
                report.refused.append((v, outcome))
            else:
                outcome = _import_one(store, v, report)
            if progress is not None:
                progress(v, outcome)
    finally:
        for subject, mode in own_modes.items():
            if mode == "READONLY":
                continue
            if mode is None:
                store.delete_mode(subject)
            else:
                store.set_mode(mode, subject, force=True)
    return report


def _switch_to_import(store: SchemaStore, subject: str) -> str | None:
    """Put ``subject`` in IMPORT mode; return the mode it had of its own (None: none)."""
    try:
        own: str | None = store.get_mode(subject)
    except ModeNotFoundError:
        own = None
    if store.get_mode(subject, default_to_global=True) == "READONLY":
        return "READONLY"
    store.set_mode("IMPORT", subject, force=True)
    return own


def _import_one(store: SchemaStore, v: SourceVersion, report: ImportReport) -> str:
    try:
        here = store.get_version(v.subject, v.version, include_deleted=True)
    except RegistryError:
        here = None
    if here is not None and here.schema_id == v.schema_id and here.deleted == v.deleted:
        report.present.append(v)
        return "present"
    try:
        store.register(
            v.subject, v.schema, references=v.references, schema_id=v.schema_id, version=v.version
        )
        if v.deleted:
            store.delete_version(v.subject, v.version)
    except (RegistryError, SchemaNotFoundError) as exc:
        report.refused.append((v, exc.message))
        return f"refused: {exc.message}"
    report.imported.append(v)
    return "imported"


__all__ = [
    "ImportReport",
    "SourceRegistry",
    "SourceVersion",
    "import_versions",
    "in_dependency_order",
    "read_source",
]
