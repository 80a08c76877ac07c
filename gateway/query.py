"""Caseworkers' lookups: a person, an organisation, a linked entity, for a stated purpose.

Deny by default: the response holds exactly what the caller's grants allow for
the purpose (see :mod:`exchange.access.policy`); a row no grant admits is left out as
if it did not exist. Each request writes exactly one audit entry (see
:mod:`gateway.audited`) naming the purpose, the case, the datasets and fields
returned, and the data subjects as blind references (the blind index of the
identifier asked for, entity ids), never identifiers or names.

The identifier travels in a POST body (``POST /v1/persons/lookup``), never in a URL,
which proxies and access logs keep; the GET forms with the identifier in the path
(:data:`development_router`) are served only in development (:mod:`gateway.urls`).
The purpose must be exactly a catalogue code, and the case reference meet the
purpose's rules (:func:`gateway.audited.stated_purpose`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Executable, and_, bindparam, or_, select, union_all
from sqlalchemy.orm import Session

from exchange import audit
from exchange.access import catalogue
from exchange.access.policy import Access, Mode
from exchange.core.db import utcnow
from exchange.core.driver import DriverSelect
from exchange.core.errors import ConflictError, NotFoundError, ValidationError
from exchange.core.models import Entity, LinkKey, SourceRecord
from exchange.identity.apikeys import Identity
from exchange.registry.entities import is_entity_id
from exchange.registry.joins import IDENTIFIER, Join, principal_anchors, record_joins
from exchange.registry.linkage import authorities, golden_record, trust_ranks
from exchange.registry.modelstore import active_model
from exchange.registry.records import record_ref
from exchange.security.blindindex import blind_index
from gateway.audited import end_reads, pending, run_audited_read, stated_purpose
from gateway.deps import AppState, request_context
from gateway.params import (
    DEFAULT_LIMIT,
    CaseRefParam,
    LimitParam,
    OffsetParam,
    PurposeParam,
    page,
    paging,
)
from gateway.scope import Scope
from gateway.views import (
    Page,
    RecordRow,
    RecordView,
    disclosed_subjects,
    record_view,
    returned_fields,
)
from schemas.validators import normalise_resident_id

router = APIRouter(prefix="/v1", tags=["query"])

PERSON_DOMAIN = "cn.resident_id"  # the blind-index domains connectors use (validator names)
ORGANISATION_DOMAIN = "cn.uscc"


def person_subject(state: AppState, resident_id: str) -> str:
    """The blind index of a resident identity number: how a person is named in the
    registry's lookups and in the audit log, never by the number itself."""
    key = state.settings.linkage_key.get_secret_value().encode()
    return blind_index(key, PERSON_DOMAIN, normalise_resident_id(resident_id))


_LINKED = frozenset({"person", "organisation"})  # datasets whose fields make golden records

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "No purpose stated, or one that is not exactly an active code of the "
        "catalogue; a case reference missing where the purpose requires one, not matching its "
        "pattern, or holding an identity or phone number; a malformed entity id"
    },
    401: {"description": "Missing, malformed, wrong, revoked or expired credentials"},
    403: {"description": "No grant gives the caller's department and role this, for the purpose"},
    404: {"description": "Nothing the caller may see"},
    503: {"description": "The audit log could not be written; nothing was disclosed"},
}


class LookupView(Page):
    """The records of one identifier the caller may see, across datasets."""

    entity_ids: list[str]
    records: list[RecordView]


class GoldenValue(BaseModel):
    value: Any
    source: str | None  # None: members hold different identifiers, none is chosen
    rule: str


class EntityView(Page):
    """A linked entity: its golden record from the fields and records the caller may see."""

    entity_id: str
    kind: str
    golden_record: dict[str, GoldenValue]
    records: list[RecordView]


R = TypeVar("R", bound=RecordRow)
T = TypeVar("T")

# The lookups' reads, built once: Core rows of source_records (no ORM objects).
_RECORDS = SourceRecord.__table__


