"""The administrators' and data stewards' console pages against a gateway on SQLite (no
Kafka): each page is the API's work, its role and its audit action; a refused form is shown
again with each problem against its field; a new key is shown once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.access import resources
from exchange.core.config import Settings
from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
from exchange.core.models import AuditEntry
from exchange.identity.apikeys import create_key
from exchange.identity.identities import create_department
from gateway import create_app
from tests.support.catalogue import add_purpose
from tests.support.keys import LINKAGE_KEY, MASTER_KEY_B64

MLA = "minimum-living-allowance"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Console:
    client: TestClient
    sessions: sessionmaker[Session]
    keys: dict[str, str]

    def sign_in(self, role: str) -> str:
        """Sign in as ``role``; the session's CSRF token."""
        self.client.cookies.clear()
        form = self.client.get("/ui/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        answer = self.client.post(
            "/ui/sign-in",
            data={"api_key": self.keys[role], "csrf_token": token.group(1), "next": "/ui/"},
            follow_redirects=True,
        )
        assert answer.status_code == 200, answer.text
        found = CSRF.search(answer.text)
        assert found is not None
        return found.group(1)

    def last(self, action: str) -> tuple[str, int, str]:
        with self.sessions() as session:
            entry = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == action)
                .order_by(AuditEntry.seq.desc())
            ).first()
            assert entry is not None, f"no entry {action}"
            return entry.decision, entry.status, entry.reason


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    add_purpose(sessions, MLA)
    keys: dict[str, str] = {}
    with transaction(sessions) as session:
        for code in ("civil_affairs", "human_resources"):
            create_department(session, code, code.replace("_", " ").title())
        editor = resources.Editor("central", "civil_affairs", "admin")
        resources.set_resource(
            session,
            editor,
            "social_insurance",
            resources.ResourceChange(
                owner="human_resources", title="Social insurance", frequency="monthly",
                sharing="conditional",
            ),
            at=utcnow(),
        )  # fmt: skip
        for role, (actor, department) in {
            "admin": ("central.admin", "civil_affairs"),
            "caseworker": ("cw", "civil_affairs"),
            "department_admin": ("ca.admin", "civil_affairs"),
            "data_steward": ("hr.steward", "human_resources"),
            "auditor": ("aud", "civil_affairs"),
        }.items():
            keys[role] = create_key(session, actor=actor, department=department, role=role)
    settings = Settings(database_url=url, linkage_key=LINKAGE_KEY, master_key=MASTER_KEY_B64)
    try:
        with TestClient(create_app(settings)) as client:
            yield Console(client, sessions, keys)
    finally:
        engine.dispose()


PAGES: dict[str, dict[str, int]] = {
    "admin": {
        "/ui/admin/departments": 200,
        "/ui/admin/users": 200,
        "/ui/admin/purposes": 200,
        f"/ui/admin/purposes/{MLA}": 200,
        "/ui/admin/purposes/no-such-purpose": 404,
        "/ui/admin/grants": 200,
        "/ui/admin/grants?revoked=1": 200,
        "/ui/admin/grants/new": 200,
        "/ui/admin/grants/new?dataset=organisation": 200,
        "/ui/admin/users/nobody/keys": 404,
        "/ui/catalogue": 200,
        "/ui/catalogue/social_insurance": 200,
        "/ui/catalogue/edit?dataset=social_insurance": 200,
        "/ui/catalogue/edit?dataset=person": 200,  # not registered yet: the admin may
        "/ui/sharing": 200,
        "/ui/sharing/expiring": 200,
        "/ui/sharing/new": 403,  # only a department administrator requests
        "/ui/indicators": 200,
        "/ui/indicators?days=7&department=civil_affairs": 200,
    },
    "department_admin": {
        "/ui/catalogue": 200,
        "/ui/catalogue/edit?dataset=social_insurance": 403,  # another department's
        "/ui/sharing": 200,
        "/ui/sharing/new": 200,
        "/ui/sharing/new?dataset=social_insurance": 200,
        "/ui/sharing/requests/999": 404,
        "/ui/indicators": 200,
        "/ui/indicators?department=human_resources": 403,
        "/ui/admin/grants": 403,
    },
    "data_steward": {
        "/ui/sharing": 200,
        "/ui/indicators": 200,
        "/ui/catalogue/edit?dataset=social_insurance": 403,
    },
    "auditor": {"/ui/indicators": 200, "/ui/sharing": 403},
    "caseworker": {"/ui/catalogue": 200, "/ui/indicators": 403},
}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_page_answers_each_role_as_the_api_would(console: Console, language: str) -> None:
    for role, paths in PAGES.items():
        console.sign_in(role)
        for path, status in paths.items():
            joined = "&" if "?" in path else "?"
            answer = console.client.get(f"{path}{joined}lang={language}")
            assert answer.status_code == status, (role, path, answer.text[-2000:])
            assert 'style="' not in answer.text  # the pages' CSP allows no inline style


