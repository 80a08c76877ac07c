"""The OpenAPI document declares, on every operation, the credentials it accepts.

The schemes are declared in the document only (gateway.security), never as
per-request dependencies: these tests hold the document to what the gateway
checks (gateway.access.identify): an API key or an OIDC bearer token everywhere,
HTTP Basic too on the schema registry, nothing on /healthz and /readyz.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchange.core.config import Settings
from gateway import create_app
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('doc')) / 'registry.db'}"
    app = create_app(Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64))
    return app.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_the_three_schemes_are_declared(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "apiKey"
    assert (schemes["ApiKey"]["in"], schemes["ApiKey"]["name"]) == ("header", "X-API-Key")
    assert (schemes["OidcBearer"]["type"], schemes["OidcBearer"]["scheme"]) == ("http", "bearer")
    assert schemes["OidcBearer"]["bearerFormat"] == "JWT"
    assert (schemes["BasicApiKey"]["type"], schemes["BasicApiKey"]["scheme"]) == ("http", "basic")


def test_every_operation_but_healthz_names_the_credentials_it_accepts(
    doc: dict[str, Any],
) -> None:
    ops = operations(doc)
    assert len(ops) > 40
    for path, method, op in ops:
        accepted = [name for requirement in op.get("security", []) for name in requirement]
        if path in ("/healthz", "/readyz"):
            assert accepted == [], path
        elif path.startswith("/registry"):
            assert accepted == ["ApiKey", "OidcBearer", "BasicApiKey"], (method, path)
        else:
            assert accepted == ["ApiKey", "OidcBearer"], (method, path)


def test_the_api_key_is_a_scheme_not_an_ordinary_header_parameter(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        headers = [p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"]
        assert "x-api-key" not in headers, (method, path)
        assert "authorization" not in headers, (method, path)


def test_the_caseworkers_and_auditors_routes_are_covered(doc: dict[str, Any]) -> None:
    lookup = doc["paths"]["/v1/persons/lookup"]["post"]
    entries = doc["paths"]["/v1/audit/entries"]["get"]
    assert {"ApiKey": []} in lookup["security"]
    assert {"ApiKey": []} in entries["security"]