@cache
def _keyed() -> ColumnElement[bool]:
    """Live records keyed by the ``subject`` parameter. The datasets are named so that the
    (dataset, lookup_key) index is used; they are the shipped standards', fixed for the
    process."""
    return and_(
        _RECORDS.c.dataset.in_(catalogue.available_datasets()),
        _RECORDS.c.lookup_key == bindparam("subject"),
        _RECORDS.c.deleted.is_(False),
    )


_MEMBERS = select(_RECORDS).where(
    _RECORDS.c.entity_id.in_(bindparam("entity_ids", expanding=True)),
    _RECORDS.c.deleted.is_(False),
)


def _visible(
    scope: Scope, rows: Sequence[R], joins: Mapping[int, Join] | None = None
) -> list[tuple[R, dict[str, Mode]]]:
    out = []
    for row in rows:
        join = joins.get(row.id) if joins is not None else None
        fields = scope.fields_for(row, join.how if join is not None else None)
        if fields is not None:
            out.append((row, fields))
    return out


def _joins(session: Session, rows: Sequence[RecordRow], anchors: set[int]) -> dict[int, Join]:
    """How each row joined its entity, from the rows the question named (``anchors``); an
    anchor in no entity joined by the identifier asked for."""
    kinds = {r.entity_id: ("person" if r.entity_id[:1] == "P" else "organisation")
             for r in rows if r.entity_id}  # fmt: skip
    found = record_joins(
        session,
        {r.id: r.entity_id for r in rows},
        anchors,
        lambda kind: active_model(session, kind).prior,
        kinds,
    )
    for rid in anchors:
        found.setdefault(rid, Join(IDENTIFIER))
    return found


def _rows(session: Session, statement: Executable, params: dict[str, Any]) -> list[RecordRow]:
    return cast(list[RecordRow], list(session.connection().execute(statement, params)))


_ROW_COLUMNS = (  # what a RecordRow has
    "id", "dataset", "department", "source_id", "entity_id", "version", "updated_at",
    "schema_id", "payload", "lookup_key",
)  # fmt: skip


# The live records keyed by a subject and every live record of their entities, in one
# statement, each condition served by its index ((dataset, lookup_key), entity_id), read
# on the driver's cursor (exchange.core.driver: it runs on every lookup). PostgreSQL reads the
# whole table for the OR of the two (a hashed subplan filter) and is given a UNION ALL of
# two selects; SQLite serves the OR from both indexes ("MULTI-INDEX OR"), which costs the
# gateway less than the UNION ALL. With the UNION ALL a keyed record of an entity comes
# twice; _keyed_with_members keeps one.
@cache
def _keyed_and_members() -> dict[str, DriverSelect]:
    keyed = _keyed()
    members = and_(
        _RECORDS.c.deleted.is_(False),
        _RECORDS.c.entity_id.in_(
            select(_RECORDS.c.entity_id).where(keyed, _RECORDS.c.entity_id.is_not(None))
        ),
    )
    columns = [_RECORDS.c[name] for name in _ROW_COLUMNS]
    return {
        "sqlite": DriverSelect(select(*columns).where(or_(keyed, members))),
        "postgresql": DriverSelect(
            union_all(select(*columns).where(keyed), select(*columns).where(members))
        ),
    }


def _keyed_with_members(session: Session, subject: str) -> list[RecordRow]:
    """The live records keyed by ``subject`` and those of their entities, in a stable order."""
    dialect = session.get_bind().dialect.name
    statement = _keyed_and_members()["sqlite" if dialect == "sqlite" else "postgresql"]
    rows = {r.id: r for r in statement.all(session, {"subject": subject})}
    return sorted(rows.values(), key=lambda r: (r.dataset, r.department, r.source_id))


def _matched(session: Session, subject: str, ids: list[int]) -> list[RecordRow]:
    """The live records keyed by ``subject`` (its blind index), and those of ``ids``."""
    statement = (
        select(_RECORDS).where(or_(_keyed(), _RECORDS.c.id.in_(ids)), _RECORDS.c.deleted.is_(False))
        if ids
        else select(_RECORDS).where(_keyed())
    )
    return _rows(session, statement, {"subject": subject})


