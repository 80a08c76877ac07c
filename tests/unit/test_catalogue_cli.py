"""`exchange catalogue ...` on a SQLite registry: purposes, grants, validation, audit."""

from __future__ import annotations

import os
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

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "var"))


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_purposes_and_grants_round_trip_and_are_audited() -> None:
    assert "person" in run("datasets")
    run("purpose-add", "minimum-living-allowance", "--title", "Minimum living allowance")
    assert "minimum-living-allowance" in run("purposes")
    added = run(
        "grant-add",
        "--department",
        "civil_affairs",
        "--role",
        "caseworker",
        "--dataset",
        "person",
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
            "grant-add",
            "--department",
            "civil_affairs",
            "--role",
            "caseworker",
            "--dataset",
            "person",
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
