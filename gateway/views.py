"""What a caseworker sees of a record: the response shapes and the projection into them.

A record is projected field by field from what the policy allows (see
:mod:`exchange.access.policy`): only fields the caller may see are decrypted (a masked
sensitive field is decrypted, then masked); nothing else is ever decrypted. A
field whose data key was destroyed (crypto-shredded) shows ``null`` and is
listed in ``unreadable_fields``. Decrypted values are never logged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from fastapi import Response
from pydantic import BaseModel, Field

from exchange.access import catalogue
from exchange.access.masking import Tokenizer
from exchange.access.policy import Mode, RowFacts, project
from exchange.core.errors import DecryptionError, KeyDestroyedError, ValidationError
from exchange.registry.joins import Join
from exchange.registry.records import record_ref
from exchange.security.blindindex import TOKEN_KEY_DATASET, TOKEN_KEY_PERIOD, mask_token
from gateway.deps import AppState
from schemas.standards import BLIND_INDEX_SUFFIX, standard_from_schema


class RecordRow(Protocol):
    """What the gateway reads of a source record: an ORM ``SourceRecord`` or a Core row of
    its table (the lookups read rows, which costs less)."""

    @property
    def id(self) -> int: ...
    @property
    def dataset(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def entity_id(self) -> str | None: ...
    @property
    def version(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def schema_id(self) -> int: ...
    @property
    def payload(self) -> dict[str, object]: ...
    @property
    def lookup_key(self) -> str | None: ...


class JoinView(BaseModel):
    """How a record joined the entity of the answer (exchange.registry.joins)."""

    how: str = Field(
        description="identifier: by the identifier asked for, or the same identifier link "
        "by link; reviewer: a reviewer confirmed a link on the way; probabilistic: a "
        "model's link on the way (weight and probability say how sure)."
    )
    weight: float | None = Field(
        default=None, description="The weakest probabilistic link's match weight (bits)."
    )
    probability: float | None = Field(
        default=None, description="The model's probability that that link is one person."
    )
    decided_by: str | None = Field(default=None, description="The reviewer, for reviewer.")
    decided_at: datetime | None = Field(default=None, description="When, for reviewer.")


class RecordView(BaseModel):
    """One department's record, as the caller may see it for the stated purpose."""

    dataset: str
    department: str
    source_id: str
    entity_id: str | None
    version: int
    updated_at: datetime
    fields: dict[str, Any] = Field(description="Only the fields the caller's grants allow.")
    masked_fields: list[str] = Field(description="Fields shown masked.")
    unreadable_fields: list[str] = Field(
        default_factory=list, description="Permitted encrypted fields whose key was destroyed."
    )
    joined: JoinView | None = Field(
        default=None,
        description="How the record joined the entity: absent for a record in no entity "
        "or alone in its entity and not asked for.",
    )


class Page(BaseModel):
    """Pagination of a list: ``next`` is the URL of the next page, if there is one."""

    total: int
    limit: int
    offset: int
    next: str | None


def row_facts(row: RecordRow, joined: str | None = None) -> RowFacts:
    """What row constraints look at (the division code field is never encrypted)."""
    division_field = _division_field(row.dataset)
    value = row.payload.get(division_field) if division_field else None
    return RowFacts(
        department=row.department,
        division=value if isinstance(value, str) else None,
        joined=joined,
    )


def _division_field(name: str) -> str | None:
    try:
        return catalogue.dataset(name).division_field
    except ValidationError:  # not a shipped standard: no grant can name it anyway
        return None


def encrypted_fields(state: AppState, schema_id: int) -> list[str]:
    """The fields a record's own (wire) schema says are ciphertext."""
    cached = state.encrypted_fields.get(schema_id)
    if cached is None:
        standard = standard_from_schema(json.loads(state.schema_store.schema_text(schema_id)))
        cached = state.encrypted_fields[schema_id] = [
            f.name for f in standard.fields if f.encrypted
        ]
    return cached