def _grant_form(csrf: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "dataset": "household_membership",
        "department": "human_resources",
        "role": "caseworker",
        "fields.relationship_to_head": "full",
        "fields.since": "masked",
        "purposes": MLA,
        **extra,
    }


def test_a_grant_refused_by_the_catalogue_is_shown_against_its_field_then_made(
    console: Console,
) -> None:
    csrf = console.sign_in("admin")
    refused = console.client.post(
        "/ui/admin/grants?lang=en",
        data=_grant_form(csrf, **{"row_constraints.division_prefix": "3301", "note": "kept"}),
    )
    assert refused.status_code == 400
    # The problem next to the division prefix, the form as it was filled in.
    assert 'id="f-row_constraints.division_prefix-error"' in refused.text
    assert "has no division code field" in refused.text
    assert 'value="3301"' in refused.text
    assert 'value="kept"' in refused.text
    assert re.search(r'<option value="masked" selected>', refused.text)
    assert console.last("catalogue.grant.add")[:2] == ("deny", 400)

    made = console.client.post("/ui/admin/grants", data=_grant_form(csrf), follow_redirects=False)
    assert made.status_code == 303
    assert made.headers["location"].startswith("/ui/admin/grants?added=")
    decision, status, reason = console.last("catalogue.grant.add")
    assert (decision, status) == ("allow", 303)
    assert reason.startswith("direct (bootstrapping) grant ")
    listed = console.client.get(made.headers["location"])
    assert "household_membership" in listed.text


def test_a_problem_without_a_control_is_shown_at_the_top(console: Console) -> None:
    csrf = console.sign_in("admin")
    refused = console.client.post(
        "/ui/admin/grants?lang=en", data=_grant_form(csrf, **{"fields.nonexistent": "full"})
    )
    assert refused.status_code == 400
    # No control holds fields.nonexistent: it is shown with the fields.
    assert "has no field &#39;nonexistent&#39;" in refused.text


