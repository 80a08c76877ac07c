"""The issue's property: for random catalogues, grants and requests, no response ever
contains a field, a dataset or a row that the grants do not allow for the stated
purpose, and every request leaves exactly one audit entry.

Drives the real gateway (TestClient, SQLite) over registry rows stored as the
builder stores them (ciphertext, blind indexes, link keys), and checks each
response against an oracle computed here from the generated grants alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import catalogue
from exchange.access.masking import Style, mask
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.models import AuditEntry, Grant, Purpose
from exchange.identity.apikeys import create_key
from gateway import create_app
from schemas.validators import resident_id_check_character
from tests.support.catalogue import Row, insert_rows
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64


def rid(first17: str) -> str:
    return first17 + resident_id_check_character(first17)


P1, P2, P3 = rid("33010619800507001"), rid("33010819750101002"), rid("11010519900709003")
USCC = "91330106MA2XXXXX1X"


@dataclass(frozen=True)
class Subject:
    row: Row
    key: str | None  # the identifier the row is found by (lookup key), in the clear


POPULATION = [
    Subject(
        Row(
            "person",
            "household_registry",
            "HR-1",
            {
                "resident_id": P1,
                "full_name": "王秀英",
                "family_name": "王",
                "given_name": "秀英",
                "birth_date": "1980-05-07",
                "residence_division_code": "330106",
                "phone": "13800001234",
                "nationality": "CN",
            },
            "P00000000000000000001",
        ),
        P1,
    ),
    Subject(
        Row(
            "person",
            "health",
            "H-2",
            {
                "resident_id": P2,
                "full_name": "陈芳芳",
                "birth_date": "1975-01-01",
                "residence_division_code": "330108",
                "phone": "13911112222",
            },
            "P00000000000000000002",
        ),
        P2,
    ),
    Subject(
        Row(
            "person",
            "household_registry",
            "HR-3",
            {
                "resident_id": P3,
                "full_name": "李伟",
                "birth_date": "1990-07-09",
                "residence_division_code": "110105",
                "phone": "13700003333",
            },
            "P00000000000000000003",
        ),
        P3,
    ),
    Subject(
        Row(
            "benefit_payment",
            "civil_affairs",
            "BP-1",
            {
                "resident_id": P1,
                "payment_id": "PAYMENT-0001",
                "amount_fen": 50000,
                "benefit_type": "MINIMUM_LIVING_ALLOWANCE",
                "paid_on": "2026-02-01",
                "division_code": "330106",
            },
            "P00000000000000000001",
        ),
        P1,
    ),
    Subject(
        Row(
            "benefit_payment",
            "civil_affairs",
            "BP-2",
            {
                "resident_id": P2,
                "payment_id": "PAYMENT-0002",
                "amount_fen": 70000,
                "benefit_type": "CHILD_BENEFIT",
                "division_code": "330108",
            },
            "P00000000000000000002",
        ),
        P2,
    ),
    Subject(
        Row(
            "social_insurance",
            "hrss",
            "SI-1",
            {
                "resident_id": P1,
                "insurance_record_id": "INSURANCE-01",
                "contribution_base_fen": 300000,
                "employment_status": "UNEMPLOYED",
                "insured_division_code": "330106",
            },
            "P00000000000000000001",
        ),
        P1,
    ),
    Subject(
        Row(
            "residence_registration",
            "household_registry",
            "RR-3",
            {
                "resident_id": P3,
                "registration_id": "REGISTRATION-3",
                "division_code": "110105",
                "registered_address": "北京市朝阳区建国路88号",
            },
            "P00000000000000000003",
        ),
        P3,
    ),
    Subject(
        Row(
            "organisation",
            "market_regulation",
            "MR-1",
            {
                "uscc": USCC,
                "legal_name": "杭州秀英商贸有限公司",
                "legal_representative_name": "王秀英",
                "legal_representative_resident_id": P1,
                "registered_division_code": "330106",
                "registered_address": "浙江省杭州市西湖区文三路1号",
            },
            "O00000000000000000001",
        ),
        P1,  # organisation rows are found by their representative's identifier's blind index
    ),
]
DATASETS = sorted({s.row.dataset for s in POPULATION})
FIELDS = {
    d: sorted({k for s in POPULATION if s.row.dataset == d for k in s.row.plain}) for d in DATASETS
}
DEPARTMENTS = sorted({s.row.department for s in POPULATION})
CALLERS = ("civil_affairs", "tax_bureau")
PURPOSES = ("p-one", "p-two", "p-three")
NOW = datetime.now(UTC)
WINDOWS = {
    "current": (NOW - timedelta(days=1), None),
    "expired": (NOW - timedelta(days=10), NOW - timedelta(days=5)),
    "future": (NOW + timedelta(days=5), NOW + timedelta(days=10)),
}


@dataclass(frozen=True)
class GrantPlan:
    department: str
    dataset: str
    fields: dict[str, str]
    purposes: tuple[str, ...]
    constraints: dict[str, str]
    window: str
    revoked: bool


@st.composite
def grant_plans(draw: st.DrawFn, purposes: tuple[str, ...]) -> GrantPlan:
    dataset = draw(st.sampled_from(DATASETS))
    names = draw(st.lists(st.sampled_from(FIELDS[dataset]), min_size=1, unique=True))
    fields = {n: draw(st.sampled_from(["full", "masked"])) for n in names}
    constraints: dict[str, str] = {}
    if catalogue.dataset(dataset).division_field and draw(st.booleans()):
        constraints["division_prefix"] = draw(st.sampled_from(["33", "3301", "330106", "11"]))
    if draw(st.booleans()):
        constraints["department"] = draw(st.sampled_from(DEPARTMENTS))
    return GrantPlan(
        department=draw(st.sampled_from([CALLERS[0]] * 3 + [CALLERS[1]])),
        dataset=dataset,
        fields=fields,
        purposes=tuple(draw(st.lists(st.sampled_from(purposes), min_size=1, unique=True))),
        constraints=constraints,
        # Mostly grants in force, so that most requests have something to show.
        window=draw(st.sampled_from(["current"] * 4 + ["expired", "future"])),
        revoked=draw(st.integers(0, 7)) == 0,
    )


@dataclass(frozen=True)
class Catalogue:
    purposes: tuple[str, ...]
    inactive: frozenset[str]
    grants: tuple[GrantPlan, ...]


@st.composite
def catalogues(draw: st.DrawFn) -> Catalogue:
    purposes = tuple(draw(st.lists(st.sampled_from(PURPOSES), min_size=1, unique=True)))
    inactive: frozenset[str] = frozenset()
    if len(purposes) > 1 and draw(st.integers(0, 3)) == 0:
        inactive = frozenset({draw(st.sampled_from(purposes))})
    grants = tuple(draw(st.lists(grant_plans(purposes), min_size=1, max_size=6)))
    return Catalogue(purposes, inactive, grants)


ROUTES = [
    *(("lookup", p) for p in (P1, P2, P3, rid("44010619900709009"))),
    *(
        ("entity", e)
        for e in (
            "P00000000000000000001",
            "P00000000000000000002",
            "P00000000000000000003",
            "O00000000000000000001",
            "P00000000000000000404",
        )
    ),
    ("organisation", USCC),
    ("search", "王秀英"),
    ("search", "李伟"),
    ("search_born", "王秀英|1980-07-05"),  # day and month swapped
    ("orgsearch", "杭州秀英商贸"),
]
NAMES = ("family_name", "given_name", "full_name")
SEARCHES: dict[str, tuple[str, list[tuple[str, ...]]]] = {
    # route kind: (dataset searched, the fields it needs in full: groups of alternatives)
    "search": ("person", [NAMES]),
    "search_born": ("person", [NAMES, ("birth_date",)]),
    "orgsearch": ("organisation", [("legal_name",)]),
}


def requests_for(
    cat: Catalogue,
) -> st.SearchStrategy[list[tuple[str, tuple[str, str], str | None]]]:
    """Mostly the department and a purpose of a generated grant (so that something may be
    shown); sometimes anything, including no purpose, an unknown or a deactivated one."""
    granted = st.sampled_from(cat.grants).flatmap(
        lambda g: st.tuples(st.just(g.department), st.sampled_from(g.purposes))
    )
    anything = st.tuples(
        st.sampled_from(CALLERS), st.sampled_from([None, *PURPOSES, "never-heard-of"])
    )
    who = st.one_of(granted, granted, granted, anything)
    return st.lists(
        st.tuples(who, st.sampled_from(ROUTES)).map(lambda t: (t[0][0], t[1], t[0][1])),
        min_size=1,
        max_size=4,
    )


# ---- the oracle: computed from the plan alone ------------------------------------------------


def _division(row: Row) -> str | None:
    for name, value in row.plain.items():
        if name.endswith("division_code"):
            return str(value)
    return None


def visible_fields(cat: Catalogue, caller: str, purpose: str, row: Row) -> dict[str, str] | None:
    out: dict[str, str] = {}
    admitted = False
    for g in cat.grants:
        if g.department != caller or g.dataset != row.dataset or purpose not in g.purposes:
            continue
        if g.window != "current" or g.revoked:
            continue
        prefix = g.constraints.get("division_prefix")
        if prefix is not None and not (_division(row) or "").startswith(prefix):
            continue
        if g.constraints.get("department", row.department) != row.department:
            continue
        admitted = True
        for name, mode in g.fields.items():
            if out.get(name) != "full":
                out[name] = mode
    return out if admitted else None


def any_grant(cat: Catalogue, caller: str, purpose: str, dataset: str | None = None) -> bool:
    return any(
        g.department == caller
        and purpose in g.purposes
        and g.window == "current"
        and not g.revoked
        and (dataset is None or g.dataset == dataset)
        for g in cat.grants
    )


def rows_for(route: tuple[str, str]) -> list[Row]:
    kind, value = route
    if kind == "lookup":
        entities = {s.row.entity_id for s in POPULATION if s.key == value}
        return [s.row for s in POPULATION if s.key == value or s.row.entity_id in entities]
    if kind == "entity":
        return [s.row for s in POPULATION if s.row.entity_id == value]
    if kind == "organisation":
        return [s.row for s in POPULATION if s.row.entity_id == "O00000000000000000001"]
    return [s.row for s in POPULATION if s.row.dataset == SEARCHES[kind][0]]


def expected_fields(row: Row, visible: dict[str, str]) -> dict[str, Any]:
    """What the grants show of the row: a ``token`` (keyed by the gateway's key, so not
    computed here) is shown as ``TOKEN``, see :func:`tokens_as_such`."""
    styles = catalogue.dataset(row.dataset).mask_styles

    def masked(name: str) -> Any:
        value = row.plain[name]
        if styles[name].style is Style.TOKEN and isinstance(value, str):
            return TOKEN
        return mask(value, styles[name])

    return {
        name: (row.plain[name] if mode == "full" else masked(name))
        for name, mode in visible.items()
        if name in row.plain
    }


TOKEN = "<token>"


def tokens_as_such(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with each token (``tk_`` and 26 base32 characters) as ``TOKEN``."""
    return {
        k: TOKEN
        if isinstance(v, str) and v.startswith("tk_") and len(v) == 29 and v[3:].isalnum()
        else v
        for k, v in fields.items()
    }


