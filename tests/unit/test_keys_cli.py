"""`exchange keys list | rotate | rotate-kek | destroy | signing ...` on a SQLite keystore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.keys import app
from exchange.security.keystore import (
    FieldCipher,
    KeyDestroyedError,
    LocalKeyStore,
    master_key_from_settings,
)
from tests.support.cli import WIDE, cli_database, isolate

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


@pytest.fixture
def keystore() -> Iterator[LocalKeyStore]:
    """The keystore the CLI opens (same settings, same development master key)."""
    with cli_database() as (settings, sessions):
        yield LocalKeyStore(sessions, master_key_from_settings(settings), cache_ttl=0)


def test_list_empty() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "no data keys" in result.output


def test_list_shows_keys_but_no_key_material(keystore: LocalKeyStore) -> None:
    person = keystore.data_key("person", "2026-11")
    keystore.data_key("vehicle", "2026-11")

    result = runner.invoke(app, ["list"], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "person" in result.output
    assert "vehicle" in result.output
    assert "2026-11" in result.output
    assert "current" in result.output
    assert person.key_id in result.output
    assert person.key.hex() not in result.output

    only = runner.invoke(app, ["list", "--dataset", "vehicle"], env=WIDE)
    assert "person" not in only.output


def test_rotate(keystore: LocalKeyStore) -> None:
    old = keystore.data_key("person", "2026-11")
    keystore.data_key("vehicle", "2026-11")

    result = runner.invoke(app, ["rotate", "--dataset", "person"])
    assert result.exit_code == 0, result.output
    assert "retired 1 data key(s) of person" in result.output
    assert keystore.data_key("person", "2026-11").key_id != old.key_id

    result = runner.invoke(app, ["rotate"])
    assert "retired 2 data key(s) of every dataset" in result.output
    listing = runner.invoke(app, ["list"], env=WIDE)
    assert "retired" in listing.output


def test_rotate_kek(keystore: LocalKeyStore) -> None:
    token = FieldCipher(keystore).encrypt("person", "name", "P-1", b"Ada", period="2026-11")
    keystore.signing_key("revenue")

    result = runner.invoke(app, ["rotate-kek"])

    assert result.exit_code == 0, result.output
    assert "2 key(s) re-wrapped" in result.output
    assert FieldCipher(keystore).decrypt("person", "name", "P-1", token) == b"Ada"


def test_destroy_without_yes_is_refused(keystore: LocalKeyStore) -> None:
    key = keystore.data_key("person", "2026-11")
    token = FieldCipher(keystore).encrypt("person", "name", "P-1", b"Ada", period="2026-11")

    result = runner.invoke(app, ["destroy", "person"], env=WIDE)

    assert result.exit_code == 1
    assert "unreadable" in result.output
    assert key.key_id in result.output  # what would be destroyed
    assert "refused" in result.output
    assert FieldCipher(keystore).decrypt("person", "name", "P-1", token) == b"Ada"


def test_destroy_with_yes(keystore: LocalKeyStore) -> None:
    cipher = FieldCipher(keystore)
    october = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-10")
    november = cipher.encrypt("person", "name", "P-1", b"Ada", period="2026-11")
    vehicle = cipher.encrypt("vehicle", "plate", "V-1", b"AB12", period="2026-11")

    result = runner.invoke(app, ["destroy", "person", "--period", "2026-10", "--yes"], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "destroyed 1 data key(s) of person 2026-10" in result.output
    assert "rotated the key-encryption key" in result.output
    with pytest.raises(KeyDestroyedError):
        cipher.decrypt("person", "name", "P-1", october)
    assert cipher.decrypt("person", "name", "P-1", november) == b"Ada"
    assert cipher.decrypt("vehicle", "plate", "V-1", vehicle) == b"AB12"

    result = runner.invoke(app, ["destroy", "person", "--yes"], env=WIDE)
    assert "destroyed 1 data key(s) of person (every period)" in result.output
    again = runner.invoke(app, ["destroy", "person"])
    assert again.exit_code == 0
    assert "nothing to destroy" in again.output
    listing = runner.invoke(app, ["list"], env=WIDE)
    assert listing.output.count("destroyed") == 2


def test_signing_rotate_and_list(keystore: LocalKeyStore) -> None:
    first, _ = keystore.signing_key("revenue")

    result = runner.invoke(app, ["signing", "rotate", "revenue"])

    assert result.exit_code == 0, result.output
    new = result.output.strip().rsplit(" ", 1)[-1]
    assert new != first
    assert keystore.signing_key("revenue")[0] == new
    listing = runner.invoke(app, ["signing", "list", "revenue"], env=WIDE)
    assert first in listing.output
    assert new in listing.output
    assert "no signing keys" in runner.invoke(app, ["signing", "list", "nobody"]).output
