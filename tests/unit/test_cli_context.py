"""The command line's shared context (exchange.cli.context): one engine a command, made on
first use, migrated once, disposed however the command ends; no database or settings for
commands that need none; one error reporter for every command, the plug-ins' too."""

from __future__ import annotations

import ast
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from exchange.cli import context
from exchange.cli.context import CliContext
from exchange.cli.keys import app as keys_app
from exchange.cli.main import app, load_plugins
from exchange.core.errors import ConfigError
from exchange.local.demo import write_dataset

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
WIDE = {"COLUMNS": "250"}
NO_CONFIG = "error (config_error): EXCHANGE_CONFIG names nope.toml, which is not a file\n"

load_plugins()  # `exchange connector ...`, as the `exchange` script has it


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EXCHANGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "var"))


@dataclass
class Made:
    """An engine the context made, and what became of it."""

    engine: Engine
    migrations: int = 0
    disposals: int = 0
    checked_out: int = 0  # connections taken from the pool and not returned
    checked_out_at_disposal: int | None = None


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[Made]:
    """Every engine the context makes, watched from its making to its disposal."""
    made: list[Made] = []
    make_engine, migrate = context.make_engine, context.migrate

    def watched(url: str) -> Engine:
        record = Made(make_engine(url))
        made.append(record)

        def checkout(*_: Any) -> None:
            record.checked_out += 1

        def checkin(*_: Any) -> None:
            record.checked_out -= 1

        def disposed(_: Engine) -> None:
            record.disposals += 1
            record.checked_out_at_disposal = record.checked_out

        event.listen(record.engine, "checkout", checkout)
        event.listen(record.engine, "checkin", checkin)
        event.listen(record.engine, "engine_disposed", disposed)
        return record.engine

    def migrating(engine: Engine) -> None:
        next(m for m in made if m.engine is engine).migrations += 1
        migrate(engine)

    monkeypatch.setattr(context, "make_engine", watched)
    monkeypatch.setattr(context, "migrate", migrating)
    return made


def _definition(tmp_path: Path) -> str:
    definition, _ = write_dataset(tmp_path / "export", 3)
    return str(definition)


def _assert_disposed_once(made: list[Made]) -> None:
    assert len(made) == 1, "one engine for the whole command"
    [record] = made
    assert record.migrations == 1
    assert record.disposals == 1
    assert record.checked_out_at_disposal == 0


@pytest.mark.parametrize(
    "args",
    [
        ["admin", "department", "list"],
        ["apikeys", "create", "--actor", "a", "--department", "d", "--role", "caseworker"],
        ["audit", "public-key"],
        ["catalogue", "purpose-add", "p1", "--title", "P"],
        ["keys", "rotate-kek"],
        ["registry", "checksum"],
        ["schemas", "register"],  # nine standards, one engine
    ],
)
def test_a_command_makes_one_engine_migrates_it_once_and_disposes_it(
    engines: list[Made], args: list[str]
) -> None:
    result = runner.invoke(app, args, env=WIDE)

    assert result.exit_code == 0, result.output
    _assert_disposed_once(engines)


def test_two_uses_within_one_command_share_its_engine(engines: list[Made]) -> None:
    assert runner.invoke(app, ["catalogue", "purpose-add", "p1", "--title", "P"]).exit_code == 0
    engines.clear()

    # The log's sessions and the keystore (which signs the head) on one engine.
    result = runner.invoke(app, ["audit", "head", "--sign"])

    assert result.exit_code == 0, result.output
    assert '"tree_size": 1' in result.output
    _assert_disposed_once(engines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["admin", "department", "add", "civil", "--name", "Again"], "exists already"),
        (["registry", "entity", "show", "P-none"], "error (not_found): no entity 'P-none'"),
        (["audit", "head"], "error (tree_head_not_found): no signed tree head yet"),
    ],
)
def test_a_command_that_fails_disposes_its_engine_too(
    engines: list[Made], args: list[str], message: str
) -> None:
    assert runner.invoke(app, ["admin", "department", "add", "civil", "--name", "C"]).exit_code == 0
    engines.clear()

    result = runner.invoke(app, args, env=WIDE)

    assert result.exit_code == 2, result.output
    assert message in result.stderr
    _assert_disposed_once(engines)