# ---- the property ----------------------------------------------------------------------------


@dataclass
class Env:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    insert_rows(sessions, [s.row for s in POPULATION])
    with transaction(sessions) as session:
        keys = {d: create_key(session, actor=d, department=d, role="caseworker") for d in CALLERS}
    app_settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    try:
        with TestClient(create_app(app_settings)) as client:
            yield Env(client, sessions, keys)
    finally:
        engine.dispose()


def install(env: Env, cat: Catalogue) -> None:
    with transaction(env.sessions) as session:
        session.execute(delete(Grant))
        session.execute(delete(Purpose))
        for code in cat.purposes:
            catalogue.add_purpose(session, code, code)
        for g in cat.grants:
            start, end = WINDOWS[g.window]
            made = catalogue.add_grant(
                session,
                catalogue.GrantSpec(
                    department=g.department,
                    role="caseworker",
                    dataset=g.dataset,
                    fields=g.fields,
                    purposes=g.purposes,
                    row_constraints=g.constraints,
                    valid_from=start,
                    valid_until=end,
                ),
                created_by="hypothesis",
                at=NOW,
            )
            if g.revoked:
                catalogue.revoke_grant(session, made.id, by="hypothesis", at=NOW)
        for code in cat.inactive:
            catalogue.deactivate_purpose(session, code)