def _with_members(session: Session, matched: Sequence[RecordRow]) -> list[RecordRow]:
    """The matched rows and every live record of their entities, in a stable order."""
    entity_ids = sorted({r.entity_id for r in matched if r.entity_id})
    rows = {r.id: r for r in matched}
    if entity_ids:
        for r in _rows(session, _MEMBERS, {"entity_ids": entity_ids}):
            rows[r.id] = r
    return sorted(rows.values(), key=lambda r: (r.dataset, r.department, r.source_id))


Work = Callable[[Session, Identity], T]


def _lookup(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    *,
    subject: str,
    extra_ids: Callable[[Session], list[int]] | None,
    what: str,
    stated: tuple[str | None, str | None],
    limit: int,
    offset: int,
) -> Response:
    work = _lookup_work(
        state,
        request,
        decision,
        subject=subject,
        extra_ids=extra_ids,
        what=what,
        stated=stated,
        limit=limit,
        offset=offset,
    )
    return run_audited_read(state, request, decision, work)


def _lookup_work(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    *,
    subject: str,
    extra_ids: Callable[[Session], list[int]] | None,
    what: str,
    stated: tuple[str | None, str | None],
    limit: int,
    offset: int,
) -> Work[LookupView]:
    """The work of a lookup by identifier (``subject``: its blind index), as the API's
    route and the console's search run it."""

    def work(session: Session, identity: Identity) -> LookupView:
        purpose = stated_purpose(state, session, decision, *stated)
        scope = Scope.cached(state, session, identity, purpose, utcnow())
        scope.require_any(catalogue.available_datasets())
        # The index is (dataset, lookup_key): naming the datasets lets the database use it
        # (a lookup_key alone would read the whole table on every request).
        extra: list[int] = []
        if extra_ids is None:
            rows = _keyed_with_members(session, subject)
        else:
            extra = extra_ids(session)
            rows = _with_members(session, _matched(session, subject, extra))
        anchors = {r.id for r in rows if r.lookup_key == subject} | set(extra)
        joins = _joins(session, rows, anchors)
        visible = _visible(scope, rows, joins)
        end_reads(session)
        if not visible:
            raise NotFoundError(f"no record of this {what} that the caller may see")
        paged = page(visible, limit, offset)
        shown = [
            record_view(state, row, fields, scope.purpose, joins.get(row.id))
            for row, fields in paged
        ]
        decision.dataset = ",".join(sorted({v.dataset for v in shown}))[:100] or None
        entity_ids = sorted({r.entity_id for r, _ in visible if r.entity_id})
        # The subject asked about, the entities, and everyone whose record is in the answer
        # (a record of another person linked into the same entity included).
        decision.subjects = list(
            dict.fromkeys(
                [
                    subject,
                    *sorted({v.entity_id for v in shown if v.entity_id}),
                    *disclosed_subjects(row for row, _ in paged),
                ]
            )
        )
        decision.fields = returned_fields(shown)
        decision.reason = f"{len(shown)} of {len(visible)} records returned" + (
            f" under grants {_grant_ids(scope, shown)}" if shown else ""
        )
        return LookupView(
            entity_ids=entity_ids,
            records=shown,
            **paging(request, len(visible), limit, offset),
        )

    return work


def _grant_ids(scope: Scope, views: Sequence[RecordView]) -> list[int]:
    ids: set[int] = set()
    for name in {v.dataset for v in views}:
        found = scope.access(name)
        if isinstance(found, Access):
            ids.update(found.grant_ids)
    return sorted(ids)


class PersonLookup(BaseModel):
    """Whom to look up: the identifier travels in the body, never in the URL."""

    resident_id: str = Field(
        min_length=1,
        max_length=64,
        description="The resident identity number (GB 11643-1999); spaces and full-width "
        "characters are tidied.",
    )


class OrganisationLookup(BaseModel):
    """Which organisation to look up: the code travels in the body, never in the URL."""

    credit_code: str = Field(
        min_length=1, max_length=64, description="The unified social credit code (GB 32100)."
    )


