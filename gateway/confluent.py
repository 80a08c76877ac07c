"""Errors of the schema registry API as Confluent's schema registry writes them.

Under ``/registry`` an error is answered with Confluent's body,
``{"error_code": 40401, "message": "..."}``, in Confluent's media type, because its
clients (``SchemaRegistryClient``, the Avro serializers) read ``error_code``. The HTTP
status is the one :func:`gateway.problems.status_for` gives every error; this module
adds only Confluent's ``error_code``: by class for the schema registry's own errors
(:data:`ERROR_CODES`, Confluent's numbers, as karapace keeps them), else derived from
the status. The domain errors know neither.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from exchange.core import errors
from exchange.core.errors import ExchangeError

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"

# Confluent's error_code of each error, by class (a subclass inherits its parent's).
ERROR_CODES: dict[type[ExchangeError], int] = {
    errors.RegistryError: 50001,
    errors.SubjectNotFoundError: 40401,
    errors.VersionNotFoundError: 40402,
    errors.SchemaNotInSubjectError: 40403,
    errors.SchemaNotFoundError: 40403,
    errors.SubjectSoftDeletedError: 40404,
    errors.SubjectNotSoftDeletedError: 40405,
    errors.VersionSoftDeletedError: 40406,
    errors.VersionNotSoftDeletedError: 40407,
    errors.ConfigNotFoundError: 40408,
    errors.ModeNotFoundError: 40409,
    errors.IncompatibleSchemaError: 409,
    errors.InvalidSchemaError: 42201,
    errors.InvalidVersionError: 42202,
    errors.InvalidCompatibilityLevelError: 42203,
    errors.InvalidModeError: 42204,
    errors.OperationNotPermittedError: 42205,
    errors.ReferenceExistsError: 42206,
    errors.RateLimitedError: 42901,
}
# Any other error: Confluent's codes for a refused credential or role, 50001 for a server
# error, else the HTTP status itself.
_BY_STATUS = {401: 40101, 403: 40301}


class RegistryErrorBody(BaseModel):
    """An error of the schema registry API, as Confluent's schema registry writes it."""

    error_code: int = Field(description="Confluent's error code, e.g. 40401.")
    message: str


def error_code(exc: ExchangeError, status: int) -> int:
    """Confluent's ``error_code`` for ``exc``, answered with HTTP ``status``."""
    for kind in type(exc).__mro__:
        code = ERROR_CODES.get(kind)
        if code is not None:
            return code
    return _BY_STATUS.get(status, 50001 if status >= 500 else status)


def error_response(
    status: int, error_code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error body as Confluent's schema registry writes it."""
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="exchange"'
    return JSONResponse(
        {"error_code": error_code, "message": message},
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers or None,
    )


__all__ = [
    "ERROR_CODES",
    "MEDIA_TYPE",
    "RegistryErrorBody",
    "error_code",
    "error_response",
]