def request_of(route: tuple[str, str]) -> tuple[str, dict[str, str] | None]:
    """The path and the JSON body (None: a GET) of a route: identifiers, names and birth
    dates travel in the body."""
    kind, value = route
    return {
        "lookup": ("/v1/persons/lookup", {"resident_id": value}),
        "entity": (f"/v1/entities/{value}", None),
        "organisation": ("/v1/organisations/lookup", {"credit_code": value}),
        "search": ("/v1/search/persons", {"name": value}),
        "search_born": (
            "/v1/search/persons",
            dict(zip(("name", "birth_date"), value.split("|"), strict=False)),
        ),
        "orgsearch": ("/v1/search/organisations", {"name": value}),
    }[kind]


def audit_count(env: Env) -> int:
    with env.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def check(
    env: Env, cat: Catalogue, caller: str, route: tuple[str, str], purpose: str | None
) -> None:
    path, body = request_of(route)
    params: dict[str, str] = {}
    if purpose is not None:
        params["purpose"] = purpose
    params["limit"] = "100"
    before = audit_count(env)
    headers = {"X-API-Key": env.keys[caller]}
    response = (
        env.client.get(path, params=params, headers=headers)
        if body is None
        else env.client.post(path, json=body, params=params, headers=headers)
    )
    assert audit_count(env) == before + 1, "exactly one audit entry per request"
    event(f"{route[0]} -> {response.status_code}")
    with env.sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert entry is not None

    if purpose is None or purpose not in cat.purposes or purpose in cat.inactive:
        assert response.status_code == 400, response.text
        assert (entry.decision, entry.fields) == ("deny", [])
        return
    kind = route[0]
    searched, needs = SEARCHES.get(kind, ("", []))
    if kind in SEARCHES:
        if not any_grant(cat, caller, purpose, searched):
            assert response.status_code == 403, response.text
            return
    elif not any_grant(cat, caller, purpose):
        assert response.status_code == 403, response.text
        assert (entry.decision, entry.fields) == ("deny", [])
        return

    candidates = [
        (row, vis)
        for row in rows_for(route)
        if (vis := visible_fields(cat, caller, purpose, row)) is not None
    ]
    allowed = {(r.dataset, r.department, r.source_id): (r, v) for r, v in candidates}

    if kind in SEARCHES:
        possible: dict[str, str] = {}
        for g in cat.grants:
            if (
                g.department == caller
                and g.dataset == searched
                and purpose in g.purposes
                and g.window == "current"
                and not g.revoked
            ):
                for n, m in g.fields.items():
                    if possible.get(n) != "full":
                        possible[n] = m
        if not all(any(possible.get(n) == "full" for n in group) for group in needs):
            assert response.status_code == 403, response.text
            return
        assert response.status_code == 200, response.text
        records = [hit["record"] for hit in response.json()["results"]]
        for record in records:
            row, vis = allowed[(record["dataset"], record["department"], record["source_id"])]
            assert all(any(vis.get(n) == "full" for n in group) for group in needs)
    else:
        if not allowed:
            assert response.status_code == 404, response.text
            assert entry.fields == []
            return
        assert response.status_code == 200, response.text
        body = response.json()
        records = body["records"]
        assert body["total"] == len(allowed)
        assert len(records) == len(allowed), "every row the grants admit is returned"
        if kind == "entity":
            shown = {
                n
                for key, (r, v) in allowed.items()
                if r.dataset in ("person", "organisation")
                for n in v
                if n in r.plain
            }
            assert set(body["golden_record"]) <= shown

    returned: set[str] = set()
    full_values: list[str] = []
    for record in records:
        key = (record["dataset"], record["department"], record["source_id"])
        assert key in allowed, f"row {key} returned but no grant admits it"
        row, vis = allowed[key]
        assert tokens_as_such(record["fields"]) == expected_fields(row, vis)
        assert not any(n.endswith("_bidx") for n in record["fields"])
        returned.update(f"{row.dataset}.{n}" for n in record["fields"])
        full_values += [str(row.plain[n]) for n, m in vis.items() if m == "full" and n in row.plain]
    assert sorted(returned) == [f for f in entry.fields if not f.startswith("golden.")]
    assert entry.decision == "allow"
    # No plaintext the grants do not show in full appears anywhere in the response.
    text = response.text
    for subject in POPULATION:
        for value in subject.row.plain.values():
            secret = str(value)
            if len(secret) >= 8 and not any(secret in shown for shown in full_values):
                assert secret not in text, f"{secret!r} leaked"
    if kind == "entity":
        assert P1 not in json.dumps([entry.subjects, entry.reason])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cat=catalogues(), data=st.data())
def test_responses_hold_only_what_the_grants_allow(
    env: Env, cat: Catalogue, data: st.DataObject
) -> None:
    install(env, cat)
    requests = data.draw(requests_for(cat))
    for caller, route, purpose in requests:
        check(env, cat, caller, route, purpose)
