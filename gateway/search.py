"""Fuzzy search: persons by name and birth date, organisations by name, ranked and scored.

The ranking reuses record linkage (:mod:`exchange.registry.linkage`): the query becomes
a link record, each candidate is compared with it field by field (pinyin
homophones, family/given order, day and month swapped, one-character typos),
and the score is the active linkage model's match weight
(:func:`exchange.registry.modelstore.active_model`) over the fields searched on
(log2 likelihood ratio: higher is more alike). A candidate whose score is not
positive is not a match.

A search only looks at rows the caller's grants admit, and only if the grants
show the fields searched on in ``full`` for that row: matching on a masked or
hidden field would tell the caller what the mask hides. With a birth date the
candidates come from the linkage blocking keys (same or swapped date, same name
pinyin and year, same family name and day); without one, every record of the
dataset is scanned, which is slow on a large registry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import audit
from exchange.access.policy import Mode
from exchange.core.db import utcnow
from exchange.core.errors import PermissionDeniedError, ValidationError
from exchange.core.models import LinkKey, SourceRecord
from exchange.identity.apikeys import Identity
from exchange.registry.joins import entity_joins
from exchange.registry.linkage import (
    ORGANISATION,
    PERSON,
    LinkRecord,
    block_keys,
    compare,
    fields_of,
    organisation_record,
    person_record,
)
from exchange.registry.modelstore import active_model
from exchange.registry.records import record_ref
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
from gateway.query import ERRORS
from gateway.scope import Scope
from gateway.views import Page, RecordView, disclosed_subjects, record_view, returned_fields

router = APIRouter(prefix="/v1", tags=["query"])

_PERSON_NAME = ("family_name", "given_name", "full_name")


class SearchHit(BaseModel):
    score: float = Field(description="Linkage match weight over the fields searched on.")
    match: dict[str, str] = Field(description="How each searched field compared (level name).")
    record: RecordView


class SearchView(Page):
    results: list[SearchHit]


def _parse_date(value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text if "-" in text else f"{text[:4]}-{text[4:6]}-{text[6:]}")
    except ValueError as exc:
        # The value is not repeated: a birth date is personal data, and the message is
        # written in the audit entry.
        raise ValidationError(
            [("birth_date", "search.date_invalid", "the birth date is not a date (YYYY-MM-DD)")]
        ) from exc


def _searchable(fields: dict[str, Mode], needed: list[tuple[str, ...]]) -> bool:
    """Every group of ``needed`` has a field shown in full (a group: alternatives)."""
    return all(any(fields.get(n) is Mode.FULL for n in group) for group in needed)


def _search(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    *,
    kind: str,
    name: str,
    birth_date: str | None,
    stated: tuple[str | None, str | None],
    limit: int,
    offset: int,
) -> Response:
    work = search_work(
        state,
        request,
        decision,
        kind=kind,
        name=name,
        birth_date=birth_date,
        stated=stated,
        limit=limit,
        offset=offset,
    )
    return run_audited_read(state, request, decision, work)


def search_work(
    state: AppState,
    request: Request,
    decision: audit.Decision,
    *,
    kind: str,
    name: str,
    birth_date: str | None,
    stated: tuple[str | None, str | None],
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Callable[[Session, Identity], SearchView]:
    """The work of a search (``POST /v1/search/persons`` or ``/organisations``; also the
    console's search by name and birth date), for the stated (purpose, case reference)."""
    dataset = kind  # the person and organisation standards hold the names
    levels = fields_of(kind)

    def work(session: Session, identity: Identity) -> SearchView:
        model = active_model(session, kind)
        code = stated_purpose(state, session, decision, *stated)
        born = _parse_date(birth_date)
        query, needed = _query(kind, name, born)
        scope = Scope.cached(state, session, identity, code, utcnow())
        access = scope.require(dataset)
        if not _searchable(access.possible_fields, needed):
            raise PermissionDeniedError(
                f"the grants of {identity.department}/{identity.role} on {dataset!r} for "
                f"{code!r} do not show the fields searched on in full: "
                + " and ".join("/".join(g) for g in needed)
            )
        hits: list[tuple[float, dict[str, str], SourceRecord, dict[str, Mode]]] = []
        for row in _candidates(session, dataset, query, born is not None):
            fields = scope.fields_for(row)
            if fields is None or not _searchable(fields, needed):
                continue
            # Compare only what the caller may see in full of the fields searched on.
            seen = {
                n: row.payload.get(n)
                for group in needed
                for n in group
                if fields.get(n) is Mode.FULL
            }
            ref = record_ref(row.dataset, row.department, row.source_id)
            make = person_record if kind == PERSON else organisation_record
            candidate: LinkRecord = make(ref, row.department, seen)
            vector = compare(query, candidate)
            score = model.weight(vector)
            if score <= 0:
                continue
            match = {f.name: f.levels[lv] for f, lv in zip(levels, vector, strict=True) if lv}
            hits.append((score, match, row, fields))
        hits.sort(key=lambda h: (-h[0], h[2].dataset, h[2].department, h[2].source_id))
        paged = page(hits, limit, offset)
        joins = entity_joins(
            session,
            {row.entity_id for _, _, row, _ in paged if row.entity_id},
            lambda _kind: model.prior,
        )
        end_reads(session)
        shown = [
            SearchHit(
                score=round(score, 3),
                match=match,
                record=record_view(state, row, fields, scope.purpose, joins.get(row.id)),
            )
            for score, match, row, fields in paged
        ]
        views = [h.record for h in shown]
        decision.subjects = [
            *sorted({v.entity_id for v in views if v.entity_id}),
            *disclosed_subjects(row for _, _, row, _ in paged),
        ]
        decision.fields = returned_fields(views)
        decision.reason = (
            f"search: {len(shown)} of {len(hits)} matches returned under grants {access.grant_ids}"
        )
        return SearchView(results=shown, **paging(request, len(hits), limit, offset))

    return work


def _query(kind: str, name: str, born: date | None) -> tuple[LinkRecord, list[tuple[str, ...]]]:
    """The query as a link record, and the fields it searches on (groups of alternatives)."""
    if kind == PERSON:
        needed: list[tuple[str, ...]] = [_PERSON_NAME]
        if born is not None:
            needed.append(("birth_date",))
        return person_record("query", "", {"full_name": name, "birth_date": born}), needed
    return organisation_record("query", "", {"legal_name": name}), [("legal_name",)]


def _candidates(
    session: Session, dataset: str, query: LinkRecord, blocked: bool
) -> list[SourceRecord]:
    base = select(SourceRecord).where(
        SourceRecord.dataset == dataset, SourceRecord.deleted.is_(False)
    )
    if blocked:
        keys = sorted(block_keys(query))
        if not keys:
            return []
        ids = select(LinkKey.record_id).where(LinkKey.key.in_(keys))
        base = base.where(SourceRecord.id.in_(ids))
    return list(session.scalars(base.order_by(SourceRecord.id)))


class PersonSearch(BaseModel):
    """Whom to search for: the name and birth date travel in the body, never in the URL."""

    name: str = Field(min_length=1, max_length=100, description="The name searched for.")
    birth_date: str | None = Field(
        default=None, max_length=10, description="YYYY-MM-DD (or YYYYMMDD)."
    )


class OrganisationSearch(BaseModel):
    """Which organisation to search for, by name, in the body."""

    name: str = Field(min_length=1, max_length=100, description="The name searched for.")


def _person_search(
    request: Request,
    name: str,
    birth_date: str | None,
    purpose: str | None,
    case_ref: str | None,
    limit: int,
    offset: int,
) -> Response:
    state, request_id = request_context(request)
    decision = person_search_request(request_id, purpose, case_ref)
    return _search(
        state,
        request,
        decision,
        kind=PERSON,
        name=name,
        birth_date=birth_date,
        stated=(purpose, case_ref),
        limit=limit,
        offset=offset,
    )


def person_search_request(
    request_id: str, purpose: str | None, case_ref: str | None
) -> audit.Decision:
    """The audit decision of a person search (``person.search``)."""
    return pending(
        request_id, "person.search", purpose=purpose, case_ref=case_ref, dataset="person"
    )


def _organisation_search(
    request: Request,
    name: str,
    purpose: str | None,
    case_ref: str | None,
    limit: int,
    offset: int,
) -> Response:
    state, request_id = request_context(request)
    decision = pending(
        request_id,
        "organisation.search",
        purpose=purpose,
        case_ref=case_ref,
        dataset="organisation",
    )
    return _search(
        state,
        request,
        decision,
        kind=ORGANISATION,
        name=name,
        birth_date=None,
        stated=(purpose, case_ref),
        limit=limit,
        offset=offset,
    )


@router.post(
    "/search/persons",
    response_model=SearchView,
    summary="Search persons by name and birth date",
    description="Fuzzy and ranked: homophones, swapped family/given names, swapped day and month "
    "and one-character typos still match. Only rows the caller's grants admit, and only if they "
    "show the searched fields in full. The name and birth date are sent in the body, so that no "
    "URL (and no access log) holds them.",
    responses=ERRORS,
)
def search_persons(
    request: Request,
    body: PersonSearch,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _person_search(request, body.name, body.birth_date, purpose, case_ref, limit, offset)


@router.post(
    "/search/organisations",
    response_model=SearchView,
    summary="Search organisations by name",
    description="Fuzzy and ranked on the name without region, brackets and legal form, and its "
    "pinyin. Scans the organisation records the caller's grants admit. The name is sent in "
    "the body.",
    responses=ERRORS,
)
def search_organisations(
    request: Request,
    body: OrganisationSearch,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _organisation_search(request, body.name, purpose, case_ref, limit, offset)


# The GET forms, with the name and birth date in the query string: served only in
# development (gateway.app), never documented.
development_router = APIRouter(prefix="/v1", tags=["query"], include_in_schema=False)

NameParam = Annotated[
    str, Query(min_length=1, max_length=100, description="The name searched for.")
]


@development_router.get("/persons", deprecated=True)
def get_search_persons(
    request: Request,
    name: NameParam,
    birth_date: Annotated[str | None, Query(max_length=10)] = None,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _person_search(request, name, birth_date, purpose, case_ref, limit, offset)


@development_router.get("/organisations", deprecated=True)
def get_search_organisations(
    request: Request,
    name: NameParam,
    purpose: PurposeParam = None,
    case_ref: CaseRefParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    offset: OffsetParam = 0,
) -> Response:
    return _organisation_search(request, name, purpose, case_ref, limit, offset)
