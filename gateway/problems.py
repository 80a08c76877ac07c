"""Errors as ``application/problem+json`` (RFC 9457), in one place.

Domain errors carry their stable code and know nothing of HTTP; this module alone
maps them to HTTP statuses (:data:`STATUS`, used by the exception handler and by the
routes that audit their own answer), and under ``/registry`` answers them with
Confluent's body (:mod:`gateway.confluent` adds its ``error_code``). An unexpected
error is answered with 500 and the request id, never a stack trace (the trace goes to
the server log). :func:`install` also makes the OpenAPI document say so: every
documented error response of an operation is described as a problem (a Confluent
error body under ``/registry``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.core.errors import (
    AuditWriteError,
    AuthenticationError,
    AuthThrottledError,
    ConfigNotFoundError,
    ConflictError,
    DisclosureRuleError,
    ExchangeError,
    IncompatibleSchemaError,
    InvalidCompatibilityLevelError,
    InvalidModeError,
    InvalidSchemaError,
    InvalidVersionError,
    ModeNotFoundError,
    NotFoundError,
    NotReadyError,
    OperationNotPermittedError,
    PermissionDeniedError,
    RateLimitedError,
    ReferenceExistsError,
    SchemaNotFoundError,
    SchemaNotInSubjectError,
    SubjectNotFoundError,
    SubjectNotSoftDeletedError,
    SubjectSoftDeletedError,
    ValidationError,
    VersionNotFoundError,
    VersionNotSoftDeletedError,
    VersionSoftDeletedError,
)
from gateway import confluent
from gateway.confluent import RegistryErrorBody
from gateway.openapi import METHODS

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description="urn:exchange:error:<code>")
    title: str
    status: int
    detail: str = Field(description="What went wrong, for a person to read.")
    code: str = Field(description="The stable error code (docs/errors.md).")
    request_id: str | None = Field(default=None, description="Quote it to the operator.")


# The HTTP status of each error, by class (a subclass inherits its parent's); any other
# error is answered 503 if it is retriable, else 500. docs/errors.md shows this table.
STATUS: dict[type[ExchangeError], int] = {
    ValidationError: 400,
    DisclosureRuleError: 422,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    SchemaNotFoundError: 404,
    SubjectNotFoundError: 404,
    VersionNotFoundError: 404,
    SchemaNotInSubjectError: 404,
    SubjectSoftDeletedError: 404,
    SubjectNotSoftDeletedError: 404,
    VersionSoftDeletedError: 404,
    VersionNotSoftDeletedError: 404,
    ConfigNotFoundError: 404,
    ModeNotFoundError: 404,
    ConflictError: 409,
    IncompatibleSchemaError: 409,
    InvalidSchemaError: 422,
    InvalidVersionError: 422,
    InvalidCompatibilityLevelError: 422,
    InvalidModeError: 422,
    OperationNotPermittedError: 422,
    ReferenceExistsError: 422,
    RateLimitedError: 429,
    AuthThrottledError: 429,
    AuditWriteError: 503,
    NotReadyError: 503,
}


def status_for(exc: ExchangeError) -> int:
    """The HTTP status the gateway answers ``exc`` with."""
    for kind in type(exc).__mro__:
        status = STATUS.get(kind)
        if status is not None:
            return status
    return 503 if exc.retriable else 500


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "type": f"urn:exchange:error:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    request_id = getattr(request.state, "request_id", None) if request else None
    if request_id:
        body["request_id"] = request_id
    headers = dict(headers or {})
    if request is not None and PAGES is not None and request.url.path.startswith(PAGES_PREFIX):
        # The web console answers its errors as pages, in the user's language.
        return PAGES(request, status, detail, code, headers)
    if status == 401:
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


# The web console's error page (gateway.console installs it): the same errors, as HTML.
PageRenderer = Callable[[Request, int, str, str, dict[str, str]], Response]
PAGES: PageRenderer | None = None
PAGES_PREFIX = "/ui/"


REGISTRY_PREFIX = "/registry"


def _headers(exc: ExchangeError) -> dict[str, str] | None:
    if isinstance(exc, RateLimitedError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    return None


def is_registry(request: Request) -> bool:
    """Whether the request is one of the schema registry API's (under /registry)."""
    return request.url.path.startswith(REGISTRY_PREFIX)


