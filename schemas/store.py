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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, to_parsing_canonical_form
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import transaction, utcnow
from exchange.core.errors import (
    ConfigNotFoundError,
    IncompatibleSchemaError,
    InvalidCompatibilityLevelError,
    InvalidSchemaError,
    InvalidVersionError,
    SchemaNotFoundError,
    SchemaNotInSubjectError,
    SubjectNotFoundError,
    SubjectNotSoftDeletedError,
    SubjectSoftDeletedError,
    VersionNotFoundError,
    VersionNotSoftDeletedError,
    VersionSoftDeletedError,
)
from exchange.core.models import GLOBAL_CONFIG, RegistryConfig, SchemaRecord, SubjectVersion
from schemas.compatibility import CompatibilityLevel, Incompatibility, check_level

DEFAULT_LEVEL = CompatibilityLevel.BACKWARD
Version = int | str


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a subject as the registry API shows it."""

    subject: str
    version: int
    schema_id: int
    schema: str
    deleted: bool


def schema_form(schema: dict[str, Any] | str) -> str:
    """What tells schemas apart: the whole schema as compact JSON with its keys sorted.

    Only whitespace and the order of an object's keys are insignificant; the order of
    fields, symbols and union branches is kept. Raises InvalidSchemaError if it is not
    a valid Avro schema. Migration 0008 computes the same form for stored schemas.
    """
    canonical_form(schema)  # validates
    raw = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint_of(schema: dict[str, Any] | str) -> str:
    """The stored fingerprint of a schema: SHA-256 of :func:`schema_form`, hex."""
    return hashlib.sha256(schema_form(schema).encode()).hexdigest()


def canonical_form(schema: dict[str, Any] | str) -> str:
    """Avro Parsing Canonical Form of a schema given as JSON text or a dict."""
    try:
        raw = json.loads(schema) if isinstance(schema, str) else schema
        parsed = parse_schema(raw)
    except (ValueError, TypeError, KeyError, SchemaParseException) as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc}") from exc
    return str(to_parsing_canonical_form(parsed))


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


class SchemaStore:
    """Subjects, versions, schemas and compatibility levels kept in the SQL database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._by_id: dict[int, str] = {}

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    # -- schemas and versions --------------------------------------------------

    def register(self, subject: str, schema: dict[str, Any] | str) -> int:
        """Register ``schema`` under ``subject``; return its global id.

        Idempotent: a schema already live under the subject returns its id
        without a compatibility check. Raises IncompatibleSchemaError (naming
        each field and rule broken) or InvalidSchemaError; nothing changes then.
        """
        text = schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)
        canonical = canonical_form(schema)
        fingerprint = fingerprint_of(schema)
        with transaction(self._sessions) as session:
            record = session.scalar(
                select(SchemaRecord).where(SchemaRecord.fingerprint == fingerprint)
            )
            if record is not None:
                live = session.scalar(
                    select(SubjectVersion).where(
                        SubjectVersion.subject == subject,
                        SubjectVersion.schema_id == record.id,
                        SubjectVersion.deleted.is_(False),
                    )
                )
                if live is not None:
                    return record.id
            existing = self._live_versions(session, subject)
            problems = check_level(
                self._effective_level(session, subject),
                text,
                [(v.version, self._text(session, v.schema_id)) for v in existing],
            )
            if problems:
                raise incompatibility_error(problems)
            if record is None:
                record = SchemaRecord(
                    fingerprint=fingerprint, canonical=canonical, schema_json=text
                )
                session.add(record)
                session.flush()
            latest = session.scalar(
                select(func.max(SubjectVersion.version)).where(SubjectVersion.subject == subject)
            )
            session.add(
                SubjectVersion(subject=subject, version=(latest or 0) + 1, schema_id=record.id)
            )
            return record.id

    def lookup(
        self, subject: str, schema: dict[str, Any] | str, *, include_deleted: bool = False
    ) -> RegisteredVersion:
        """The version of ``subject`` holding ``schema`` (the whole schema, as ids): a live
        one, or with ``include_deleted`` a soft-deleted one too (the newest first)."""
        fingerprint = fingerprint_of(schema)
        with self._sessions() as session:
            if not self._versions(session, subject, include_deleted):
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            query = (
                select(SubjectVersion, SchemaRecord)
                .join(SchemaRecord, SchemaRecord.id == SubjectVersion.schema_id)
                .where(SubjectVersion.subject == subject, SchemaRecord.fingerprint == fingerprint)
                .order_by(SubjectVersion.deleted, SubjectVersion.version.desc())
            )
            if not include_deleted:
                query = query.where(SubjectVersion.deleted.is_(False))
            row = session.execute(query).first()
        if row is None:
            raise SchemaNotInSubjectError(f"Schema not found under subject '{subject}'.")
        version, record = row
        return RegisteredVersion(
            subject, version.version, record.id, record.schema_json, version.deleted
        )

    def max_id(self) -> int:
        """The largest schema id given so far (0 before the first)."""
        with self._sessions() as session:
            return session.scalar(select(func.max(SchemaRecord.id))) or 0

    def uses_of(self, schema_id: int, *, include_deleted: bool = False) -> list[tuple[str, int]]:
        """The (subject, version) pairs that hold ``schema_id``, by subject then version.

        Raises SchemaNotFoundError for an id never given."""
        with self._sessions() as session:
            self._text(session, schema_id)
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
            found = [
                RegisteredVersion(
                    r.subject, r.version, r.schema_id, self._text(session, r.schema_id), r.deleted
                )
                for r in rows
            ]
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
            return RegisteredVersion(
                subject, row.version, row.schema_id, self._text(session, row.schema_id), row.deleted
            )

    def schema_text(self, schema_id: int) -> str:
        """The schema registered under ``schema_id``, as JSON text (cached)."""
        cached = self._by_id.get(schema_id)
        if cached is None:
            with self._sessions() as session:
                cached = self._text(session, schema_id)
            self._by_id[schema_id] = cached
        return cached

    def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every live version, or permanently delete a soft-deleted subject."""
        with transaction(self._sessions) as session:
            rows = self._versions(session, subject, include_deleted=True)
            if not rows:
                raise SubjectNotFoundError(f"Subject '{subject}' not found.")
            if permanent:
                if any(not r.deleted for r in rows):
                    raise SubjectNotSoftDeletedError(
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted."
                    )
                session.execute(delete(SubjectVersion).where(SubjectVersion.subject == subject))
                session.execute(delete(RegistryConfig).where(RegistryConfig.subject == subject))
                return [r.version for r in rows]
            live = [r for r in rows if not r.deleted]
            if not live:
                raise SubjectSoftDeletedError(
                    f"Subject '{subject}' was soft deleted. Set permanent=true to delete "
                    "permanently"
                )
            for row in live:
                row.deleted = True
            return [r.version for r in live]

    def delete_version(self, subject: str, version: Version, *, permanent: bool = False) -> int:
        """Soft-delete one version, or permanently delete a soft-deleted one."""
        with transaction(self._sessions) as session:
            latest = version in ("latest", -1, "-1")  # the latest live version
            row = self._find_version(session, subject, version, include_deleted=not latest)
            if row.deleted and not permanent:
                raise VersionSoftDeletedError(
                    f"Subject '{subject}' Version {row.version} was soft deleted. Set "
                    "permanent=true to delete permanently"
                )
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
        self, subject: str, schema: dict[str, Any] | str, version: Version | None = None
    ) -> list[Incompatibility]:
        """Incompatibilities of ``schema`` with the subject, as Confluent's registry checks.

        ``None`` checks as registration does: against every live version the subject's
        level names (all of them at a transitive level, else the latest); a subject with
        no versions yet accepts anything. ``latest`` checks against the latest live
        version alone, and a version number against that version alone, in the level's
        direction.
        """
        text = schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)
        canonical_form(text)
        with self._sessions() as session:
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
            pairs = [(v.version, self._text(session, v.schema_id)) for v in existing]
        return check_level(level, text, pairs)

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
            row = session.get(RegistryConfig, GLOBAL_CONFIG)
            if row is None:
                return DEFAULT_LEVEL.value
            level = row.compatibility
            session.delete(row)
            return level

    def delete_config(self, subject: str) -> str:
        with transaction(self._sessions) as session:
            row = session.get(RegistryConfig, subject)
            if row is None:
                raise ConfigNotFoundError(
                    f"Subject '{subject}' does not have subject-level compatibility configured"
                )
            level = row.compatibility
            session.delete(row)
            return level

    # -- helpers -------------------------------------------------------------------

    def _text(self, session: Session, schema_id: int) -> str:
        record = session.get(SchemaRecord, schema_id)
        if record is None:
            raise SchemaNotFoundError(f"Schema {schema_id} not found")
        return record.schema_json

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