def _person_lookup(
    request: Request,
    resident_id: str,
    purpose: str | None,
    case_ref: str | None,
    limit: int,
    offset: int,
) -> Response:
    state, request_id = request_context(request)
    decision, subject = person_lookup_request(state, request_id, resident_id, purpose, case_ref)
    work = person_lookup(state, request, decision, subject, (purpose, case_ref), limit, offset)
    return run_audited_read(state, request, decision, work)


def person_lookup_request(
    state: AppState,
    request_id: str,
    resident_id: str,
    purpose: str | None,
    case_ref: str | None,
) -> tuple[audit.Decision, str]:
    """The audit decision of a person lookup (``person.lookup``) and the identifier's blind
    index, the only way the entry names the person."""
    subject = person_subject(state, resident_id)
    decision = pending(
        request_id, "person.lookup", purpose=purpose, case_ref=case_ref, dataset="person"
    )
    decision.subjects = [subject]
    return decision, subject


def person_lookup(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    subject: str,
    stated: tuple[str | None, str | None],
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Work[LookupView]:
    """The work of ``POST /v1/persons/lookup`` (also the console's search by identifier):
    the records of the person whose identifier's blind index is ``subject``, for the
    stated (purpose, case reference)."""
    return _lookup_work(
        state,
        request,
        decision,
        subject=subject,
        extra_ids=None,
        what="person",
        stated=stated,
        limit=limit,
        offset=offset,
    )


def _organisation_lookup(
    request: Request,
    credit_code: str,
    purpose: str | None,
    case_ref: str | None,
    limit: int,
    offset: int,
) -> Response:
    state, request_id = request_context(request)
    code = normalise_resident_id(credit_code).upper()  # same tidying: spaces, full width
    key = state.settings.linkage_key.get_secret_value().encode()
    subject = blind_index(key, ORGANISATION_DOMAIN, code)
    decision = pending(
        request_id,
        "organisation.lookup",
        purpose=purpose,
        case_ref=case_ref,
        dataset="organisation",
    )
    decision.subjects = [subject]

    def keyed(session: Session) -> list[int]:
        # Organisation records carry the code in the clear and are keyed by it for linkage.
        return list(session.scalars(select(LinkKey.record_id).where(LinkKey.key == "u:" + code)))

    return _lookup(
        state,
        request,
        decision,
        subject=subject,
        extra_ids=keyed,
        what="organisation",
        stated=(purpose, case_ref),
        limit=limit,
        offset=offset,
    )


@router.post(
    "/persons/lookup",
    response_model=LookupView,
    summary="Look up a person by resident identity number",
    description="The records, of any dataset, that the caller's grants allow for the purpose: "
    "found through the identifier's blind index, with the records linked to the same entity. "
    "The identifier is sent in the body, so that no URL (and no proxy's or server's access "
    "log) holds it; the next page is the same request with the `next` URL.",
    responses=ERRORS,
)
def lookup_person(
    request: Request,
    body: PersonLookup,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _person_lookup(request, body.resident_id, purpose, case_ref, limit, offset)


@router.post(
    "/organisations/lookup",
    response_model=LookupView,
    summary="Look up an organisation by unified social credit code",
    description="The records, of any dataset, that the caller's grants allow for the purpose, "
    "of the organisation with this code and of the entity it is linked to. The code is sent "
    "in the body, like a person's identifier.",
    responses=ERRORS,
)
def lookup_organisation(
    request: Request,
    body: OrganisationLookup,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _organisation_lookup(request, body.credit_code, purpose, case_ref, limit, offset)


# The GET forms, with the identifier in the path: served only in development
# (gateway.app includes this router when settings.env is development), never documented.
development_router = APIRouter(prefix="/v1", tags=["query"], include_in_schema=False)


@development_router.get("/persons/{resident_id}", deprecated=True)
def get_person(
    request: Request,
    resident_id: Annotated[str, Path(min_length=1, max_length=64)],
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _person_lookup(request, resident_id, purpose, case_ref, limit, offset)


@development_router.get("/organisations/{credit_code}", deprecated=True)
def get_organisation(
    request: Request,
    credit_code: Annotated[str, Path(min_length=1, max_length=64)],
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _organisation_lookup(request, credit_code, purpose, case_ref, limit, offset)


@router.get(
    "/entities/{entity_id}",
    response_model=EntityView,
    summary="The linked view of an entity",
    description="The golden record built only from the fields and records the caller may see "
    "for the purpose, and the contributing records it may see. An id not of the form of an "
    "entity id (P or O and 20 lower-case hexadecimal digits) is refused (400).",
    responses=ERRORS,
)
def get_entity(
    request: Request,
    entity_id: Annotated[str, Path(min_length=1, max_length=32)],
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    state, request_id = request_context(request)
    decision = entity_request(request_id, entity_id, purpose, case_ref)
    work = entity_view(state, request, decision, entity_id, (purpose, case_ref), limit, offset)
    return run_audited_read(state, request, decision, work)


def entity_request(
    request_id: str, entity_id: str, purpose: str | None, case_ref: str | None
) -> audit.Decision:
    """The audit decision of an entity view (``entity.view``)."""
    decision = pending(
        request_id, "entity.view", purpose=purpose, case_ref=case_ref, dataset="entity"
    )
    # Only an entity id is ever written as the subject: anything else typed here (an
    # identity number) is refused and never stored.
    decision.subjects = [entity_id] if is_entity_id(entity_id) else []
    return decision


def entity_view(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    entity_id: str,
    stated: tuple[str | None, str | None],
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Work[EntityView]:
    """The work of ``GET /v1/entities/{entity_id}`` (also the console's person page): the
    linked view of the entity for the stated (purpose, case reference)."""
    well_formed = is_entity_id(entity_id)

    def work(session: Session, identity: Identity) -> EntityView:
        code = stated_purpose(state, session, decision, *stated)
        if not well_formed:
            raise ValidationError(
                [
                    (
                        "entity_id",
                        "entity.id_invalid",
                        "not an entity id: P or O and 20 lower-case hexadecimal digits",
                    )
                ]
            )
        scope = Scope.cached(state, session, identity, code, utcnow())
        scope.require_any(catalogue.available_datasets())
        entity = session.execute(
            select(Entity.id, Entity.kind).where(Entity.id == entity_id)
        ).one_or_none()
        rows = (
            sorted(
                _rows(session, _MEMBERS, {"entity_ids": [entity_id]}),
                # Sorted here: an ORDER BY makes SQLite walk the (dataset, department,
                # source_id) index over the whole table instead of the entity_id index.
                key=lambda r: (r.dataset, r.department, r.source_id),
            )
            if entity is not None
            else []
        )
        # Joined from the records holding the entity's identifier (its lookup key)
        anchors = principal_anchors((r.id, r.lookup_key) for r in rows)
        joins = _joins(session, rows, anchors) if rows else {}
        visible = _visible(scope, rows, joins)
        end_reads(session)
        if entity is None or not visible:
            raise NotFoundError("no entity with records the caller may see")
        views = [
            record_view(state, row, fields, scope.purpose, joins.get(row.id))
            for row, fields in visible
        ]
        ranks = trust_ranks(state.settings.registry.trusted_departments)
        unlisted = len(ranks) + 1
        sources = [
            (
                (record_ref(v.dataset, v.department, v.source_id), v.fields),
                ranks.get(v.department, unlisted),
                v.updated_at,
            )
            for v in views
            if v.dataset in _LINKED and v.fields
        ]
        rules = authorities(state.settings.registry.authoritative_departments)
        golden = golden_record(sources, kind=entity.kind, authority=rules) if sources else {}
        shown = page(views, limit, offset)
        # The golden record draws on every visible record, not only the page shown.
        decision.subjects = list(
            dict.fromkeys([entity_id, *disclosed_subjects(row for row, _ in visible)])
        )
        decision.dataset = ",".join(sorted({v.dataset for v in views}))[:100]
        decision.fields = sorted(
            set(returned_fields(shown)) | {f"golden.{name}" for name in golden}
        )
        decision.reason = (
            f"entity view: {len(shown)} of {len(views)} records returned "
            f"under grants {_grant_ids(scope, views)}"
        )
        return EntityView(
            entity_id=entity.id,
            kind=entity.kind,
            golden_record={k: GoldenValue(**v) for k, v in golden.items()},
            records=shown,
            **paging(request, len(views), limit, offset),
        )

    return work


# ---------------------------------------------------------------------------------------
# The household view: the applicant's household, its members, and each member's records.
# ---------------------------------------------------------------------------------------

HOUSEHOLD = "household_membership"
# An organisation record is keyed by its legal representative's identifier (its first
# blind index): a member's records of these datasets are the businesses the member runs.
_BUSINESSES = frozenset({"organisation", "business_licence"})


class HouseholdLookup(BaseModel):
    """Whose household to look up: the identifier travels in the body, never in the URL."""

    resident_id: str = Field(
        min_length=1,
        max_length=64,
        description="The resident identity number (GB 11643-1999) of the applicant, a "
        "member of the household; spaces and full-width characters are tidied.",
    )


class MemberView(BaseModel):
    """One member of a household and their records, as the caller may see them."""

    membership: RecordView = Field(
        description="The member's household membership record (relationship to the head, "
        "since when), with the fields the caller's grants allow."
    )
    entity_ids: list[str] = Field(description="The linked entities of the member's records.")
    records: list[RecordView] = Field(
        description="The member's records of every other dataset the caller may see "
        "(found by the member's identifier and the records linked to the same entity), "
        "each saying how it joined."
    )
    businesses: list[RecordView] = Field(
        description="The organisations (and licences) whose legal representative holds the "
        "member's identifier (matched on its blind index), as the caller may see them."
    )


class HouseholdView(BaseModel):
    """A household the applicant is a current member of, with its current members."""

    members: list[MemberView]


class HouseholdsView(BaseModel):
    """The applicant's households."""

    households: list[HouseholdView]


def _current(row: RecordRow) -> bool:
    return not row.payload.get("until")


def _memberships(session: Session, condition: ColumnElement[bool]) -> list[RecordRow]:
    statement = select(_RECORDS).where(
        _RECORDS.c.dataset == HOUSEHOLD, _RECORDS.c.deleted.is_(False), condition
    )
    rows = [r for r in _rows(session, statement, {}) if _current(r)]
    return sorted(rows, key=lambda r: (r.department, r.source_id))


def _shown(
    state: AppState, session: Session, scope: Scope, rows: Sequence[RecordRow], anchors: set[int]
) -> list[tuple[RecordRow, RecordView]]:
    """The rows the caller may see, projected, each with how it joined (from ``anchors``)."""
    if not rows:
        return []
    joins = _joins(session, rows, anchors)
    return [
        (row, record_view(state, row, fields, scope.purpose, joins.get(row.id)))
        for row, fields in _visible(scope, rows, joins)
    ]


@router.post(
    "/households/lookup",
    response_model=HouseholdsView,
    summary="The household view of an applicant: the members and their records",
    description="The households the applicant (by resident identity number, in the body) "
    "is a current member of, found in the household membership records; their current "
    "members; and for each member the records, of any dataset, the caller's grants allow "
    "for the purpose (found through the member's identifier and linked entity, as a person "
    "lookup finds them), and the businesses whose legal representative the member is. "
    "Needs a grant on `household_membership`; a member or a record the caller may not see "
    "is left out. One audit entry names every member disclosed (blind references).",
    responses=ERRORS,
)
def lookup_household(
    request: Request,
    body: HouseholdLookup,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
) -> Response:
    state, request_id = request_context(request)
    decision, subject = household_request(state, request_id, body.resident_id, purpose, case_ref)
    work = household_view(state, decision, subject, (purpose, case_ref))
    return run_audited_read(state, request, decision, work)


def household_request(
    state: AppState,
    request_id: str,
    resident_id: str,
    purpose: str | None,
    case_ref: str | None,
) -> tuple[audit.Decision, str]:
    """The audit decision of a household lookup (``household.lookup``) and the applicant's
    identifier's blind index."""
    subject = person_subject(state, resident_id)
    decision = pending(
        request_id, "household.lookup", purpose=purpose, case_ref=case_ref, dataset=HOUSEHOLD
    )
    decision.subjects = [subject]
    return decision, subject


def household_view(
    state: AppState,
    decision: audit.Decision,
    subject: str,
    stated: tuple[str | None, str | None],
) -> Work[HouseholdsView]:
    """The work of ``POST /v1/households/lookup`` (also the console's household page): the
    households of the applicant whose identifier's blind index is ``subject``."""

    def work(session: Session, identity: Identity) -> HouseholdsView:
        code = stated_purpose(state, session, decision, *stated)
        scope = Scope.cached(state, session, identity, code, utcnow())
        scope.require(HOUSEHOLD)
        most = state.settings.gateway.household_max_members
        own = _memberships(session, _RECORDS.c.lookup_key == subject)
        own = [r for r in own if scope.fields_for(r, "identifier") is not None]
        # A household number is its registry's own: the same number published by another
        # department is another household.
        numbers = sorted({(r.department, str(r.payload.get("household_id"))) for r in own})
        households: list[HouseholdView] = []
        disclosed: list[RecordRow] = []
        entities: list[str] = []
        members_shown: list[str] = []
        for department, number in numbers:
            rows = _memberships(
                session,
                and_(
                    _RECORDS.c.department == department,
                    _RECORDS.c.payload["household_id"].as_string() == number,
                ),
            )
            seen: list[tuple[RecordRow, str, dict[str, Mode]]] = []
            for membership in rows:
                key = membership.lookup_key
                fields = scope.fields_for(membership, "identifier" if key == subject else None)
                if fields is not None and key:
                    seen.append((membership, key, fields))
            if len(seen) > most:
                # A collective household (a school's, a firm's) is not one applicant's family:
                # showing it would disclose hundreds of people for one case.
                raise ConflictError(
                    f"the household has more than {most} current members "
                    "(gateway.household_max_members): look up the members the case needs "
                    "one by one with POST /v1/persons/lookup"
                )
            members: list[MemberView] = []
            for membership, member, fields in seen:
                found = [r for r in _keyed_with_members(session, member) if r.dataset != HOUSEHOLD]
                shown = _shown(
                    state, session, scope, found, {r.id for r in found if r.lookup_key == member}
                )
                records = [(r, v) for r, v in shown if r.dataset not in _BUSINESSES]
                businesses = [(r, v) for r, v in shown if r.dataset in _BUSINESSES]
                member_entities = sorted({r.entity_id for r, _ in records if r.entity_id})
                members.append(
                    MemberView(
                        membership=record_view(state, membership, fields, scope.purpose),
                        entity_ids=member_entities,
                        records=[v for _, v in records],
                        businesses=[v for _, v in businesses],
                    )
                )
                members_shown.append(member)
                entities += member_entities
                disclosed += [membership, *(r for r, _ in records), *(r for r, _ in businesses)]
            if members:
                households.append(HouseholdView(members=members))
        end_reads(session)
        if not households:
            raise NotFoundError("no household of this person that the caller may see")
        views = [
            v
            for h in households
            for m in h.members
            for v in (m.membership, *m.records, *m.businesses)
        ]
        decision.dataset = ",".join(sorted({v.dataset for v in views}))[:100]
        # The applicant, every member shown, their entities, and everyone whose record is in
        # the answer: blind references only.
        decision.subjects = list(
            dict.fromkeys(
                [subject, *members_shown, *sorted(set(entities)), *disclosed_subjects(disclosed)]
            )
        )
        decision.fields = returned_fields(views)
        decision.reason = (
            f"household view: {len(households)} household(s), {len(members_shown)} members, "
            f"{len(views)} records returned under grants {_grant_ids(scope, views)}"
        )
        return HouseholdsView(households=households)

    return work
