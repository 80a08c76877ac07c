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


def test_smoke_pages(console: Console) -> None:
    pages = {
        "admin": [
            "/ui/admin/departments",
            "/ui/admin/users",
            "/ui/admin/purposes",
            "/ui/admin/grants",
            "/ui/admin/grants/new",
            "/ui/admin/grants/new?dataset=organisation",
            f"/ui/admin/purposes/{MLA}",
            "/ui/admin/users/hr.steward/keys",
            "/ui/catalogue",
            "/ui/catalogue/social_insurance",
            "/ui/catalogue/edit?dataset=social_insurance",
            "/ui/catalogue/edit?dataset=person",
            "/ui/sharing",
            "/ui/sharing/expiring",
            "/ui/indicators",
            "/ui/indicators?days=7&department=civil_affairs",
        ],
        "department_admin": [
            "/ui/catalogue",
            "/ui/catalogue/edit?dataset=social_insurance",
            "/ui/sharing",
            "/ui/sharing/new",
            "/ui/sharing/new?dataset=social_insurance",
            "/ui/indicators",
        ],
        "data_steward": [
            "/ui/sharing",
            "/ui/indicators",
            "/ui/catalogue/edit?dataset=social_insurance",
        ],
    }
    for role, paths in pages.items():
        console.sign_in(role)
        for path in paths:
            answer = console.client.get(path)
            print(role, path, answer.status_code)
            assert answer.status_code in (200, 403, 404), answer.text
