"""The schema store: global schema ids by Avro Parsing Canonical Form, per subject versions.

Registering the same schema again (in any formatting) returns the same id.
Compatibility rules and a Confluent-compatible REST API are to build on this store.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, to_parsing_canonical_form
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import transaction
from exchange.errors import SchemaNotFoundError, WireFormatError
from exchange.models import SchemaRecord, SubjectVersion


def canonical_form(schema: dict[str, Any] | str) -> str:
    """Avro Parsing Canonical Form of a schema given as JSON text or a dict."""
    try:
        parsed = parse_schema(json.loads(schema) if isinstance(schema, str) else schema)
    except (ValueError, SchemaParseException) as exc:
        raise WireFormatError(f"not a valid Avro schema: {exc}") from exc
    return str(to_parsing_canonical_form(parsed))


class SchemaStore:
    """Schemas and subject versions kept in the SQL database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._by_id: dict[int, str] = {}

    def register(self, subject: str, schema: dict[str, Any] | str) -> int:
        """Register ``schema`` under ``subject`` and return its global id (idempotent)."""
        text = schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)
        canonical = canonical_form(schema)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        with transaction(self._sessions) as session:
            record = session.scalar(
                select(SchemaRecord).where(SchemaRecord.fingerprint == fingerprint)
            )
            if record is None:
                record = SchemaRecord(
                    fingerprint=fingerprint, canonical=canonical, schema_json=text
                )
                session.add(record)
                session.flush()
            existing = session.scalar(
                select(SubjectVersion).where(
                    SubjectVersion.subject == subject,
                    SubjectVersion.schema_id == record.id,
                    SubjectVersion.deleted.is_(False),
                )
            )
            if existing is None:
                latest = session.scalar(
                    select(func.max(SubjectVersion.version)).where(
                        SubjectVersion.subject == subject
                    )
                )
                session.add(
                    SubjectVersion(subject=subject, version=(latest or 0) + 1, schema_id=record.id)
                )
            return record.id

    def schema_text(self, schema_id: int) -> str:
        """The schema registered under ``schema_id``, as JSON text."""
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        with self._sessions() as session:
            record = session.get(SchemaRecord, schema_id)
        if record is None:
            raise SchemaNotFoundError(f"no schema with id {schema_id} in the registry")
        self._by_id[schema_id] = record.schema_json
        return record.schema_json
