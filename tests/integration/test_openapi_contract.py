"""The gateway against its own OpenAPI document, with schemathesis.

Every operation the running gateway publishes in ``/openapi.json`` is tested,
whatever routers it has (nothing here lists them): schemathesis generates
requests from the document and checks each response: never a server error
(5xx), a status code the operation documents, a documented content type, and a
body that matches the documented schema. The gateway is the real one, served
by uvicorn on a SQLite data directory holding two persons published through a
connector run and the registry builder (the session's Kafka broker) and a grant
to see them, called with valid API keys of every role in turn (so each
operation is tried both as a role it admits and as ones it refuses), besides
whatever credentials schemathesis generates for documented headers. Generated
identifiers are never found, so one case looks up a published person and
checks the 200 body against its documented schema.
"""

from __future__ import annotations

import itertools
import json
import uuid
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
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import Department, Grant, Purpose
from exchange.identity.apikeys import create_key
from exchange.local.broker import LocalKafka
from gateway import create_app
from schemas.standards import load_standard
from schemas.validators import resident_id_check_character
from tests.support.examples import CONTACT_FIELDS, household_definition
from tests.support.gateway import running_gateway
from tests.support.kafka import end_offsets
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64
from tests.support.publishing import publish
from tests.support.registry import build_department

pytestmark = pytest.mark.integration

ROLES = ("caseworker", "publisher", "auditor", "admin", "department_admin", "data_steward")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


PURPOSE = "minimum-living-allowance-eligibility"
CASEWORKER_DEPARTMENT = "civil_affairs"
PEOPLE = [(f"C{i}", rid) for i, rid in enumerate(("11010519491231002", "44010619900709002"))]


class Gateway:
    def __init__(self, url: str, keys: dict[str, str], person: str) -> None:
        self.url = url
        self.keys = keys
        self.person = person  # the resident id of a published person
        self._turn = itertools.cycle(ROLES)

    def next_key(self) -> str:
        return self.keys[next(self._turn)]


def _publish_people(
    kafka: LocalKafka, sessions: sessionmaker[Session], folder: Path, department: str
) -> list[str]:
    """Publish PEOPLE through a connector run and build them into the registry."""
    ids = [first17 + resident_id_check_character(first17) for _, first17 in PEOPLE]
    rows = ["local_id,id_number,surname,given,dob,sex"]
    rows += [
        f"{local},{rid},王,芳,{rid[6:10]}-{rid[10:12]}-{rid[12:14]},2"
        for (local, _), rid in zip(PEOPLE, ids, strict=True)
    ]
    (folder / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    household_definition(
        folder,
        connector_id=f"contract-{department}",
        department=department,
        csv="people.csv",
        without=CONTACT_FIELDS,
    )
    start = end_offsets(kafka.bootstrap_servers, "std.person.v1")
    report = publish(kafka.bootstrap_servers, sessions, folder / "connector.toml")
    assert (report.published, report.rejected) == (len(PEOPLE), 0)
    build_department(kafka.bootstrap_servers, sessions, department, len(PEOPLE), start)
    return ids


def _grant(sessions: sessionmaker[Session], department: str) -> None:
    """The access catalogue's rows for a caseworker's person lookups for PURPOSE."""
    fields = {f.name: "full" for f in load_standard("person").fields}
    fields["resident_id"] = "masked"
    with transaction(sessions) as session:
        for code in (CASEWORKER_DEPARTMENT, department):
            session.merge(Department(code=code, name=code))
        session.merge(Purpose(code=PURPOSE, title="Minimum living allowance review"))
        session.add(
            Grant(
                grantee_department=CASEWORKER_DEPARTMENT,
                grantee_role="caseworker",
                dataset="person",
                fields=fields,
                purposes=[PURPOSE],
                row_constraints={},
                created_by="contract-test",
            )
        )


@pytest.fixture(scope="module")
def gateway(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("contract")
    settings = Settings(
        data_dir=data_dir,
        master_key=SecretStr(MASTER_KEY_B64),
        linkage_key=SecretStr(LINKAGE_KEY),
    )
    engine = make_engine(settings.db_url)
    migrate(engine)
    sessions = session_factory(engine)
    department = f"contract_{uuid.uuid4().hex[:8]}"
    # Something for the read operations to find: a person, published the real way (which
    # registers the Person standard in the schema registry), and a grant to see it.
    ids = _publish_people(kafka, sessions, data_dir, department)
    _grant(sessions, department)
    keys = {}
    with transaction(sessions) as session:
        for role in ROLES:
            keys[role] = create_key(
                session, actor=f"contract.{role}", department=CASEWORKER_DEPARTMENT, role=role
            )
    engine.dispose()
    with running_gateway(settings) as url:
        yield Gateway(url, keys, ids[0])


def _document() -> dict[str, Any]:
    """The gateway's OpenAPI document, from the same factory the server runs (building the
    app opens nothing; the lifespan does). test_the_document_is_the_served_one checks it."""
    return create_app(Settings(data_dir=Path("unused"))).openapi()


# Loaded when the module is imported, so that pytest shows one test per operation.
# (schemathesis.pytest.from_fixture would load it from the running server, but its
# lazy loader does not work with pytest 9.)
schema = schemathesis.openapi.from_dict(_document())


def test_a_found_person_matches_the_documented_schema(gateway: Gateway) -> None:
    """Generated identifiers are never found: this case is the lookup that succeeds."""
    case = schema["/v1/persons/lookup"]["POST"].Case(
        body={"resident_id": gateway.person},
        media_type="application/json",
        query={"purpose": PURPOSE, "case_ref": "CONTRACT-1"},
        headers={"X-API-Key": gateway.keys["caseworker"]},
    )
    response = case.call_and_validate(base_url=gateway.url, checks=CHECKS)
    assert response.status_code == 200, response.text
    assert response.json()["records"]


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
