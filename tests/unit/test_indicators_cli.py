"""`exchange indicators` and `exchange indicators report` on a SQLite registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.main import app
from exchange.core.db import transaction
from exchange.core.models import ConnectorRun
from tests.support.cli import WIDE, cli_database, isolate

runner = CliRunner()
NOVEMBER = ["--from", "2026-11-01", "--to", "2026-12-01"]


@pytest.fixture(autouse=True)
def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)
    with cli_database() as (_, sessions), transaction(sessions) as session:
        for run_id, department, published, rejected in [
            ("r1", "household_registry", 120, 3),
            ("r2", "civil_affairs", 40, 0),
        ]:
            session.add(
                ConnectorRun(
                    run_id=run_id,
                    connector_id=run_id,
                    department=department,
                    dataset="person",
                    status="complete",
                    read=published + rejected,
                    published=published,
                    rejected=rejected,
                    reasons={"date.invalid": rejected} if rejected else {},
                    started_at=datetime(2026, 11, 5, tzinfo=UTC),
                )
            )


def run(*args: str) -> str:
    result = runner.invoke(app, ["indicators", *args], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_table_csv_and_json_print_the_same_figures() -> None:
    table = run(*NOVEMBER)
    assert "Records published and rejected" in table
    assert "household_registry" in table
    assert "date.invalid: 3" in table
    rows = run(*NOVEMBER, "--format", "csv").splitlines()
    assert "publishing,household_registry,person,,published,120" in rows
    assert "publishing,civil_affairs,person,,published,40" in rows
    found = json.loads(run(*NOVEMBER, "--format", "json", "--department", "civil_affairs"))
    assert [(p["department"], p["published"]) for p in found["publishing"]] == [
        ("civil_affairs", 40)
    ]
    assert found["period"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}


def test_a_bad_period_is_an_error_not_a_trace() -> None:
    result = runner.invoke(app, ["indicators", "--from", "2026-12-01", "--to", "2026-11-01"])
    assert result.exit_code == 2
    assert "error (validation_failed)" in result.output
    assert "Traceback" not in result.output


def test_the_monthly_report_as_html_and_as_pdf(tmp_path: Path) -> None:
    page = tmp_path / "november.html"
    assert "written to" in run("report", "--month", "2026-11", "--out", str(page))
    text = page.read_text(encoding="utf-8")
    assert "Sharing indicators, November 2026" in text
    assert "<svg" in text
    assert "<script" not in text
    printed = tmp_path / "november.pdf"
    run("report", "--month", "2026-11", "--out", str(printed))
    assert printed.read_bytes().startswith(b"%PDF-")