def tokenizer(state: AppState, purpose: str | None) -> Tokenizer | None:
    """What makes the ``token`` masking style's pseudonyms for ``purpose`` (keyed by a data
    key of the keystore; none without a purpose: a token field is then redacted)."""
    if not purpose:
        return None
    cache: dict[str, bytes] = {}

    def token(domain: str, value: str) -> str:
        if "key" not in cache:
            cache["key"] = state.keystore.data_key(TOKEN_KEY_DATASET, TOKEN_KEY_PERIOD).key
        return mask_token(cache["key"], purpose, domain, value)

    return token


def record_view(
    state: AppState,
    row: RecordRow,
    visible: Mapping[str, Mode],
    purpose: str | None = None,
    joined: Join | None = None,
) -> RecordView:
    """Decrypt what ``visible`` allows, then project it (mask in the standard's styles,
    tokens keyed for ``purpose``; leave the rest out)."""
    encrypted = set(encrypted_fields(state, row.schema_id))
    plain: dict[str, Any] = {}
    unreadable: list[str] = []
    for name in visible:
        if name not in row.payload:
            continue
        value = row.payload[name]
        if name in encrypted and isinstance(value, str):
            try:
                clear = state.cipher.decrypt(
                    row.dataset, name, f"{row.department}:{row.source_id}", base64.b64decode(value)
                )
                value = json.loads(clear)
            except (KeyDestroyedError, DecryptionError):
                # Crypto-shredded (or not ours to read): the value is gone, say so.
                value = None
                unreadable.append(name)
        plain[name] = value
    ds = catalogue.dataset(row.dataset)
    fields = (
        project(
            plain,
            visible,
            ds.mask_styles,
            domains=ds.token_domains,
            tokenizer=tokenizer(state, purpose),
        )
        or {}
    )
    return RecordView(
        dataset=row.dataset,
        department=row.department,
        source_id=row.source_id,
        entity_id=row.entity_id,
        version=row.version,
        updated_at=row.updated_at,
        fields=fields,
        masked_fields=sorted(n for n in fields if visible[n] is not Mode.FULL),
        unreadable_fields=sorted(unreadable),
        joined=JoinView(**joined.to_dict()) if joined is not None else None,
    )


def returned_fields(views: list[RecordView]) -> list[str]:
    """``dataset.field`` of every field returned, for the audit entry."""
    return sorted({f"{v.dataset}.{name}" for v in views for name in v.fields})


def json_response(view: BaseModel) -> Response:
    """``view`` as FastAPI would send it for a route's ``response_model``, minus a thread hop.

    A plain ``def`` route that returns a model has FastAPI validate it once more, in the
    threadpool, before serialising it: a second hop through the threadpool for every
    request. A :class:`Response` is sent as it is. The route keeps its ``response_model``,
    which is what its OpenAPI schema documents."""
    return Response(view.model_dump_json(by_alias=True), media_type="application/json")


def record_subjects(row: RecordRow) -> list[str]:
    """Whom a record is about, as the audit log names data subjects: the blind index of
    every identifier it holds (``<field>_bidx``: a person's resident id, a legal
    representative's, ...) and its lookup key (an organisation's code, indexed), or, for
    a record without an identifier, its source reference (``dataset/department/source_id``)."""
    found = [
        value
        for name, value in row.payload.items()
        if name.endswith(BLIND_INDEX_SUFFIX) and isinstance(value, str) and value
    ]
    if row.lookup_key:
        found.append(row.lookup_key)
    return list(dict.fromkeys(found)) or [record_ref(row.dataset, row.department, row.source_id)]


def disclosed_subjects(rows: Iterable[RecordRow]) -> list[str]:
    """The data subjects of every record in an answer (:func:`record_subjects`), each once."""
    return list(dict.fromkeys(s for row in rows for s in record_subjects(row)))
