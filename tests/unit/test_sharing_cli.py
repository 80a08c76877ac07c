"""`exchange catalogue resource ...` and `exchange sharing ...` on a SQLite database, with
``--as USERNAME``: the user's department and role apply, and every step is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from exchange import audit
from exchange.cli.main import app
from exchange.core.config import load_settings
from exchange.core.db import make_engine, session_factory
from exchange.core.models import AuditEntry, Grant
from tests.support.cli import WIDE, isolate

runner = CliRunner()
MLA = "minimum-living-allowance"


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_request_decide_and_see_from_the_command_line() -> None:
    for code in ("household_registry", "civil_affairs", "health"):
        run("admin", "department", "add", code, "--name", code)
    for user, department, role in (
        ("hr.admin", "household_registry", "department_admin"),
        ("hr.steward", "household_registry", "data_steward"),
        ("ca.admin", "civil_affairs", "department_admin"),
        ("he.steward", "health", "data_steward"),
    ):
        run("admin", "user", "add", user, "--department", department, "--role", role)
    run("catalogue", "purpose-add", MLA, "--title", "Minimum living allowance")
    run(
        "catalogue", "resource", "set", "person", "--owner", "household_registry",
        "--title", "Residents", "--frequency", "daily", "--sharing", "conditional",
    )  # fmt: skip
    run(
        "catalogue", "resource", "set", "person", "--as", "hr.admin",
        "--contact", "data@hr.example", "--note", "phone=as declared",
    )  # fmt: skip
    assert "belongs to department 'household_registry'" in fails(
        "catalogue", "resource", "set", "person", "--as", "ca.admin", "--title", "Mine"
    )
    hourly = fails("catalogue", "resource", "set", "person", "--frequency", "hourly")
    assert "'hourly' is not one of" in hourly
    listed = run("catalogue", "resource", "list")
    assert "household_registry" in listed
    assert "conditional" in listed
    assert "as declared" in run("catalogue", "resource", "show", "person")

    submitted = run(
        "sharing", "request", "--as", "ca.admin", "--dataset", "person",
        "--field", "full_name", "--field", "phone:masked", "--purpose", MLA,
        "--legal-basis", "Measures art. 12", "--justification", "reviews", "--days", "90",
    )  # fmt: skip
    assert "sharing request 1: civil_affairs asks household_registry" in submitted
    assert "submitted" in submitted
    assert "no sharing request 1" in fails("sharing", "approve", "1", "--as", "he.steward")
    narrowed = run(
        "sharing", "narrow", "1", "--as", "hr.steward", "--fields", "full_name", "--days", "30"
    )
    assert "[full_name] for minimum-living-allowance, 30 days; narrowed by hr.steward" in narrowed
    shown = run("sharing", "show", "1", "--as", "ca.admin")
    assert "submit" in shown
    assert "narrow" in shown
    assert "no sharing request 1" in fails("sharing", "show", "1", "--as", "he.steward")
    assert "civil_affairs/caseworker" in run("sharing", "expiring", "--within-days", "31")
    assert "civil_affairs" not in run("sharing", "expiring", "--within-days", "29")
    renewed = run("sharing", "renew", "1", "--as", "ca.admin")
    assert "renews request 1" in renewed
    assert "submitted" in run("sharing", "list", "--as", "hr.steward", "--status", "submitted")
    run("sharing", "withdraw", "2", "--as", "ca.admin")
    assert "reason" in fails("sharing", "refuse", "2", "--as", "hr.steward", "--reason", " ")

    engine = make_engine(load_settings().db_url)
    try:
        with session_factory(engine)() as session:
            [grant] = session.scalars(select(Grant)).all()
            assert (grant.origin, grant.sharing_request_id) == ("request", 1)
            assert grant.fields == {"full_name": "full"}
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            assert audit.verify(session) is None
    finally:
        engine.dispose()
    sharing_steps = [
        (e.action, e.actor, e.department, e.role, e.dataset)
        for e in entries
        if e.action.startswith(("sharing.", "catalogue.resource"))
    ]
    assert sharing_steps == [
        ("catalogue.resource.set", sharing_steps[0][1], None, "operator", "person"),
        ("catalogue.resource.set", "hr.admin", "household_registry", "department_admin", "person"),
        ("sharing.request.submit", "ca.admin", "civil_affairs", "department_admin", "person"),
        ("sharing.request.narrow", "hr.steward", "household_registry", "data_steward", "person"),
        ("sharing.request.renew", "ca.admin", "civil_affairs", "department_admin", "person"),
        ("sharing.request.withdraw", "ca.admin", "civil_affairs", "department_admin", "person"),
    ]
    assert str(sharing_steps[0][1]).startswith("cli")
    assert all("(command line, run by cli" in e.reason for e in entries[-4:])