def test_a_new_key_is_shown_once_and_in_no_address(console: Console) -> None:
    csrf = console.sign_in("admin")
    made = console.client.post(
        "/ui/admin/users/ca.admin/keys", data={"csrf_token": csrf, "label": "laptop"},
        follow_redirects=False,
    )  # fmt: skip
    # ca.admin has no user row in this database (its key was made directly): 404 page.
    assert made.status_code == 404
    with transaction(console.sessions) as session:
        from exchange.identity.identities import create_user

        create_user(session, username="li.na", department="civil_affairs", role="caseworker")
    made = console.client.post(
        "/ui/admin/users/li.na/keys", data={"csrf_token": csrf, "label": "laptop"},
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303
    assert "dx_" not in made.headers["location"]
    assert console.last("admin.key.create")[:2] == ("allow", 303)
    shown = console.client.get(made.headers["location"])
    found = re.search(r'value="(dx_[^"]+)"', shown.text)
    assert found is not None
    key = found.group(1)
    works = console.client.get("/v1/catalogue/resources", headers={"X-API-Key": key})
    assert works.status_code == 200
    again = console.client.get(made.headers["location"])
    assert key not in again.text
    assert "dx_new_key" not in console.client.cookies


def test_a_caseworker_is_refused_and_audited(console: Console) -> None:
    console.sign_in("caseworker")
    refused = console.client.get("/ui/admin/users")
    assert refused.status_code == 403
    assert console.last("admin.user.list")[:2] == ("deny", 403)


def test_a_sharing_request_refused_then_submitted_then_narrowed(console: Console) -> None:
    csrf = console.sign_in("department_admin")
    form = {
        "csrf_token": csrf,
        "dataset": "social_insurance",
        "fields.employment_status": "full",
        "fields.monthly_wage_fen": "masked",
        "purposes": MLA,
        "legal_basis": "",
        "justification": "means test",
        "duration_days": "365",
    }
    refused = console.client.post("/ui/sharing/requests?lang=en", data=form)
    assert refused.status_code == 400
    assert 'id="f-legal_basis-error"' in refused.text
    assert "means test</textarea>" in refused.text
    assert console.last("sharing.request.submit")[:2] == ("deny", 400)

    made = console.client.post(
        "/ui/sharing/requests", data={**form, "legal_basis": "art. 12"}, follow_redirects=False
    )
    assert made.status_code == 303
    number = made.headers["location"].split("/requests/")[1].split("?")[0]

    csrf = console.sign_in("data_steward")
    page = console.client.get(f"/ui/sharing/requests/{number}/narrow")
    assert page.status_code == 200
    wider = console.client.post(
        f"/ui/sharing/requests/{number}/narrow?lang=en",
        data={"csrf_token": csrf, "fields.monthly_wage_fen": "full", "days": "30"},
    )
    assert wider.status_code == 400
    assert 'id="f-fields.monthly_wage_fen-error"' in wider.text
    narrowed = console.client.post(
        f"/ui/sharing/requests/{number}/narrow",
        data={"csrf_token": csrf, "fields.employment_status": "full", "days": "30"},
        follow_redirects=False,
    )
    assert narrowed.status_code == 303
    assert console.last("sharing.request.narrow")[:2] == ("allow", 303)
    shown = console.client.get(narrowed.headers["location"])
    assert "hr.steward" in shown.text


def test_the_indicators_refuse_a_period_against_its_field(console: Console) -> None:
    console.sign_in("data_steward")
    refused = console.client.get("/ui/indicators?days=&from=2026-05-01&to=2026-04-01&lang=en")
    assert refused.status_code == 400
    assert 'id="f-from-error"' in refused.text
    assert console.last("indicators.read")[:2] == ("deny", 400)
    other = console.client.get("/ui/indicators?department=civil_affairs")
    assert other.status_code == 403


def test_the_catalogue_registered_by_the_admin_and_edited_by_its_owner(console: Console) -> None:
    csrf = console.sign_in("admin")
    registered = console.client.post(
        "/ui/catalogue/edit",
        data={
            "csrf_token": csrf,
            "dataset": "benefit_payment",
            "owner": "civil_affairs",
            "title": "Allowance payments",
            "frequency": "monthly",
            "sharing": "conditional",
        },
        follow_redirects=False,
    )
    assert registered.status_code == 303
    assert console.last("catalogue.resource.set")[:2] == ("allow", 303)

    csrf = console.sign_in("department_admin")
    form = {
        "csrf_token": csrf,
        "dataset": "benefit_payment",
        "title": "Allowance payments",
        "frequency": "monthly",
        "sharing": "sometimes",
        "contact": "office@example.gov.cn",
        "field_notes.amount_fen": "in fen (0.01 yuan)",
    }
    refused = console.client.post("/ui/catalogue/edit?lang=en", data=form)
    assert refused.status_code == 400
    assert 'id="f-sharing-error"' in refused.text
    assert "in fen (0.01 yuan)" in refused.text
    saved = console.client.post(
        "/ui/catalogue/edit", data={**form, "sharing": "unconditional"}, follow_redirects=False
    )
    assert saved.status_code == 303
    shown = console.client.get("/ui/catalogue/benefit_payment?lang=en")
    assert "in fen (0.01 yuan)" in shown.text
    assert "unconditional" in shown.text
    # Another department's entry is not theirs to edit.
    assert console.client.get("/ui/catalogue/edit?dataset=social_insurance").status_code == 403


def test_a_refusal_needs_its_reason_and_a_refused_request_cannot_be_renewed(
    console: Console,
) -> None:
    csrf = console.sign_in("department_admin")
    made = console.client.post(
        "/ui/sharing/requests",
        data={
            "csrf_token": csrf,
            "dataset": "social_insurance",
            "fields.employment_status": "full",
            "purposes": MLA,
            "legal_basis": "art. 12",
            "justification": "means test",
            "duration_days": "30",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    number = made.headers["location"].split("/requests/")[1].split("?")[0]

    csrf = console.sign_in("data_steward")
    page = console.client.get(f"/ui/sharing/requests/{number}?lang=en")
    assert "Refuse" in page.text
    bare = console.client.post(
        f"/ui/sharing/requests/{number}/refuse?lang=en", data={"csrf_token": csrf, "reason": ""}
    )
    assert bare.status_code == 400
    assert 'id="f-reason-error"' in bare.text
    refused = console.client.post(
        f"/ui/sharing/requests/{number}/refuse",
        data={"csrf_token": csrf, "reason": "not for this purpose"},
        follow_redirects=False,
    )
    assert refused.status_code == 303
    assert console.last("sharing.request.refuse")[:2] == ("allow", 303)

    csrf = console.sign_in("department_admin")
    renewed = console.client.post(f"/ui/sharing/requests/{number}/renew", data={"csrf_token": csrf})
    assert renewed.status_code == 409
    assert console.last("sharing.request.renew")[:2] == ("deny", 409)
    listed = console.client.get("/ui/sharing?status=refused&lang=en")
    assert f"Request {number}" in listed.text
