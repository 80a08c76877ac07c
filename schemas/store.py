"""The schema registry's store: subjects, versions, global ids and compatibility levels.

Kept in the SQL database. A schema's global id is fixed by the whole schema
(:func:`schema_form`: its JSON with keys sorted and no insignificant whitespace),
as Confluent's registry assigns ids: registering the same schema again, in any
formatting and under any subject, returns the same id, and schemas that differ in
anything else (doc, defaults, aliases, a logical type or its precision and scale)
get ids of their own. Ids were once given by the Avro Parsing Canonical Form,
which drops all of those: see :meth:`SchemaStore.shared_ids`. A new version is accepted only if it
is compatible with the subject's existing versions at the subject's level (or
the global level, BACKWARD by default), checked with Avro's resolution rules
(:mod:`schemas.compatibility`). Deletes follow Confluent's registry: a soft
delete hides a version; a permanent delete is allowed only after a soft one.
Schema ids stay resolvable after any delete, so records already on a topic can
always be decoded.

Schema references (named types defined in another subject's version) are stored
with the schema and are part of its identity; the registry reads such a schema
with the references' definitions in place (:mod:`schemas.references`). Modes
follow Confluent's: READWRITE, READONLY (no registration, delete or configuration)
and IMPORT (registrations carry the id, and version, they had in the registry they
come from; no compatibility check), global or per subject.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, to_parsing_canonical_form
from sqlalchemy import delete, func, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction, utcnow
from exchange.core.errors import (
    ConfigNotFoundError,
    DatabaseError,
    IncompatibleSchemaError,
    InvalidCompatibilityLevelError,
    InvalidModeError,
    InvalidSchemaError,
    InvalidVersionError,
    ModeNotFoundError,
    OperationNotPermittedError,
    ReferenceExistsError,
    SchemaNotFoundError,
    SchemaNotInSubjectError,
    SubjectNotFoundError,
    SubjectNotSoftDeletedError,
    SubjectSoftDeletedError,
    VersionNotFoundError,
    VersionNotSoftDeletedError,
    VersionSoftDeletedError,
)
from exchange.core.models import (
    GLOBAL_CONFIG,
    RegistryConfig,
    RegistryMode,
    SchemaRecord,
    SchemaReference,
    SubjectVersion,
)
from schemas.compatibility import CompatibilityLevel, Incompatibility, check_level
from schemas.normalize import normalized_form
from schemas.references import Reference, defined_name, expand_text

# Registrations that lost a race for a version number to another process are tried again.
_REGISTER_ATTEMPTS = 3


def _one_at_a_time(session: Session, subject: str) -> None:
    """Wait for any other transaction registering under ``subject``, before anything is
    read: two that read at once would both find the schema new (two ids for one schema,
    two versions) or take the same version number. PostgreSQL: a transaction-scoped
    advisory lock on the subject. SQLite: the database's write lock, taken by a write
    statement that changes nothing (the driver begins the transaction there, and the reads
    that follow see what the last writer committed)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sql_text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"exchange.schema:{subject}"},
        )
    else:
        session.execute(sql_text("DELETE FROM subject_versions WHERE 0 = 1"))


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD
MODES = ("READWRITE", "READONLY", "IMPORT")
DEFAULT_MODE = "READWRITE"
Version = int | str
References = tuple[Reference, ...] | list[Reference]


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a subject as the registry API shows it."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool
    references: tuple[Reference, ...] = ()


def schema_form(schema: dict[str, Any] | str) -> str:
    """What tells schemas apart: the whole schema as compact JSON with its keys sorted.

    Only whitespace and the order of an object's keys are insignificant; the order of
    fields, symbols and union branches is kept. Raises InvalidSchemaError if it is not
    a valid Avro schema. Migration 0008 computes the same form for stored schemas.
    """
    canonical_form(schema)  # validates
    return _compact(schema)


