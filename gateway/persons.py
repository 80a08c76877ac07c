"""Caseworkers' person lookup: by resident identity number, for a declared purpose.

Every request, allowed or denied, leaves exactly one audit entry, written
before the response; if the entry cannot be written the request fails (503).
Data subjects are audited as blind indexes, never as identifiers.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from exchange import audit, ratelimit
from exchange.blindindex import blind_index
from exchange.crypto import DecryptionError
from exchange.db import transaction, utcnow
from exchange.errors import (
    AuditWriteError,
    AuthenticationError,
    ExchangeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from exchange.keystore import KeyDestroyedError
from exchange.models import SourceRecord
from gateway import security
from gateway.access import REFUSAL_STATUS, identify
from gateway.deps import AppState, RequestIdDep, StateDep
from schemas.standards import BLIND_INDEX_SUFFIX, standard_from_schema
from schemas.validators import normalise_resident_id

router = APIRouter(prefix="/v1", tags=["persons"], dependencies=security.API)

DATASET = "person"
ID_FIELD = "resident_id"
ID_DOMAIN = "cn.resident_id"  # the blind-index domain connectors use for this identifier
READER_ROLES = frozenset({"caseworker"})


class SourceRecordView(BaseModel):
    """One department's record of the person, as the caller may see it."""

    department: str
    source_id: str
    version: int
    updated_at: datetime
    fields: dict[str, Any]
    unreadable_fields: list[str] = []


class PersonView(BaseModel):
    """The person as known to every department that published a record."""

    resident_id: str
    records: list[SourceRecordView]


def mask_identifier(value: str) -> str:
    """First 6 and last 4 characters shown, the rest as asterisks."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def _view(state: AppState, row: SourceRecord) -> SourceRecordView:
    fields = {k: v for k, v in row.payload.items() if not k.endswith(BLIND_INDEX_SUFFIX)}
    unreadable = []
    for spec in _encrypted_fields(state, row.schema_id):
        token = fields.get(spec)
        if not isinstance(token, str):
            continue
        try:
            plain = state.cipher.decrypt(
                row.dataset, spec, f"{row.department}:{row.source_id}", base64.b64decode(token)
            )
            fields[spec] = json.loads(plain)
        except (KeyDestroyedError, DecryptionError):
            # Crypto-shredded (or not ours to read): the value is gone, say so.
            fields[spec] = None
            unreadable.append(spec)
    identifier = fields.get(ID_FIELD)
    if isinstance(identifier, str):
        fields[ID_FIELD] = mask_identifier(identifier)
    return SourceRecordView(
        department=row.department,
        source_id=row.source_id,
        version=row.version,
        updated_at=row.updated_at,
        fields=fields,
        unreadable_fields=unreadable,
    )


def _encrypted_fields(state: AppState, schema_id: int) -> list[str]:
    cached = state.encrypted_fields.get(schema_id)
    if cached is None:
        standard = standard_from_schema(json.loads(state.schema_store.schema_text(schema_id)))
        cached = state.encrypted_fields[schema_id] = [
            f.name for f in standard.fields if f.encrypted
        ]
    return cached


@router.get(
    "/persons/{resident_id}",
    response_model=PersonView,
    summary="Look up a person by resident identity number",
    responses={
        400: {"description": "No purpose stated"},
        401: {"description": "Missing, malformed, wrong, revoked or expired API key"},
        403: {"description": "The caller's role may not look up persons"},
        404: {"description": "No department has published this person"},
        503: {"description": "The audit log could not be written; nothing was disclosed"},
    },
)
def get_person(
    request: Request,
    state: StateDep,
    request_id: RequestIdDep,
    resident_id: Annotated[str, Path(min_length=1, max_length=64)],
    purpose: Annotated[
        str | None, Query(max_length=200, description="The legal basis for the lookup (required).")
    ] = None,
    case_ref: Annotated[str | None, Query(max_length=200, description="Case reference.")] = None,
    x_api_key: Annotated[str | None, Header(description="The caller's API key.")] = None,
) -> PersonView:
    del x_api_key  # documented here; read by gateway.access.identify
    key = state.settings.linkage_key.get_secret_value().encode()
    normalised = normalise_resident_id(resident_id)
    subject = blind_index(key, ID_DOMAIN, normalised)
    decision = audit.Decision(
        request_id=request_id,
        action="person.lookup",
        decision="deny",
        reason="",
        status=500,
        purpose=purpose,
        case_ref=case_ref,
        dataset=DATASET,
        subjects=[subject],
    )
    outcome: PersonView | ExchangeError
    with state.audit_lock, transaction(state.sessions) as session:
        try:
            identity = identify(state, session, request, decision)
            if identity.role not in READER_ROLES:
                raise PermissionDeniedError(f"role {identity.role!r} may not look up persons")
            if not purpose or not purpose.strip():
                raise ValidationError(
                    [
                        (
                            "purpose",
                            "purpose.missing",
                            "state the purpose (legal basis) of the lookup",
                        )
                    ]
                )
            rows = session.scalars(
                select(SourceRecord)
                .where(
                    SourceRecord.dataset == DATASET,
                    SourceRecord.lookup_key == subject,
                    SourceRecord.deleted.is_(False),  # withdrawn by its department
                )
                .order_by(SourceRecord.department, SourceRecord.source_id)
            ).all()
            if not rows:
                raise NotFoundError("no department has published a person with this identifier")
            outcome = PersonView(
                resident_id=mask_identifier(normalised), records=[_view(state, r) for r in rows]
            )
            decision.decision, decision.status, decision.reason = "allow", 200, "records returned"
            decision.fields = sorted({f for r in rows for f in r.payload})
        except NotFoundError as exc:
            outcome = exc
            decision.decision, decision.status, decision.reason = "allow", 404, exc.message
        except (
            AuthenticationError,
            PermissionDeniedError,
            RateLimitedError,
            ValidationError,
        ) as exc:
            outcome = exc
            decision.status = REFUSAL_STATUS.get(type(exc), 400)
            decision.reason = ratelimit.REASON if isinstance(exc, RateLimitedError) else exc.message
        try:
            audit.append(session, decision, at=utcnow())
        except Exception as exc:
            raise AuditWriteError(
                "the audit log could not be written; the request is refused"
            ) from exc
    if isinstance(outcome, ExchangeError):
        raise outcome
    return outcome
