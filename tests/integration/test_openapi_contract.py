"""The gateway against its own OpenAPI document, with schemathesis.

Every operation the running gateway publishes in ``/openapi.json`` is tested,
whatever routers it has (nothing here lists them): schemathesis generates
requests from the document and checks each response: never a server error
(5xx), a status code the operation documents, a documented content type, and a
body that matches the documented schema. The gateway is the real one, served
by uvicorn on a SQLite data directory, called with valid API keys of every role
in turn (so each operation is tried both as a role it admits and as ones it
refuses), besides whatever credentials schemathesis generates for documented
headers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exchange.apikeys import create_key
from exchange.config import Settings
from exchange.db import make_engine, migrate, session_factory, transaction
from gateway import create_app
from schemas import SchemaStore
from schemas.standards import load_standard
from tests.support.gateway import running_gateway
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

pytestmark = pytest.mark.integration

ROLES = ("caseworker", "publisher", "auditor", "admin")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Gateway:
    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url = url
        self.keys = keys
        self._turn = itertools.cycle(ROLES)

    def next_key(self) -> str:
        return self.keys[next(self._turn)]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("contract")
    settings = Settings(
        data_dir=data_dir,
        master_key=SecretStr(MASTER_KEY_B64),
        linkage_key=SecretStr(LINKAGE_KEY),
    )
    engine = make_engine(settings.db_url)
    migrate(engine)
    sessions = session_factory(engine)
    # Something for the read operations to find: the Person standard in the schema registry.
    SchemaStore(sessions).register("std.person.v1-value", load_standard("person").schema)
    keys = {}
    with transaction(sessions) as session:
        for role in ROLES:
            keys[role] = create_key(
                session, actor=f"contract.{role}", department="civil_affairs", role=role
            )
    engine.dispose()
    with running_gateway(settings) as url:
        yield Gateway(url, keys)


def _document() -> dict[str, Any]:
    """The gateway's OpenAPI document, from the same factory the server runs (building the
    app opens nothing; the lifespan does). test_the_document_is_the_served_one checks it."""
    return create_app(Settings(data_dir=Path("unused"))).openapi()


# Loaded when the module is imported, so that pytest shows one test per operation.
# (schemathesis.pytest.from_fixture would load it from the running server, but its
# lazy loader does not work with pytest 9.)
schema = schemathesis.openapi.from_dict(_document())


def test_the_document_is_the_served_one(gateway: Gateway) -> None:
    served = httpx.get(f"{gateway.url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(_document()))
    assert served.json()["paths"], "the gateway documents no operation"


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_operation_honours_its_documented_contract(case: Any, gateway: Gateway) -> None:
    headers = dict(case.headers or {})
    # A valid key of the next role, unless schemathesis generated credentials of its own.
    if not {h.lower() for h in headers} & {"x-api-key", "authorization"}:
        headers["X-API-Key"] = gateway.next_key()
    case.call_and_validate(base_url=gateway.url, headers=headers, checks=CHECKS)