def domain_problem(request: Request, exc: ExchangeError) -> Response:
    """The answer to a domain error: what the gateway's handler of ``ExchangeError`` sends,
    for routes that answer their errors themselves."""
    status = status_for(exc)
    if status >= 500:
        log.error("request failed: %s: %s", exc.code, exc.message)
    headers = _headers(exc)
    if is_registry(request):
        return confluent.error_response(
            status, confluent.error_code(exc, status), exc.message, headers
        )
    return problem(status, type(exc).__name__, exc.message, exc.code, request, headers)


def note_error(request: Request, reason: str) -> None:
    """Tell the request's audit slot (``gateway.access.AuditSlot``) what error it is answered
    with, for its audit entry."""
    found = getattr(request.state, "audit", None)
    if found is not None:
        found.reason = reason


_WHERE = frozenset({"body", "query", "path", "header", "cookie"})
HIDDEN_KEY = "*"


def _known_names(app: FastAPI) -> frozenset[str]:
    """Every name the API declares (the properties of its models, its parameters): the
    parts of an error's location that may be told back. Worked out once per app."""
    found: frozenset[str] | None = getattr(app.state, "problem_names", None)
    if found is None:
        names: set[str] = set(_WHERE)

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                properties = node.get("properties")
                if isinstance(properties, dict):
                    names.update(str(k) for k in properties)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    if isinstance(item, dict) and isinstance(item.get("name"), str):
                        names.add(item["name"])
                    walk(item)

        walk(app.openapi())
        found = app.state.problem_names = frozenset(names)
    return found


def _loc_part(part: object, known: frozenset[str]) -> str:
    """A part of a validation error's location as it may be told back and audited: a list
    index or a declared name; anything else (a key of a free-form object, such as
    ``fields`` or ``field_notes``, which a careless client may fill with an identity
    number or a name) is ``*``."""
    if isinstance(part, int) or (isinstance(part, str) and part in known):
        return str(part)
    return HIDDEN_KEY


def install(app: FastAPI) -> None:
    @app.exception_handler(ExchangeError)
    async def _domain(request: Request, exc: ExchangeError) -> Response:
        note_error(request, exc.message)
        return domain_problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        known = _known_names(app)
        parts = []
        for err in exc.errors():
            loc = ".".join(_loc_part(p, known) for p in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg')}")
        note_error(request, "invalid request: " + "; ".join(parts))
        if is_registry(request):
            return confluent.error_response(
                422,
                confluent.ERROR_CODES[InvalidSchemaError] if "schema" in "".join(parts) else 422,
                "Unprocessable entity: " + "; ".join(parts),
            )
        return problem(422, "Invalid request", "; ".join(parts), "invalid_request", request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        note_error(request, str(exc.detail))
        if is_registry(request):
            return confluent.error_response(exc.status_code, exc.status_code, str(exc.detail))
        return problem(
            exc.status_code, "HTTP error", str(exc.detail), f"http_{exc.status_code}", request
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return problem(
            500,
            "Internal error",
            "the request could not be completed; quote the request id to the operator",
            "internal_error",
            request,
        )


def document(doc: dict[str, Any]) -> None:
    """Describe every documented error response (status >= 400) as the body this module
    sends for it, document the 400 of a body that cannot be parsed, and drop FastAPI's
    validation-error schemas that no longer apply."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, RegistryErrorBody):
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    for path, item in doc.get("paths", {}).items():
        registry = path.startswith(REGISTRY_PREFIX)
        media, name = (
            (confluent.MEDIA_TYPE, "RegistryErrorBody") if registry else (PROBLEM, "Problem")
        )
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation and "400" not in responses:
                # FastAPI answers 400 itself when a body cannot be parsed at all.
                responses["400"] = {"description": "The body could not be parsed as JSON"}
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {
                        media: {"schema": {"$ref": f"#/components/schemas/{name}"}}
                    }
    text = repr(doc.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}'" not in text:
            schemas.pop(unused, None)
