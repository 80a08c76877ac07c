"""Personal data out of URLs: the access log's redaction, and the GET forms refused.

Lookups and searches take identifiers, names and birth dates in a request body
(``POST /v1/persons/lookup``, ``POST /v1/search/persons``, ...), never in the path or
query string, where reverse proxies and access logs keep them. The GET forms with the
identifier in the URL are served only in development (:mod:`gateway.app`); in
production they are answered 404 with the form to use, and nothing is looked up.

Whatever a client sends, the gateway's access log (uvicorn's ``uvicorn.access``
logger) never writes a query string, nor the segment after ``/v1/persons/``,
``/v1/organisations/`` or ``/v1/audit/subjects/person/`` (:func:`loggable_path`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from gateway.access import slot

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "{redacted}"
# Path prefixes whose next segment may be an identifier typed by a client; the named
# forms that hold none are kept.
_IDENTIFYING = ("/v1/persons/", "/v1/organisations/", "/v1/audit/subjects/person/")
_KEPT = frozenset({"lookup"})


def loggable_path(full_path: str) -> str:
    """``full_path`` (path and query string) as the access log may write it: without the
    query string, and with a segment that may be an identifier replaced."""
    path, _, query = full_path.partition("?")
    for prefix in _IDENTIFYING:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            segment, slash, tail = rest.partition("/")
            if segment and segment not in _KEPT:
                path = prefix + REDACTED + slash + tail
            break
    return path + ("?" + REDACTED if query else "")


class AccessLogRedaction(logging.Filter):
    """Rewrites the path of uvicorn's access log records with :func:`loggable_path`.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with the arguments (client address,
    method, path with query string, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], loggable_path(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Add the redaction to uvicorn's access logger (once a process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())


# In production: the GET forms answer 404 naming the POST form; nothing is read, and the
# identifier in the URL is never parsed or written anywhere by the gateway.
production_router = APIRouter(prefix="/v1", include_in_schema=False)

_FORMS = {
    "/persons/{_rest}": 'POST /v1/persons/lookup with {"resident_id": ...} in the body',
    "/organisations/{_rest}": 'POST /v1/organisations/lookup with {"credit_code": ...}',
    "/persons": 'POST /v1/search/persons with {"name": ..., "birth_date": ...}',
    "/organisations": 'POST /v1/search/organisations with {"name": ...}',
    "/audit/subjects/person/{_rest}": 'POST /v1/audit/subjects/person with {"resident_id": ...}',
}


def _refusal(form: str) -> Callable[[Request], None]:
    def refused(request: Request) -> None:
        # As for a path no route serves: nothing was asked of the exchange, no entry.
        slot(request).unaudited = True
        raise HTTPException(
            status_code=404,
            detail="identifiers, names and birth dates are never taken in a URL outside "
            f"development; use {form}",
        )

    return refused


for _path, _form in _FORMS.items():
    production_router.add_api_route(_path, _refusal(_form), methods=["GET"])
