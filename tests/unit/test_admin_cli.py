"""`exchange admin department|user|key ...` on a SQLite database, through typer's CliRunner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.main import app
from exchange.core.config import load_settings
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import AuthenticationError
from exchange.identity.apikeys import VerifiedKeyCache, authenticate
from tests.support.cli import WIDE, isolate

runner = CliRunner()
KEY = re.compile(r"dx_[0-9a-f]{12}_\S+")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


def _run(*args: str) -> str:
    result = runner.invoke(app, ["admin", *args], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _fails(*args: str) -> str:
    result = runner.invoke(app, ["admin", *args], env=WIDE)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def _authenticate(key: str) -> tuple[str, str, str]:
    engine = make_engine(load_settings().db_url)
    migrate(engine)
    try:
        with session_factory(engine)() as session:
            identity = authenticate(session, key, cache=VerifiedKeyCache())
    finally:
        engine.dispose()
    return identity.actor, identity.department, identity.role


def _bootstrap() -> str:
    _run("department", "add", "exchange_office", "--name", "Exchange Office")
    _run("user", "add", "root", "--department", "exchange_office", "--role", "admin")
    out = _run("key", "create", "root", "--label", "bootstrap", "--expires-days", "7")
    found = KEY.search(out)
    assert found, out
    return found.group(0)


def test_bootstrapping_the_first_admin_gives_a_working_key() -> None:
    key = _bootstrap()

    assert _authenticate(key) == ("root", "exchange_office", "admin")


def test_departments_and_users_are_listed() -> None:
    _bootstrap()
    _run("department", "add", "civil_affairs", "--name", "Civil Affairs")
    _run(
        "user", "add", "li.na", "--department", "civil_affairs", "--role", "caseworker",
        "--display-name", "Li Na", "--oidc-subject", "sub-1",
    )  # fmt: skip

    departments = _run("department", "list")
    users = _run("user", "list")

    assert "civil_affairs" in departments
    assert "Civil Affairs" in departments
    assert "exchange_office" in departments
    assert "li.na" in users
    assert "Li Na" in users
    assert "sub-1" in users
    assert "active" in users


def test_key_list_shows_ids_and_labels_but_never_the_key() -> None:
    key = _bootstrap()
    key_id, secret = key.split("_", 2)[1:]

    out = _run("key", "list", "root")

    assert key_id in out
    assert "bootstrap" in out
    assert secret not in out


def test_a_revoked_key_and_a_disabled_user_are_refused() -> None:
    key = _bootstrap()
    second = KEY.search(_run("key", "create", "root", "--never-expires"))
    assert second
    key_id = key.split("_")[1]

    assert "revoked" in _run("key", "revoke", key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        _authenticate(key)
    assert _authenticate(second.group(0))[0] == "root"

    assert "disabled" in _run("user", "disable", "root")
    with pytest.raises(AuthenticationError, match="disabled"):
        _authenticate(second.group(0))
    assert "disabled" in _run("user", "list")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("user", "add", "x", "--department", "nowhere", "--role", "caseworker"),
         "no department 'nowhere'"),
        (("user", "add", "x", "--department", "exchange_office", "--role", "king"),
         "not one of"),
        (("department", "add", "exchange_office", "--name", "Again"), "exists already"),
        (("key", "create", "ghost"), "no user 'ghost'"),
        (("key", "revoke", "nokey"), "no API key 'nokey'"),
        (("user", "disable", "ghost"), "no user 'ghost'"),
    ],
)  # fmt: skip
def test_mistakes_end_with_a_clear_message_and_exit_code_2(
    args: tuple[str, ...], words: str
) -> None:
    _bootstrap()

    assert words in _fails(*args)


def test_empty_listings_say_so() -> None:
    assert "no departments" in _run("department", "list")
    assert "no users" in _run("user", "list")


def test_apikeys_create_still_works() -> None:
    result = runner.invoke(
        app,
        ["apikeys", "create", "--actor", "a", "--department", "d", "--role", "caseworker"],
        env=WIDE,
    )

    assert result.exit_code == 0, result.output
    found = KEY.search(result.output)
    assert found
    assert _authenticate(found.group(0)) == ("a", "d", "caseworker")


@pytest.mark.parametrize("days", ["0", "-1"])
def test_a_key_expired_at_birth_is_refused(days: str) -> None:
    # As for `exchange apikeys create` (issue 17, finding 10): 0 once meant "never" here.
    _bootstrap()
    out = _fails("key", "create", "root", "--expires-days", days)
    assert "would be expired at once" in out
    assert "--never-expires" in out
