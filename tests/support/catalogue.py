"""Registry rows, purposes and grants for gateway tests, without Kafka.

Rows go in through :func:`exchange.registry.records.apply` (as the builder does) with
their sensitive fields encrypted by a real :class:`FieldCipher`, the blind
index and lookup key computed as connectors and the builder compute them, and
the linkage blocking keys stored as the entity resolver stores them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue
from exchange.core.db import transaction
from exchange.core.models import Entity, LinkKey, SourceRecord
from exchange.registry.entities import EntityResolver
from exchange.registry.linkage import block_keys, organisation_record, person_record
from exchange.registry.records import Incoming, apply, record_ref
from exchange.security.blindindex import blind_index
from schemas.standards import load_standard
from schemas.store import SchemaStore
from tests.support.keys import LINKAGE_KEY, keys_for


@dataclass
class Row:
    """A department's record in the clear; what the test expects to see of it."""

    dataset: str
    department: str
    source_id: str
    plain: dict[str, Any]
    entity_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def insert_rows(sessions: sessionmaker[Session], rows: list[Row], *, linked: bool = False) -> None:
    """Store ``rows`` as the registry builder would: ciphertext, blind indexes, link keys.

    With ``linked`` the registry's entity resolver links them (as the builder does: keys,
    compared pairs, entities); otherwise each row's ``entity_id`` is set as given."""
    keys = keys_for(sessions)
    store = SchemaStore(sessions)
    linkage_key = LINKAGE_KEY.encode()
    items = []
    for n, row in enumerate(rows):
        wire = load_standard(row.dataset).wire
        schema_id = store.register(wire.subject, wire.schema)
        payload: dict[str, Any] = {}
        lookup = None
        record_key = f"{row.department}:{row.source_id}"
        for spec in wire.fields:
            if spec.blind_index_of:
                plain = row.plain.get(spec.blind_index_of)
                source = wire.field(spec.blind_index_of)
                value = (
                    None
                    if plain is None
                    else blind_index(linkage_key, wire.blind_index_domain(source), str(plain))
                )
                payload[spec.name] = value
                lookup = lookup or value
                continue
            if spec.name not in row.plain:
                continue
            value = row.plain[spec.name]
            if spec.encrypted and value is not None:
                token = keys.cipher.encrypt(
                    row.dataset,
                    spec.name,
                    record_key,
                    json.dumps(value).encode(),
                    period="2026",
                )
                value = base64.b64encode(token).decode()
            payload[spec.name] = value
        if lookup is None:
            ident = next((f for f in wire.identifier_fields if not f.encrypted), None)
            if ident is not None and row.plain.get(ident.name) is not None:
                lookup = blind_index(
                    linkage_key, wire.blind_index_domain(ident), str(row.plain[ident.name])
                )
        payload.update(row.extra)
        items.append(
            Incoming(
                dataset=row.dataset,
                department=row.department,
                source_id=row.source_id,
                content_hash=hashlib.sha256(
                    json.dumps(payload, sort_keys=True).encode()
                ).hexdigest(),
                schema_id=schema_id,
                payload=payload,
                lookup_key=lookup,
                topic=wire.topic,
                partition=0,
                offset=n,
                ingested_at=datetime.now(UTC),
            )
        )
    with transaction(sessions) as session:
        applied = apply(session, items)
        if linked:
            EntityResolver().link(session, applied.changed)
            return
        for row in rows:
            stored = (
                session.query(SourceRecord)
                .filter_by(dataset=row.dataset, department=row.department, source_id=row.source_id)
                .one()
            )
            if row.entity_id:
                if session.get(Entity, row.entity_id) is None:
                    kind = "organisation" if row.dataset in ("organisation",) else "person"
                    session.add(Entity(id=row.entity_id, kind=kind))
                    session.flush()
                session.execute(
                    update(SourceRecord)
                    .where(SourceRecord.id == stored.id)
                    .values(entity_id=row.entity_id)
                )
            if row.dataset in ("person", "organisation"):
                make = person_record if row.dataset == "person" else organisation_record
                ref = record_ref(row.dataset, row.department, row.source_id)
                rec = make(ref, row.department, stored.payload)
                for key in block_keys(rec):
                    session.execute(insert(LinkKey).values(key=key, record_id=stored.id))


def add_purpose(sessions: sessionmaker[Session], code: str, *, active: bool = True) -> None:
    with transaction(sessions) as session:
        catalogue.add_purpose(session, code, code.replace("-", " "))
        if not active:
            catalogue.deactivate_purpose(session, code)


def add_grant(
    sessions: sessionmaker[Session],
    *,
    department: str,
    role: str = "caseworker",
    dataset: str,
    fields: dict[str, str],
    purposes: list[str],
    constraints: dict[str, str] | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> int:
    with transaction(sessions) as session:
        grant = catalogue.add_grant(
            session,
            catalogue.GrantSpec(
                department=department,
                role=role,
                dataset=dataset,
                fields=fields,
                purposes=purposes,
                row_constraints=constraints or {},
                valid_from=valid_from,
                valid_until=valid_until,
            ),
            created_by="test",
            at=datetime.now(UTC),
        )
        return grant.id