def test_a_sub_command_run_on_its_own_still_opens_and_closes_one_context(
    engines: list[Made],
) -> None:
    result = runner.invoke(keys_app, ["list"])

    assert result.exit_code == 0, result.output
    assert "no data keys" in result.output
    _assert_disposed_once(engines)


@pytest.mark.parametrize(
    "args",
    [
        ["config"],
        ["status"],
        ["schemas", "show", "person"],
        ["catalogue", "datasets"],
        ["connector", "check", "DEFINITION"],
    ],
)
def test_commands_that_need_no_database_open_none(
    engines: list[Made], args: list[str], tmp_path: Path
) -> None:
    args = [_definition(tmp_path) if a == "DEFINITION" else a for a in args]

    result = runner.invoke(app, args, env=WIDE)

    assert result.exit_code == 0, result.output
    assert engines == []
    assert not (tmp_path / "var" / "registry.db").exists()


@pytest.mark.parametrize("args", [["schemas", "show", "person"], ["connector", "check", "DEF"]])
def test_commands_that_need_no_settings_read_none(args: list[str], tmp_path: Path) -> None:
    args = [_definition(tmp_path) if a == "DEF" else a for a in args]

    result = runner.invoke(app, args, env={**WIDE, "EXCHANGE_CONFIG": "nope.toml"})

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["config"],
        ["status"],
        ["apikeys", "create", "--actor", "a", "--department", "d", "--role", "caseworker"],
        ["admin", "user", "list"],
        ["audit", "verify"],
        ["catalogue", "grants"],
        ["keys", "signing", "list", "revenue"],
        ["registry", "lag"],
        ["schemas", "list"],
        ["connector", "rejects", "person", "--department", "d"],
        ["connector", "run", "DEFINITION"],
    ],
)
def test_every_command_reports_an_exchange_error_one_way(args: list[str], tmp_path: Path) -> None:
    args = [_definition(tmp_path) if a == "DEFINITION" else a for a in args]

    result = runner.invoke(app, args, env={**WIDE, "EXCHANGE_CONFIG": "nope.toml"})

    assert result.exit_code == 2
    assert result.stderr == NO_CONFIG
    assert result.stdout == ""


def test_the_reporter_prints_the_message_as_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    CliContext().report(ConfigError("no [bold]such[/] file\n  line two"))

    assert capsys.readouterr().err == "error (config_error): no [bold]such[/] file\n  line two\n"


def test_one_context_is_shared_by_the_root_a_command_and_a_plug_in(tmp_path: Path) -> None:
    shared = CliContext()
    shared.console = Console(file=io.StringIO(), record=True, width=250)

    result = runner.invoke(app, ["connector", "check", _definition(tmp_path)], obj=shared)

    assert result.exit_code == 0, result.output
    assert "ok: household-registry-residents" in shared.console.export_text()
    assert "ok:" not in result.output  # it went to the shared context's console


def test_the_engine_is_made_once_and_shared_until_the_context_closes(
    engines: list[Made],
) -> None:
    cli = CliContext()

    engine = cli.engine
    assert cli.engine is engine
    assert cli.sessions.kw["bind"] is engine
    assert cli.sessions is cli.sessions
    with cli.transaction() as session:
        assert session.get_bind() is engine
    cli.keystore.signing_key("revenue")
    cli.close()

    _assert_disposed_once(engines)
    with pytest.raises(RuntimeError, match="closed"):
        _ = cli.engine


def test_a_context_that_made_no_engine_closes_without_one(engines: list[Made]) -> None:
    cli = CliContext()
    assert cli.settings is cli.settings
    cli.close()

    assert engines == []


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


@pytest.mark.parametrize(
    "path",
    [*sorted((ROOT / "exchange" / "cli").glob("*.py")), ROOT / "connectors" / "cli.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_the_context_makes_the_plumbing(path: Path) -> None:
    plumbing = {"Console", "make_engine", "migrate", "session_factory", "load_settings"}
    made_here = _calls(path) & plumbing

    if path.name == "context.py" and path.parent.name == "cli":
        assert made_here == plumbing
    else:
        assert made_here == set(), f"{path.name} makes its own {sorted(made_here)}"