def _compact(schema: dict[str, Any] | str) -> str:
    """The schema's JSON with keys sorted and no insignificant whitespace (not validated)."""
    try:
        raw = json.loads(schema) if isinstance(schema, str) else schema
    except ValueError as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc}") from exc
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint_of(schema: dict[str, Any] | str, references: References = ()) -> str:
    """The stored fingerprint of a schema and its references: SHA-256, hex, of
    :func:`schema_form` (not validated here), followed by the references in order
    when there are any (so a schema without references keeps the fingerprint
    migration 0008 gave it)."""
    form = _compact(schema)
    if references:
        form += "\n" + json.dumps([r.to_json() for r in references], sort_keys=True)
    return hashlib.sha256(form.encode()).hexdigest()


def canonical_form(schema: dict[str, Any] | str) -> str:
    """Avro Parsing Canonical Form of a schema given as JSON text or a dict."""
    try:
        raw = json.loads(schema) if isinstance(schema, str) else schema
        parsed = parse_schema(raw)
    except (ValueError, TypeError, KeyError, SchemaParseException) as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc}") from exc
    return str(to_parsing_canonical_form(parsed))


def parse_mode(mode: str) -> str:
    if mode.upper() not in MODES:
        raise InvalidModeError(f"Invalid mode {mode!r}; valid modes are " + ", ".join(MODES))
    return mode.upper()


def parse_level(level: str) -> CompatibilityLevel:
    try:
        return CompatibilityLevel(level.upper())
    except ValueError as exc:
        known = ", ".join(lv.value for lv in CompatibilityLevel)
        raise InvalidCompatibilityLevelError(
            f"Invalid compatibility level {level!r}; valid levels are {known}"
        ) from exc


def incompatibility_error(problems: list[Incompatibility]) -> IncompatibleSchemaError:
    lines = [
        f"{p.location}: {p.message} [{p.rule}"
        + (f", against version {p.version}" if p.version is not None else "")
        + "]"
        for p in problems
    ]
    return IncompatibleSchemaError(
        "Schema being registered is incompatible with an earlier schema: " + "; ".join(lines),
        lines,
    )


@dataclass(frozen=True)
class _Prepared:
    """A schema ready to register, look up or check: its text as it will be stored, the
    references, the fingerprint, and the self-contained text the registry reads."""

    text: str
    references: tuple[Reference, ...]
    fingerprint: str
    canonical: str
    expanded: str


