"""Query parameters every caseworker route takes: purpose, case reference, pagination."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

PurposeParam = Annotated[
    str | None,
    Query(
        max_length=100,
        description="The purpose (legal basis) of the request: a code of the catalogue. Required.",
    ),
]
CaseRefParam = Annotated[
    str | None, Query(max_length=200, description="The case the request is made for.")
]
# The largest integer a database column holds (a signed 64-bit BIGINT, and SQLite's INTEGER):
# a larger number in a path or query is refused as invalid (422), never sent to the driver,
# which would fail with an overflow (500).
SQL_INT_MAX = 2**63 - 1

LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
OffsetParam = Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="Items to skip.")]


def page(items: Sequence[T], limit: int, offset: int) -> list[T]:
    return list(items[offset : offset + limit])


def next_url(request: Request, total: int, limit: int, offset: int) -> str | None:
    """The URL of the next page, or None on the last page."""
    if offset + limit >= total:
        return None
    return str(request.url.include_query_params(offset=offset + limit, limit=limit))


def paging(request: Request, total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next": next_url(request, total, limit, offset),
    }
