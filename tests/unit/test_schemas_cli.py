"""`exchange schemas list | show | check | register | shared-ids` on a SQLite registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.schemas import app
from schemas import available, load_standard

runner = CliRunner()


@pytest.fixture(autouse=True)
def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("EXCHANGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "var"))


def _person_with(tmp_path: Path, extra_field: dict[str, object]) -> Path:
    schema = json.loads(json.dumps(load_standard("person").schema))
    schema["fields"].append(extra_field)
    path = tmp_path / "person_next.avsc"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def test_register_all_then_list_and_show() -> None:
    result = runner.invoke(app, ["register"])
    assert result.exit_code == 0, result.output
    for name in available():
        assert f"{load_standard(name).subject}: schema id" in result.output
    again = runner.invoke(app, ["register"])
    assert again.output == result.output  # idempotent: same ids, same versions

    listing = runner.invoke(app, ["list"], env={"COLUMNS": "250"})
    assert listing.exit_code == 0
    assert "std.person.v1" in listing.output

    shown = runner.invoke(app, ["show", "person"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0
    assert "resident_id" in shown.output
    assert "sensitive" in shown.output
    assert "cn.resident_id" in shown.output


def test_check_says_why_a_version_is_refused(tmp_path: Path) -> None:
    assert runner.invoke(app, ["register"]).exit_code == 0
    compatible = _person_with(
        tmp_path, {"name": "email", "type": ["null", "string"], "default": None}
    )
    ok = runner.invoke(app, ["check", str(compatible)])
    assert ok.exit_code == 0, ok.output
    assert "compatible with std.person.v1-value at level BACKWARD" in ok.output

    breaking = _person_with(tmp_path, {"name": "email", "type": "string"})
    refused = runner.invoke(app, ["check", str(breaking)], env={"COLUMNS": "250"})
    assert refused.exit_code == 1
    assert "incompatible" in refused.output
    assert "email" in refused.output

    not_avro = tmp_path / "broken.avsc"
    not_avro.write_text('{"type": "record"}', encoding="utf-8")
    bad = runner.invoke(app, ["check", str(not_avro)])
    assert bad.exit_code != 0


def test_shared_ids_lists_an_id_registered_under_two_subjects(tmp_path: Path) -> None:
    none = runner.invoke(app, ["shared-ids"])
    assert none.exit_code == 0, none.output
    assert "no schema id is registered under more than one subject" in none.output
    path = tmp_path / "person.avsc"
    path.write_text(json.dumps(load_standard("person").schema), encoding="utf-8")
    for subject in ("copy-a-value", "copy-b-value"):
        registered = runner.invoke(app, ["register", str(path), "--subject", subject])
        assert registered.exit_code == 0, registered.output
    shared = runner.invoke(app, ["shared-ids"], env={"COLUMNS": "250"})
    assert shared.exit_code == 0, shared.output
    assert "copy-a-value, copy-b-value" in shared.output
