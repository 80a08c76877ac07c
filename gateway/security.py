"""The gateway's security schemes, as OpenAPI documents them.

The credentials themselves are read and checked by :func:`gateway.access.identify`
(inside the transaction that audits the decision); these dependencies only
declare the schemes, so they never refuse a request themselves. FastAPI's own
``HTTPBasic`` would answer a malformed Basic header with its own 401, unaudited
and not in the Confluent error shape the schema registry clients expect.
"""

from __future__ import annotations

from fastapi import Security
from fastapi.params import Depends
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer
from starlette.requests import HTTPConnection


class _ApiKey(APIKeyHeader):
    async def __call__(self, request: HTTPConnection) -> None:
        del request


class _Bearer(HTTPBearer):
    async def __call__(self, request: HTTPConnection) -> None:
        del request


class _Basic(HTTPBasic):
    async def __call__(self, request: HTTPConnection) -> None:
        del request


api_key = _ApiKey(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key, `dx_<key id>_<secret>` (also accepted as `Authorization: "
    "Bearer dx_...`).",
    auto_error=False,
)
bearer = _Bearer(
    scheme_name="OidcBearer",
    bearerFormat="JWT",
    description="A JWT from the configured OIDC provider (settings gateway.oidc_*); its "
    "`sub` must be a registered user's OIDC subject.",
    auto_error=False,
)
basic = _Basic(
    scheme_name="BasicApiKey",
    description="HTTP Basic with any user name and the API key as the password (for "
    "Confluent schema registry clients).",
    auto_error=False,
)

# Dependencies for routers: which schemes their routes accept.
API: list[Depends] = [Security(api_key), Security(bearer)]
REGISTRY: list[Depends] = [Security(api_key), Security(bearer), Security(basic)]