class SchemaStore:
    """Subjects, versions, schemas and compatibility levels kept in the SQL database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._by_id: dict[int, str] = {}
        self._raw_by_id: dict[int, tuple[str, tuple[Reference, ...]]] = {}

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    # -- schemas and versions --------------------------------------------------

    def register(
        self,
        subject: str,
        schema: dict[str, Any] | str,
        *,
        references: References = (),
        schema_id: int | None = None,
        version: int | None = None,
        normalize: bool = False,
    ) -> int:
        """Register ``schema`` under ``subject``; return its global id.

        Idempotent: a schema already live under the subject returns its id
        without a compatibility check. Raises IncompatibleSchemaError (naming
        each field and rule broken) or InvalidSchemaError; nothing changes then.

        ``schema_id`` and ``version`` are Confluent's explicit ``id`` and ``version``:
        in IMPORT mode the id is required and kept (refused if it already stands for
        a different schema), the version is kept (the next one if not given) and no
        compatibility is checked; outside it, an id is accepted only if it is the
        schema's own already, and a version only if it is the next one. In READONLY
        mode nothing is registered. ``normalize`` registers Confluent's normal form
        of the schema (:func:`schemas.normalize.normalized_form`).
        """
        if version is not None and version in (0, -1):
            version = None  # Confluent's "not given"
        if schema_id is not None and schema_id < 0:
            schema_id = None
        for attempt in range(_REGISTER_ATTEMPTS):
            try:
                return self._register(subject, schema, references, schema_id, version, normalize)
            except DatabaseError as exc:
                # Two processes registering under one subject at once (connectors starting
                # together): the loser's version number or schema row is taken. Again, it
                # finds the winner's registration (the same schema: its id) or numbers after it.
                lost = isinstance(exc.__cause__, IntegrityError)
                if not lost or attempt == _REGISTER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _register(
        self,
        subject: str,
        schema: dict[str, Any] | str,
        references: References,
        schema_id: int | None,
        version: int | None,
        normalize: bool,
    ) -> int:
        with transaction(self._sessions) as session:
            _one_at_a_time(session, subject)
            mode = self._effective_mode(session, subject)
            prepared = self._prepare(session, schema, references, normalize)
            records = list(
                session.scalars(
                    select(SchemaRecord)
                    .where(SchemaRecord.fingerprint == prepared.fingerprint)
                    .order_by(SchemaRecord.id)
                )
            )
            ids = [r.id for r in records]
            live = session.scalar(
                select(SubjectVersion)
                .where(
                    SubjectVersion.subject == subject,
                    SubjectVersion.schema_id.in_(ids),
                    SubjectVersion.deleted.is_(False),
                )
                .order_by(SubjectVersion.version.desc())
            ) if ids else None  # fmt: skip
            if (
                live is not None
                and schema_id in (None, live.schema_id)
                and version in (None, live.version)
            ):
                return live.schema_id  # as Confluent: found before the mode is checked
            if mode == "READONLY":
                raise OperationNotPermittedError(f"Subject {subject} is in read-only mode")
            if mode == "IMPORT":
                return self._import(session, subject, prepared, schema_id, version)
            if schema_id is not None and schema_id not in ids:
                raise OperationNotPermittedError(f"Subject {subject} is not in import mode")
            latest = self._latest_number(session, subject)
            if version is not None and version != latest + 1:
                raise InvalidSchemaError(
                    f"Invalid schema: version {version} is not one more than the subject's "
                    f"latest version ({latest})"
                )
            existing = self._live_versions(session, subject)
            problems = check_level(
                self._effective_level(session, subject),
                prepared.expanded,
                [(v.version, self._expanded(session, v.schema_id)) for v in existing],
            )
            if problems:
                raise incompatibility_error(problems)
            if schema_id is not None:
                record_id = schema_id
            elif records:
                record_id = records[0].id
            else:
                record_id = self._add_schema(session, prepared, None)
            session.add(SubjectVersion(subject=subject, version=latest + 1, schema_id=record_id))
            return record_id

    def _import(
        self,
        session: Session,
        subject: str,
        prepared: _Prepared,
        schema_id: int | None,
        version: int | None,
    ) -> int:
        """Registration in IMPORT mode: the id (required) and version are kept."""
        if schema_id is None:
            raise OperationNotPermittedError(f"Subject {subject} is not in read-write mode")
        record = session.get(SchemaRecord, schema_id)
        if record is None:
            self._add_schema(session, prepared, schema_id)
        elif record.fingerprint != prepared.fingerprint:
            raise OperationNotPermittedError(
                f"Overwrite new schema with id {schema_id} is not permitted."
            )
        if version is None:
            version = self._latest_number(session, subject) + 1
        row = session.scalar(
            select(SubjectVersion).where(
                SubjectVersion.subject == subject, SubjectVersion.version == version
            )
        )
        if row is None:
            session.add(SubjectVersion(subject=subject, version=version, schema_id=schema_id))
        else:  # Confluent overwrites the version an import names
            row.schema_id = schema_id
            row.deleted = False
        return schema_id

    def _add_schema(self, session: Session, prepared: _Prepared, schema_id: int | None) -> int:
        record = SchemaRecord(
            fingerprint=prepared.fingerprint,
            canonical=prepared.canonical,
            schema_json=prepared.text,
        )
        if schema_id is not None:
            record.id = schema_id
        session.add(record)
        session.flush()
        for position, ref in enumerate(prepared.references):
            session.add(
                SchemaReference(
                    schema_id=record.id,
                    position=position,
                    name=ref.name,
                    subject=ref.subject,
                    version=ref.version,
                )
            )
        if schema_id is not None and session.get_bind().dialect.name == "postgresql":
            # An explicit id does not move PostgreSQL's sequence: move it past the id, so
            # that the next registration without one does not collide with it.
            session.execute(
                sql_text(
                    "SELECT CASE WHEN nextval(pg_get_serial_sequence('schemas', 'id')) <= :id"
                    " THEN setval(pg_get_serial_sequence('schemas', 'id'), :id) END"
                ),
                {"id": schema_id},
            )
        return record.id

    def lookup(
        self,
        subject: str,
        schema: dict[str, Any] | str,
        *,
        references: References = (),
        include_deleted: bool = False,
        normalize: bool = False,
    ) -> RegisteredVersion:
        """The version of ``subject`` holding ``schema`` with ``references`` (the whole
        schema, as ids): a live one, or with ``include_deleted`` a soft-deleted one too
        (the newest first)."""
        with self._sessions() as session:
            if not self._versions(session, subject, include_deleted):
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            prepared = self._prepare(session, schema, references, normalize)
            query = (
                select(SubjectVersion, SchemaRecord)
                .join(SchemaRecord, SchemaRecord.id == SubjectVersion.schema_id)
                .where(
                    SubjectVersion.subject == subject,
                    SchemaRecord.fingerprint == prepared.fingerprint,
                )
                .order_by(SubjectVersion.deleted, SubjectVersion.version.desc())
            )
            if not include_deleted:
                query = query.where(SubjectVersion.deleted.is_(False))
            row = session.execute(query).first()
            if row is None:
                raise SchemaNotInSubjectError(f"Schema not found under subject '{subject}'.")
            version, record = row
            return self._registered(session, version, record)

    def max_id(self) -> int:
        """The largest schema id given so far (0 before the first)."""
        with self._sessions() as session:
            return session.scalar(select(func.max(SchemaRecord.id))) or 0

    def uses_of(self, schema_id: int, *, include_deleted: bool = False) -> list[tuple[str, int]]:
        """The (subject, version) pairs that hold ``schema_id``, by subject then version.

        Raises SchemaNotFoundError for an id never given."""
        with self._sessions() as session:
            self._record(session, schema_id)
            query = select(SubjectVersion.subject, SubjectVersion.version).where(
                SubjectVersion.schema_id == schema_id
            )
            if not include_deleted:
                query = query.where(SubjectVersion.deleted.is_(False))
            rows = session.execute(
                query.order_by(SubjectVersion.subject, SubjectVersion.version)
            ).all()
        return [(subject, version) for subject, version in rows]

    def all_versions(
        self, *, subject_prefix: str = "", include_deleted: bool = False, latest_only: bool = False
    ) -> list[RegisteredVersion]:
        """Every version of every subject whose name starts with ``subject_prefix``."""
        with self._sessions() as session:
            query = select(SubjectVersion).where(SubjectVersion.subject.startswith(subject_prefix))
            if not include_deleted:
                query = query.where(SubjectVersion.deleted.is_(False))
            rows = session.scalars(
                query.order_by(SubjectVersion.subject, SubjectVersion.version)
            ).all()
            found = [self._registered(session, r, self._record(session, r.schema_id)) for r in rows]
        if latest_only:
            latest = {v.subject: v for v in found}
            found = list(latest.values())
        return found

    def shared_ids(self) -> dict[int, list[str]]:
        """Schema ids registered under more than one subject, with their subjects.

        Before ids were given by the whole schema, two subjects registering schemas
        that differed only in what the Parsing Canonical Form drops (a decimal's scale,
        a timestamp's unit, a default) got one id, and the text of the first. Such ids
        are listed here so an operator can check what each subject's producers meant.
        """
        with self._sessions() as session:
            rows = session.execute(
                select(SubjectVersion.schema_id, SubjectVersion.subject)
                .distinct()
                .order_by(SubjectVersion.schema_id, SubjectVersion.subject)
            ).all()
        subjects: dict[int, list[str]] = {}
        for schema_id, subject in rows:
            subjects.setdefault(schema_id, []).append(subject)
        return {i: s for i, s in subjects.items() if len(s) > 1}

    def subjects(self, *, include_deleted: bool = False, deleted_only: bool = False) -> list[str]:
        """The subjects with a live version; with ``include_deleted`` also those whose
        versions are all soft-deleted, with ``deleted_only`` only those."""
        with self._sessions() as session:
            rows = session.execute(
                select(SubjectVersion.subject, SubjectVersion.deleted).distinct()
            ).all()
        live = {subject for subject, deleted in rows if not deleted}
        every = {subject for subject, _ in rows}
        if deleted_only:
            return sorted(every - live)
        return sorted(every if include_deleted else live)

    def versions(
        self, subject: str, *, include_deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        """The subject's live versions; with ``include_deleted`` the soft-deleted ones too,
        with ``deleted_only`` only those. SubjectNotFoundError if it has none at all."""
        with self._sessions() as session:
            rows = self._versions(session, subject, include_deleted or deleted_only)
        if not rows:
            raise SubjectNotFoundError(f"Subject '{subject}' not found.")
        return [r.version for r in rows if r.deleted or not deleted_only]

    def get_version(
        self, subject: str, version: Version, *, include_deleted: bool = False
    ) -> RegisteredVersion:
        with self._sessions() as session:
            row = self._find_version(session, subject, version, include_deleted)
            return self._registered(session, row, self._record(session, row.schema_id))

    def schema_text(self, schema_id: int) -> str:
        """The schema registered under ``schema_id``, self-contained: as registered, with
        the definitions of its references in place if it has any (cached). What a reader
        of records written with the id parses."""
        cached = self._by_id.get(schema_id)
        if cached is None:
            with self._sessions() as session:
                cached = self._expanded(session, schema_id)
            self._by_id[schema_id] = cached
        return cached

    def schema_of(self, schema_id: int) -> tuple[str, tuple[Reference, ...]]:
        """The schema registered under ``schema_id`` as registered, and its references
        (what Confluent's API answers for an id; cached)."""
        cached = self._raw_by_id.get(schema_id)
        if cached is None:
            with self._sessions() as session:
                record = self._record(session, schema_id)
                cached = (record.schema_json, self._references(session, schema_id))
            self._raw_by_id[schema_id] = cached
        return cached

    def referenced_by(self, subject: str, version: Version) -> list[int]:
        """The ids of the schemas that reference ``subject``'s ``version`` (a live one, or
        ``latest``) and are still registered under some subject, ascending."""
        with self._sessions() as session:
            row = self._find_version(session, subject, version, include_deleted=False)
            return self._referrers(session, subject, row.version)

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every live version, or permanently delete a soft-deleted subject."""
        with transaction(self._sessions) as session:
            self._writable(session, subject)
            rows = self._versions(session, subject, include_deleted=True)
            if not rows:
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            if permanent:
                if any(not r.deleted for r in rows):
                    raise SubjectNotSoftDeletedError(
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted."
                    )
                for row in rows:
                    self._unreferenced(session, subject, row.version)
                session.execute(delete(SubjectVersion).where(SubjectVersion.subject == subject))
                session.execute(delete(RegistryConfig).where(RegistryConfig.subject == subject))
                session.execute(delete(RegistryMode).where(RegistryMode.subject == subject))
                return [r.version for r in rows]
            live = [r for r in rows if not r.deleted]
            if not live:
                raise SubjectSoftDeletedError(
                    f"Subject '{subject}' was soft deleted. Set permanent=true to delete "
                    "permanently"
                )
            for row in live:
                self._unreferenced(session, subject, row.version)
            for row in live:
                row.deleted = True
            return [r.version for r in live]

    def delete_version(self, subject: str, version: Version, *, permanent: bool = False) -> int:
        """Soft-delete one version, or permanently delete a soft-deleted one."""
        with transaction(self._sessions) as session:
            self._writable(session, subject)
            latest = version in ("latest", -1, "-1")  # the latest live version
            row = self._find_version(session, subject, version, include_deleted=not latest)
            if row.deleted and not permanent:
                raise VersionSoftDeletedError(
                    f"Subject '{subject}' Version {row.version} was soft deleted. Set "
                    "permanent=true to delete permanently"
                )
            self._unreferenced(session, subject, row.version)
            if permanent:
                if not row.deleted:
                    raise VersionNotSoftDeletedError(
                        f"Subject '{subject}' Version {row.version} was not deleted first before "
                        "being permanently deleted"
                    )
                session.delete(row)
            else:
                row.deleted = True
            return row.version

    # -- compatibility -----------------------------------------------------------

    def check(
        self,
        subject: str,
        schema: dict[str, Any] | str,
        version: Version | None = None,
        *,
        references: References = (),
        normalize: bool = False,
    ) -> list[Incompatibility]:
        """Incompatibilities of ``schema`` with the subject, as Confluent's registry checks.

        ``None`` checks as registration does: against every live version the subject's
        level names (all of them at a transitive level, else the latest); a subject with
        no versions yet accepts anything. ``latest`` checks against the latest live
        version alone, and a version number against that version alone, in the level's
        direction.
        """
        with self._sessions() as session:
            prepared = self._prepare(session, schema, references, normalize)
            level = self._effective_level(session, subject)
            if version is None:
                existing = self._live_versions(session, subject)
            else:
                if version in ("latest", -1, "-1"):
                    existing = self._live_versions(session, subject)[-1:]
                    if not existing and not self._versions(session, subject, True):
                        raise SubjectNotFoundError(f"Subject '{subject}' not found.")
                else:
                    existing = [self._find_version(session, subject, version, False)]
                level = CompatibilityLevel(level.value.removesuffix("_TRANSITIVE"))
            pairs = [(v.version, self._expanded(session, v.schema_id)) for v in existing]
        return check_level(level, prepared.expanded, pairs)

    def get_config(self, subject: str | None = None, *, default_to_global: bool = False) -> str:
        with self._sessions() as session:
            if subject is None:
                return self._global_level(session).value
            row = session.get(RegistryConfig, subject)
            if row is not None:
                return row.compatibility
            if default_to_global:
                return self._global_level(session).value
        raise ConfigNotFoundError(
            f"Subject '{subject}' does not have subject-level compatibility configured"
        )

    def set_config(self, level: str, subject: str | None = None) -> str:
        parsed = parse_level(level)
        with transaction(self._sessions) as session:
            self._writable(session, subject)
            key = subject if subject is not None else GLOBAL_CONFIG
            row = session.get(RegistryConfig, key)
            if row is None:
                session.add(RegistryConfig(subject=key, compatibility=parsed.value))
            else:
                row.compatibility = parsed.value
                row.updated_at = utcnow()
        return parsed.value

    def reset_global_config(self) -> str:
        """Back to the default global level (BACKWARD); returns the level it had."""
        with transaction(self._sessions) as session:
            self._writable(session, None)
            row = session.get(RegistryConfig, GLOBAL_CONFIG)
            if row is None:
                return DEFAULT_LEVEL.value
            level = row.compatibility
            session.delete(row)
            return level

    def delete_config(self, subject: str) -> str:
        with transaction(self._sessions) as session:
            self._writable(session, subject)
            row = session.get(RegistryConfig, subject)
            if row is None:
                raise ConfigNotFoundError(
                    f"Subject '{subject}' does not have subject-level compatibility configured"
                )
            level = row.compatibility
            session.delete(row)
            return level

    # -- modes -----------------------------------------------------------------------

    def get_mode(self, subject: str | None = None, *, default_to_global: bool = False) -> str:
        """The global mode (READWRITE unless set), or a subject's own; with
        ``default_to_global`` the one that applies to the subject."""
        with self._sessions() as session:
            if subject is None:
                return self._global_mode(session)
            row = session.get(RegistryMode, subject)
            if row is not None:
                return row.mode
            if default_to_global:
                return self._global_mode(session)
        raise ModeNotFoundError(f"Subject '{subject}' does not have subject-level mode configured")

    def set_mode(self, mode: str, subject: str | None = None, *, force: bool = False) -> str:
        """Set the global mode, or a subject's. IMPORT is refused (unless ``force``) where
        schemas are registered already, as Confluent refuses it: imported ids could
        collide with theirs."""
        parsed = parse_mode(mode)
        with transaction(self._sessions) as session:
            if parsed == "IMPORT" and not force:
                query = select(SubjectVersion.id).where(SubjectVersion.deleted.is_(False))
                if subject is not None:
                    query = query.where(SubjectVersion.subject == subject)
                if session.scalar(query.limit(1)) is not None:
                    raise OperationNotPermittedError("Cannot import since found existing subjects")
            key = subject if subject is not None else GLOBAL_CONFIG
            row = session.get(RegistryMode, key)
            if row is None:
                session.add(RegistryMode(subject=key, mode=parsed))
            else:
                row.mode = parsed
                row.updated_at = utcnow()
        return parsed

    def delete_mode(self, subject: str | None = None) -> str:
        """Remove a subject's own mode (the global one applies again), or reset the global
        mode to READWRITE; returns the mode it had."""
        with transaction(self._sessions) as session:
            row = session.get(RegistryMode, subject if subject is not None else GLOBAL_CONFIG)
            if row is None:
                if subject is None:
                    return DEFAULT_MODE
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            mode = row.mode
            session.delete(row)
            return mode

    # -- helpers -------------------------------------------------------------------

    def _prepare(
        self,
        session: Session,
        schema: dict[str, Any] | str,
        references: References,
        normalize: bool,
    ) -> _Prepared:
        refs = tuple(references)
        text = schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)
        definitions = self._definitions(session, refs)
        expanded = expand_text(text, definitions)
        canonical = canonical_form(expanded)  # validates, with the references in place
        if normalize:
            text = normalized_form(text, named=definitions)
            refs = tuple(sorted(set(refs), key=lambda r: (r.name, r.subject, r.version)))
        return _Prepared(text, refs, fingerprint_of(text, refs), canonical, expanded)

    def _definitions(
        self,
        session: Session,
        references: References,
        seen: frozenset[tuple[str, int]] = frozenset(),
    ) -> dict[str, Any]:
        """The named types ``references`` bring, by name, with those their own references
        bring. InvalidSchemaError for a reference to a version that does not exist."""
        found: dict[str, Any] = {}
        for ref in references:
            key = (ref.subject, ref.version)
            if key in seen:
                raise InvalidSchemaError(
                    f"Invalid schema: the references of {ref.subject} version {ref.version} "
                    "form a cycle"
                )
            row = session.scalar(
                select(SubjectVersion).where(
                    SubjectVersion.subject == ref.subject, SubjectVersion.version == ref.version
                )
            )
            if row is None:
                raise InvalidSchemaError(
                    f"Invalid schema: reference {ref.name!r} names {ref.subject} version "
                    f"{ref.version}, which is not registered"
                )
            record = self._record(session, row.schema_id)
            nested = self._references(session, record.id)
            found.update(self._definitions(session, nested, seen | {key}))
            definition = json.loads(record.schema_json)
            found[ref.name] = definition
            own = defined_name(definition)
            if own is not None:
                found.setdefault(own, definition)
        return found

    def _expanded(self, session: Session, schema_id: int) -> str:
        record = self._record(session, schema_id)
        references = self._references(session, schema_id)
        if not references:
            return record.schema_json
        return expand_text(record.schema_json, self._definitions(session, references))

    @staticmethod
    def _references(session: Session, schema_id: int) -> tuple[Reference, ...]:
        rows = session.scalars(
            select(SchemaReference)
            .where(SchemaReference.schema_id == schema_id)
            .order_by(SchemaReference.position)
        )
        return tuple(Reference(r.name, r.subject, r.version) for r in rows)

    def _registered(
        self, session: Session, row: SubjectVersion, record: SchemaRecord
    ) -> RegisteredVersion:
        return RegisteredVersion(
            row.subject,
            row.version,
            record.id,
            record.schema_json,
            row.deleted,
            self._references(session, record.id),
        )

    @staticmethod
    def _referrers(session: Session, subject: str, version: int) -> list[int]:
        referring = select(SchemaReference.schema_id).where(
            SchemaReference.subject == subject, SchemaReference.version == version
        )
        return sorted(
            set(
                session.scalars(
                    select(SubjectVersion.schema_id).where(SubjectVersion.schema_id.in_(referring))
                )
            )
        )

    def _unreferenced(self, session: Session, subject: str, version: int) -> None:
        """Refuse to delete a version other registered schemas reference."""
        if self._referrers(session, subject, version):
            raise ReferenceExistsError(
                f"One or more references exist to the schema {{subject={subject},"
                f"version={version}}}."
            )

    def _writable(self, session: Session, subject: str | None) -> None:
        mode = (
            self._global_mode(session)
            if subject is None
            else self._effective_mode(session, subject)
        )
        if mode == "READONLY":
            what = "The registry" if subject is None else f"Subject {subject}"
            raise OperationNotPermittedError(f"{what} is in read-only mode")

    @staticmethod
    def _record(session: Session, schema_id: int) -> SchemaRecord:
        record = session.get(SchemaRecord, schema_id)
        if record is None:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        return record

    @staticmethod
    def _latest_number(session: Session, subject: str) -> int:
        """The highest version number the subject has used, soft-deleted ones included (0:
        none); numbers are never reused."""
        return (
            session.scalar(
                select(func.max(SubjectVersion.version)).where(SubjectVersion.subject == subject)
            )
            or 0
        )

    @staticmethod
    def _versions(session: Session, subject: str, include_deleted: bool) -> list[SubjectVersion]:
        query = select(SubjectVersion).where(SubjectVersion.subject == subject)
        if not include_deleted:
            query = query.where(SubjectVersion.deleted.is_(False))
        return list(session.scalars(query.order_by(SubjectVersion.version)))

    def _live_versions(self, session: Session, subject: str) -> list[SubjectVersion]:
        return self._versions(session, subject, include_deleted=False)

    def _find_version(
        self, session: Session, subject: str, version: Version, include_deleted: bool
    ) -> SubjectVersion:
        rows = self._versions(session, subject, include_deleted)
        if not rows:
            raise SubjectNotFoundError(f"Subject '{subject}' not found.")
        if version in ("latest", -1, "-1"):
            return rows[-1]
        try:
            number = int(version)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            raise InvalidVersionError(
                f"The specified version '{version}' is not a valid version id. Allowed values "
                "are between [1, 2^31-1] and the string 'latest'"
            )
        for row in rows:
            if row.version == number:
                return row
        raise VersionNotFoundError(f"Version {number} not found.")

    @staticmethod
    def _global_level(session: Session) -> CompatibilityLevel:
        row = session.get(RegistryConfig, GLOBAL_CONFIG)
        return CompatibilityLevel(row.compatibility) if row else DEFAULT_LEVEL

    def _effective_level(self, session: Session, subject: str) -> CompatibilityLevel:
        row = session.get(RegistryConfig, subject)
        return CompatibilityLevel(row.compatibility) if row else self._global_level(session)

    @staticmethod
    def _global_mode(session: Session) -> str:
        row = session.get(RegistryMode, GLOBAL_CONFIG)
        return row.mode if row else DEFAULT_MODE

    def _effective_mode(self, session: Session, subject: str) -> str:
        row = session.get(RegistryMode, subject)
        return row.mode if row else self._global_mode(session)
