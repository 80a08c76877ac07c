"""`exchange audit ...` on a SQLite log: verify (intact, tampered, pinned key), head,
prove, consistency, search by person, export, anomalies, public-key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from exchange.cli.audit import app
from exchange.core.config import load_settings
from exchange.security import merkle
from exchange.security.blindindex import blind_index
from exchange.security.keystore import LocalKeyStore, master_key_from_settings
from tests.support import audit as log
from tests.support.cli import WIDE, cli_database, isolate

runner = CliRunner()


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    """The database the CLI opens, with 6 entries and a head at 4 (signed with its key)."""
    with cli_database() as (settings, factory):
        keystore = LocalKeyStore(factory, master_key_from_settings(settings))
        log.build(factory, keystore, 6, head_every=4)
        yield factory


def test_verify_an_intact_log_then_a_tampered_one(sessions: sessionmaker[Session]) -> None:
    intact = runner.invoke(app, ["verify"], env=WIDE)
    log.edit(sessions, 6)
    broken = runner.invoke(app, ["verify"], env=WIDE)

    assert intact.exit_code == 0, intact.output
    assert "audit log intact: 6 entries, 1 signed tree heads verified" in intact.output
    assert "2 entries after the latest signed head" in intact.output
    assert broken.exit_code == 1
    assert "first bad entry: index 5 (seq 6); found by entry hash" in broken.output


def test_head_sign_prove_and_consistency(sessions: sessionmaker[Session]) -> None:
    signed = runner.invoke(app, ["head", "--sign"])
    shown = runner.invoke(app, ["head"])
    proof = runner.invoke(app, ["prove", "5"])
    consistency = runner.invoke(app, ["consistency", "4", "6"])
    missing = runner.invoke(app, ["prove", "0", "--tree-size", "5"])

    assert signed.exit_code == 0, signed.output
    head = json.loads(signed.output)
    assert json.loads(shown.output) == head
    assert head["tree_size"] == 6
    body = json.loads(proof.output)
    merkle.verify_inclusion(
        bytes.fromhex(body["leaf_hash"]),
        5,
        6,
        [bytes.fromhex(p) for p in body["path"]],
        bytes.fromhex(head["root"]),
    )
    assert json.loads(consistency.output)["second"] == head
    assert missing.exit_code != 0
    assert "tree size 5" in str(missing.exception or missing.output)


def test_a_pinned_key_that_did_not_sign_the_heads_fails(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    exported = runner.invoke(app, ["public-key"])
    (tmp_path / "audit.pem").write_text(exported.output)
    rotated = runner.invoke(app, ["rotate-key"])
    (tmp_path / "new.pem").write_text(rotated.output)

    old = runner.invoke(app, ["verify", "--public-key", str(tmp_path / "audit.pem")], env=WIDE)
    new = runner.invoke(app, ["verify", "--public-key", str(tmp_path / "new.pem")], env=WIDE)

    assert exported.output.startswith("# key id: ")
    assert "BEGIN PUBLIC KEY" in exported.output
    assert old.exit_code == 0, old.output
    assert "public key: pinned key" in old.output
    assert new.exit_code == 1
    assert "found by head signature" in new.output


def test_search_by_person_export_and_anomalies(sessions: sessionmaker[Session]) -> None:
    settings = load_settings()
    person = "11010519491231002X"
    key = settings.linkage_key.get_secret_value().encode()
    subject = blind_index(key, "cn.resident_id", person)
    with sessions() as s:
        from exchange import audit

        entry = log.decision(9, subjects=[subject], case_ref=None, decision="allow")
        audit.append(s, entry, at=log.T0)
        s.commit()

    found = runner.invoke(app, ["search", "--person", person], env=WIDE)
    exported = runner.invoke(app, ["export", "--format", "jsonl", "--decision", "deny"])
    flags = runner.invoke(
        app, ["anomalies", "--since", "2026-11-01", "--until", "2026-11-03"], env=WIDE
    )

    assert found.exit_code == 0, found.output
    assert "CASE-" not in found.output  # only entry 9, which has no case reference
    assert found.output.count("person.lookup") == 1
    assert [json.loads(line)["seq"] for line in exported.output.splitlines()] == [3, 6]
    assert "no_case_ref" in flags.output
