"""`exchange catalogue ...` on a SQLite registry: purposes, grants, validation, audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from exchange import audit
from exchange.cli.catalogue import app
from exchange.core.config import load_settings
from exchange.core.db import make_engine, session_factory
from exchange.core.errors import ValidationError
from exchange.core.models import AuditEntry, Grant
from tests.support.cli import WIDE, isolate

runner = CliRunner()
# A grant to civil affairs caseworkers on the person dataset; a test adds fields and purposes.
GRANT_ADD = [
    "grant-add",
    "--department",
    "civil_affairs",
    "--role",
    "caseworker",
    "--dataset",
    "person",
]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_purposes_and_grants_round_trip_and_are_audited() -> None:
    assert "person" in run("datasets")
    run("purpose-add", "minimum-living-allowance", "--title", "Minimum living allowance")
    assert "minimum-living-allowance" in run("purposes")
    added = run(
        *GRANT_ADD,
        "--field",
        "resident_id:masked",
        "--field",
        "full_name",
        "--purpose",
        "minimum-living-allowance",
        "--constraint",
        "division_prefix=3301",
        "--valid-until",
        "2099-12-31",
    )
    assert "grant 1 added" in added
    listed = run("grants")
    assert "civil_affairs/caseworker" in listed
    assert "division_prefix=3301" in listed
    run("grant-revoke", "1")
    assert "civil_affairs" not in run("grants")
    assert "civil_affairs" in run("grants", "--all")

    engine = make_engine(load_settings().db_url)
    try:
        with session_factory(engine)() as session:
            grant = session.get(Grant, 1)
            assert grant is not None
            assert grant.fields == {"resident_id": "masked", "full_name": "full"}
            assert grant.revoked_by is not None
            assert grant.revoked_by.startswith("cli")
            actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
            assert actions == [
                "catalogue.purpose.add",
                "catalogue.grant.add",
                "catalogue.grant.revoke",
            ]
            assert audit.verify(session) is None
    finally:
        engine.dispose()


def test_an_invalid_grant_names_every_problem_and_stores_nothing() -> None:
    result = runner.invoke(
        app,
        [
            *GRANT_ADD,
            "--field",
            "shoe_size",
            "--purpose",
            "nope",
        ],
        env=WIDE,
    )
    assert isinstance(result.exception, ValidationError)
    message = result.exception.message
    assert "shoe_size" in message
    assert "nope" in message
    engine = make_engine(load_settings().db_url)
    try:
        with session_factory(engine)() as session:
            assert session.scalars(select(Grant)).all() == []
            assert session.scalars(select(AuditEntry)).all() == []
    finally:
        engine.dispose()


def test_a_purposes_case_reference_rule_is_set_listed_and_audited() -> None:
    run(
        "purpose-add",
        "child-benefit",
        "--title",
        "Child benefit",
        "--case-ref-required",
        "--case-ref-pattern",
        "CB-[0-9]{6}",
    )
    assert "required CB-[0-9]{6}" in run("purposes")
    run("purpose-case-ref", "child-benefit", "--optional")
    assert "optional" in run("purposes")
    refused = runner.invoke(
        app, ["purpose-case-ref", "child-benefit", "--required", "--pattern", "CB-[0-9"], env=WIDE
    )
    assert refused.exit_code != 0
    assert isinstance(refused.exception, ValidationError)
    assert refused.exception.reasons[0][1] == "purpose.case_ref_pattern_invalid"
    engine = make_engine(load_settings().db_url)
    try:
        with session_factory(engine)() as session:
            actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
            assert actions == ["catalogue.purpose.add", "catalogue.purpose.case_ref"]
    finally:
        engine.dispose()
