"""The gateway's security schemes, as its OpenAPI document declares them.

The credentials themselves are read and checked by :func:`gateway.access.identify`,
inside the transaction that audits the decision, so that every refusal is audited
(FastAPI's own security dependencies would answer some refusals themselves,
unaudited). The schemes are therefore declared in the document only
(:func:`document`), not as dependencies: a route pays nothing for them on each
request.

Every operation accepts an API key and an OIDC bearer token; the schema registry's
also accept HTTP Basic, as Confluent's clients send it. ``/healthz`` and ``/readyz`` are public.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer
from fastapi.security.base import SecurityBase

from gateway.openapi import METHODS
from gateway.problems import REGISTRY_PREFIX

PUBLIC = frozenset({"/healthz", "/readyz"})

api_key = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key, `dx_<key id>_<secret>` (also accepted as `Authorization: "
    "Bearer dx_...`).",
    auto_error=False,
)
bearer = HTTPBearer(
    scheme_name="OidcBearer",
    bearerFormat="JWT",
    description="A JWT from the configured OIDC provider (settings gateway.oidc_*); its "
    "`sub` must be a registered user's OIDC subject.",
    auto_error=False,
)
basic = HTTPBasic(
    scheme_name="BasicApiKey",
    description="HTTP Basic with any user name and the API key as the password (for "
    "Confluent schema registry clients).",
    auto_error=False,
)

API: tuple[SecurityBase, ...] = (api_key, bearer)
REGISTRY: tuple[SecurityBase, ...] = (api_key, bearer, basic)


def accepted(path: str) -> tuple[SecurityBase, ...]:
    """The schemes an operation on ``path`` accepts (none: a public operation)."""
    if path in PUBLIC:
        return ()
    return REGISTRY if path.startswith(REGISTRY_PREFIX) else API


TOO_MANY = (
    "Too many requests: the caller's rate limit, or its address's budget of failed "
    "authentications, is spent (see Retry-After)"
)


def document(doc: dict[str, Any]) -> None:
    """Declare the schemes in ``doc``'s components, and on each operation the ones it
    accepts (any one of them: OpenAPI's list of alternatives). Every operation that
    authenticates may answer 429 (:func:`gateway.access.identify`): it says so. Runs
    before :func:`gateway.problems.document`, which describes the 429's body."""
    schemes = doc.setdefault("components", {}).setdefault("securitySchemes", {})
    for scheme in REGISTRY:
        schemes[scheme.scheme_name] = jsonable_encoder(
            scheme.model, by_alias=True, exclude_none=True
        )
    for path, item in doc.get("paths", {}).items():
        requirements: list[dict[str, list[str]]] = [
            {scheme.scheme_name: []} for scheme in accepted(path)
        ]
        for method, operation in item.items():
            if method in METHODS and requirements:
                operation["security"] = requirements
                operation.setdefault("responses", {}).setdefault("429", {"description": TOO_MANY})
