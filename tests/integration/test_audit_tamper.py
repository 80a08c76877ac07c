"""Tampering with the audit log directly in the database, on SQLite and PostgreSQL.

Each kind of tampering (edit, delete, delete and renumber, insert, swap, and the
attacker who recomputes every stored hash but cannot sign) is tried at every
position of a 12-entry log with tree heads signed at 4, 8 and 12; verification must
name the first bad index every time. Also: appends from several threads, each with
its own connection, serialise into one unbroken log.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.core.db import transaction
from exchange.security.keystore import LocalKeyStore
from tests.support import audit as log
from tests.support.database import migrated
from tests.support.keys import MASTER_KEY

pytestmark = pytest.mark.integration
# The module (the package's name ``verify`` is its function).
verify = importlib.import_module("exchange.audit.verify")

N = 12
HEAD_EVERY = 4


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    with migrated(database_url) as factory:
        yield factory


@pytest.fixture
def keystore(sessions: sessionmaker[Session]) -> LocalKeyStore:
    return LocalKeyStore(sessions, MASTER_KEY)


def _each_position(
    sessions: sessionmaker[Session], keystore: LocalKeyStore, positions: range
) -> Iterator[int]:
    for seq in positions:
        log.reset(sessions)
        log.build(sessions, keystore, N, head_every=HEAD_EVERY)
        assert log.check(sessions).ok
        yield seq


@pytest.mark.parametrize(
    ("tamper", "positions", "found_by"),
    [
        (log.edit, range(1, N + 1), {"entry hash"}),
        (log.delete, range(1, N + 1), {"sequence", "signed head"}),
        (log.delete_and_renumber, range(1, N), {"chain"}),
        (log.insert, range(1, N + 1), {"entry hash"}),
        (log.swap, range(1, N), {"chain"}),
    ],
    ids=["edit", "delete", "delete-renumber", "insert", "swap"],
)
def test_tampering_is_found_at_the_first_bad_index(
    sessions: sessionmaker[Session],
    keystore: LocalKeyStore,
    tamper: Callable[[sessionmaker[Session], int], None],
    positions: range,
    found_by: set[str],
) -> None:
    for seq in _each_position(sessions, keystore, positions):
        tamper(sessions, seq)

        report = log.check(sessions)

        assert report.problem is not None, f"tampering at seq {seq} went unnoticed"
        assert (report.problem.index, report.problem.localised_by in found_by) == (seq - 1, True)
        with sessions() as s:
            assert audit.verify(s) == seq


def test_deleting_the_last_entries_is_found_by_the_signed_head(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, N, head_every=HEAD_EVERY)
    log.sql(sessions, "DELETE FROM audit_log WHERE seq > 9")
    log.sql(sessions, "UPDATE audit_tip SET size = 9")  # the attacker tidies the tip too

    problem = log.check(sessions).problem

    assert problem is not None
    assert (problem.index, problem.localised_by, problem.range_end) == (9, "signed head", 12)


def test_an_attacker_who_recomputes_every_hash_is_caught_by_the_signed_heads(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    for seq in _each_position(sessions, keystore, range(1, N + 1)):
        log.rewrite_and_rehash(sessions, seq)

        problem = log.check(sessions).problem

        # The chain and leaf hashes all check out; only a signed root does not.
        assert problem is not None, f"rewriting seq {seq} went unnoticed"
        assert problem.localised_by == "signed head"
        assert problem.index is not None
        assert problem.range_end is not None
        # The range holds the edited entry and lies within one head interval.
        assert problem.index <= seq - 1 < problem.range_end
        assert problem.range_end - problem.index <= HEAD_EVERY


def test_a_forged_head_signature_is_found(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, N, head_every=HEAD_EVERY)
    log.sql(sessions, "UPDATE audit_tree_heads SET signature = :s WHERE tree_size = 8", s="00" * 64)

    problem = log.check(sessions).problem

    assert problem is not None
    assert (problem.index, problem.localised_by) == (None, "head signature")
    assert "size 8" in problem.message


def test_heads_signed_under_another_key_fail_against_the_pinned_key(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 4, head_every=4)
    with sessions() as s:
        genuine = audit.heads.public_keys(s)
    keystore.rotate_signing_key(audit.heads.SIGNER)  # e.g. an attacker with the master key
    log.sql(sessions, "DELETE FROM audit_tree_heads")
    log.build(sessions, keystore, 0)
    audit.heads.sign(sessions, keystore)

    assert log.check(sessions).ok  # by the keys in the database: fine
    problem = log.check(sessions, public_keys=genuine).problem  # by the pinned key: not
    assert problem is not None
    assert problem.localised_by == "head signature"


def test_concurrent_appends_serialise_into_one_unbroken_log(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    threads, each = 4, 25
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(each):
                with transaction(sessions) as s:
                    audit.append(
                        s, log.decision(t * 1000 + i), at=log.T0 + timedelta(milliseconds=i)
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    audit.heads.sign(sessions, keystore)

    assert errors == []
    report = log.check(sessions)
    assert report.ok, report.problem
    assert report.size == threads * each
    assert report.heads_checked == 1


@pytest.mark.parametrize("tamper", [log.delete, log.insert, log.rewrite_and_rehash])
def test_several_processes_find_what_one_finds(
    sessions: sessionmaker[Session],
    keystore: LocalKeyStore,
    tamper: Callable[[sessionmaker[Session], int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verification split over worker processes (each reads a range of the log from the
    database) reports what one process reports, on either database."""
    split: list[int] = []
    in_parallel = verify._checked_in_parallel

    def counted(url: str, workers: int, total: int) -> Any:
        split.append(workers)
        return in_parallel(url, workers, total)

    monkeypatch.setattr(verify, "_checked_in_parallel", counted)
    log.build(sessions, keystore, N, head_every=HEAD_EVERY)
    with sessions() as s:
        intact = audit.check(s, workers=3, parallel_min=1)
    assert (intact.ok, intact.size, intact.heads_checked) == (True, N, 3)
    tamper(sessions, 5)  # the three workers' ranges are 1-4, 5-8 and 9-12

    with sessions() as s:
        one = audit.check(s, workers=1).problem
        several = audit.check(s, workers=3, parallel_min=1).problem

    assert split == [3, 3]  # both checks with three workers really were split
    assert one is not None
    assert several is not None
    assert (several.index, several.localised_by, several.range_end) == (
        one.index,
        one.localised_by,
        one.range_end,
    )
