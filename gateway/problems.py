"""Errors as ``application/problem+json`` (RFC 9457), in one place.

Domain errors carry their stable code; this module alone maps them to HTTP
statuses. An unexpected error is answered with 500 and the request id, never a
stack trace (the trace goes to the server log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.errors import (
    AuditWriteError,
    AuthenticationError,
    ConflictError,
    ExchangeError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    SchemaNotFoundError,
    ValidationError,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_STATUS: dict[type[ExchangeError], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    SchemaNotFoundError: 404,
    ValidationError: 400,
    AuditWriteError: 503,
}


def status_for(exc: ExchangeError) -> int:
    if isinstance(exc, RegistryError):
        return exc.http_status
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 503 if exc.retriable else 500


def problem(
    status: int, title: str, detail: str, code: str, request: Request | None = None
) -> JSONResponse:
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
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


REGISTRY_PREFIX = "/registry"
REGISTRY_TYPE = "application/vnd.schemaregistry.v1+json"


def _registry_code(exc: ExchangeError, status: int) -> int:
    if isinstance(exc, RegistryError):
        return exc.registry_code
    return {
        401: 40101,
        403: 40301,
        404: 40403 if isinstance(exc, SchemaNotFoundError) else 404,
    }.get(status, 50001 if status >= 500 else status)


def confluent_error(status: int, error_code: int, message: str) -> JSONResponse:
    """An error body as Confluent's schema registry writes it."""
    headers = {"WWW-Authenticate": 'Basic realm="exchange"'} if status == 401 else None
    return JSONResponse(
        {"error_code": error_code, "message": message},
        status_code=status,
        media_type=REGISTRY_TYPE,
        headers=headers,
    )


def _is_registry(request: Request) -> bool:
    return request.url.path.startswith(REGISTRY_PREFIX)


def install(app: FastAPI) -> None:
    @app.exception_handler(ExchangeError)
    async def _domain(request: Request, exc: ExchangeError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("request failed: %s: %s", exc.code, exc.message)
        if _is_registry(request):
            return confluent_error(status, _registry_code(exc, status), exc.message)
        return problem(status, type(exc).__name__, exc.message, exc.code, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg')}")
        if _is_registry(request):
            return confluent_error(
                422,
                42201 if "schema" in "".join(parts) else 422,
                "Unprocessable entity: " + "; ".join(parts),
            )
        return problem(422, "Invalid request", "; ".join(parts), "invalid_request", request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if _is_registry(request):
            return confluent_error(exc.status_code, exc.status_code, str(exc.detail))
        return problem(
            exc.status_code, "HTTP error", str(exc.detail), f"http_{exc.status_code}", request
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(
            500,
            "Internal error",
            "the request could not be completed; quote the request id to the operator",
            "internal_error",
            request,
        )
