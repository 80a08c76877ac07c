"""Tests for exchange.audit (the hash chain of the Merkle log) and apikeys, on SQLite.

The signed tree heads, proofs and the tamper matrix on both backends are in
tests/unit/test_audit_merkle.py and tests/integration/test_audit_tamper.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.audit import GENESIS, Decision
from exchange.core.db import make_engine, migrate, session_factory
from exchange.core.errors import AuthenticationError
from exchange.core.models import ApiKey, AuditEntry
from exchange.identity import apikeys
from exchange.identity.apikeys import Identity, authenticate, create_key

T0 = datetime(2025, 6, 1, 9, 0, 0, 123456, tzinfo=UTC)


def _engine(folder: Path) -> Engine:
    engine = make_engine(f"sqlite:///{folder}/t.db")
    migrate(engine)
    return engine


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = _engine(tmp_path)
    yield session_factory(engine)
    engine.dispose()


def _decision(n: int) -> Decision:
    return Decision(
        request_id=f"req-{n}",
        action="person.read",
        decision="allow" if n % 2 else "deny",
        reason=f"grant g{n}" if n % 2 else "no grant allows it",
        status=200 if n % 2 else 403,
        actor=f"caseworker{n}@civil-affairs",
        department="civil_affairs",
        role="caseworker",
        purpose="benefit_eligibility",
        case_ref=f"CASE-{n:04d}",
        dataset="person",
        subjects=[f"bi:{n:064x}"],
        fields=["full_name", "birth_date"],
    )


def _append(factory: sessionmaker[Session], count: int) -> list[AuditEntry]:
    with factory() as session:
        entries = [
            audit.append(session, _decision(n), at=T0 + timedelta(seconds=n))
            for n in range(1, count + 1)
        ]
        session.commit()
    return entries


def _verify(factory: sessionmaker[Session]) -> int | None:
    with factory() as session:
        return audit.verify(session)


def _sql(factory: sessionmaker[Session], statement: str, **params: object) -> None:
    with factory() as session:
        session.execute(text(statement), params)
        session.commit()


def _row(factory: sessionmaker[Session], seq: int) -> dict[str, object]:
    with factory() as session:
        return dict(
            session.execute(text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq})
            .mappings()
            .one()
        )


def _documented_hash(prev_hash: str, entry: AuditEntry) -> str:
    """entry_hash = SHA-256(prev_hash || canonical JSON), computed independently of audit.py."""
    body = {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "request_id": entry.request_id,
        "actor": entry.actor,
        "department": entry.department,
        "role": entry.role,
        "purpose": entry.purpose,
        "case_ref": entry.case_ref,
        "action": entry.action,
        "dataset": entry.dataset,
        "subjects": entry.subjects,
        "fields": entry.fields,
        "decision": entry.decision,
        "reason": entry.reason,
        "status": entry.status,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode() + canonical.encode()).hexdigest()


# --- audit: an intact log ------------------------------------------------------------------


def test_an_empty_log_verifies(factory: sessionmaker[Session]) -> None:
    assert _verify(factory) is None


def test_five_appended_decisions_verify(factory: sessionmaker[Session]) -> None:
    entries = _append(factory, 5)

    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert _verify(factory) is None


def test_entries_are_linked_by_the_documented_hash(factory: sessionmaker[Session]) -> None:
    _append(factory, 3)

    with factory() as session:
        stored = list(session.scalars(text("SELECT seq FROM audit_log ORDER BY seq")))
        entries = [session.get_one(AuditEntry, seq) for seq in stored]

    prev = GENESIS
    for entry in entries:
        assert entry.prev_hash == prev
        assert entry.entry_hash == _documented_hash(prev, entry)
        prev = entry.entry_hash


def test_appended_entry_keeps_the_decision(factory: sessionmaker[Session]) -> None:
    _append(factory, 1)

    with factory() as session:
        entry = session.get_one(AuditEntry, 1)

    assert entry.at == T0 + timedelta(seconds=1)
    assert entry.subjects == [f"bi:{1:064x}"]
    assert entry.fields == ["full_name", "birth_date"]
    assert (entry.decision, entry.status, entry.case_ref) == ("allow", 200, "CASE-0001")


def test_a_non_utc_timestamp_verifies(factory: sessionmaker[Session]) -> None:
    beijing = timezone(timedelta(hours=8))
    with factory() as session:
        audit.append(session, _decision(1), at=datetime(2025, 6, 1, 17, 0, tzinfo=beijing))
        session.commit()

    assert _verify(factory) is None


def test_an_overlong_reason_is_cut_and_still_verifies(factory: sessionmaker[Session]) -> None:
    long = Decision(request_id="r", action="a", decision="deny", reason="x" * 900, status=403)
    with factory() as session:
        appended = audit.append(session, long, at=T0)
        session.commit()
        entry = session.get_one(AuditEntry, appended.seq)

    assert len(entry.reason) == 500
    assert _verify(factory) is None


# --- audit: tampering is found at the first bad entry --------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reason", "grant g999"),
        ("decision", "deny"),
        ("status", 403),
        ("actor", "someone-else"),
        ("subjects", "[]"),
        ("at", "2025-06-01 09:00:03.000000"),
    ],
)
def test_editing_a_field_of_entry_3_is_found_at_3(
    factory: sessionmaker[Session], column: str, value: object
) -> None:
    _append(factory, 5)
    before = _row(factory, 3)[column]

    _sql(factory, f"UPDATE audit_log SET {column} = :v WHERE seq = 3", v=value)

    assert _row(factory, 3)[column] != before
    # Entries 1 and 2 still chain; entry 3's own hash no longer matches its content.
    assert _verify(factory) == 3


def test_deleting_entry_3_is_found_at_3(factory: sessionmaker[Session]) -> None:
    _append(factory, 5)

    _sql(factory, "DELETE FROM audit_log WHERE seq = 3")

    # Entry 4 now follows entry 2: its seq is not the expected 3.
    assert _verify(factory) == 3


def test_swapping_entries_2_and_3_is_found_at_2(factory: sessionmaker[Session]) -> None:
    _append(factory, 5)
    row2, row3 = _row(factory, 2), _row(factory, 3)
    columns = [c for c in row2 if c != "seq"]
    assignments = ", ".join(f"{c} = :{c}" for c in columns)

    # Move the rows' whole contents, hashes included; the unique entry_hash needs a detour.
    _sql(factory, "UPDATE audit_log SET entry_hash = 'tmp' WHERE seq = 2")
    _sql(
        factory,
        f"UPDATE audit_log SET {assignments} WHERE seq = 3",
        **{c: row2[c] for c in columns},
    )
    _sql(
        factory,
        f"UPDATE audit_log SET {assignments} WHERE seq = 2",
        **{c: row3[c] for c in columns},
    )

    assert _row(factory, 2)["request_id"] == "req-3"
    # Position 2 now holds entry 3, whose prev_hash is entry 2's hash, not entry 1's.
    assert _verify(factory) == 2


def test_swapping_only_the_decisions_of_2_and_3_is_found_at_2(
    factory: sessionmaker[Session],
) -> None:
    _append(factory, 5)
    row2, row3 = _row(factory, 2), _row(factory, 3)

    for seq, source in ((2, row3), (3, row2)):
        _sql(
            factory,
            "UPDATE audit_log SET request_id = :r, reason = :why, decision = :d, status = :s "
            "WHERE seq = :seq",
            r=source["request_id"],
            why=source["reason"],
            d=source["decision"],
            s=source["status"],
            seq=seq,
        )

    assert _verify(factory) == 2


def _shift_up_from(factory: sessionmaker[Session], first: int, last: int) -> None:
    for seq in range(last, first - 1, -1):  # from the top, so the primary key never clashes
        _sql(factory, "UPDATE audit_log SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)


def _forged_entry(seq: int, prev_hash: str) -> AuditEntry:
    return AuditEntry(
        seq=seq,
        at=T0 + timedelta(seconds=2, milliseconds=500),
        request_id="forged",
        actor="intruder",
        department="civil_affairs",
        role="caseworker",
        purpose="benefit_eligibility",
        case_ref="CASE-9999",
        action="person.read",
        dataset="person",
        subjects=[],
        fields=["full_name"],
        decision="allow",
        reason="looks legitimate",
        status=200,
        prev_hash=prev_hash,
        entry_hash="f" * 64,
        leaf_hash="f" * 64,
    )


def test_inserting_a_forged_entry_at_3_is_found_at_3(factory: sessionmaker[Session]) -> None:
    entries = _append(factory, 5)
    _shift_up_from(factory, 3, 5)

    with factory() as session:
        # Correct seq and prev_hash, but a hash the forger could not make match.
        session.add(_forged_entry(3, entries[1].entry_hash))
        session.commit()

    assert _verify(factory) == 3


def test_a_forged_entry_with_a_recomputed_hash_is_found_at_the_next_entry(
    factory: sessionmaker[Session],
) -> None:
    entries = _append(factory, 5)
    _shift_up_from(factory, 3, 5)
    forged = _forged_entry(3, entries[1].entry_hash)
    forged.entry_hash = _documented_hash(entries[1].entry_hash, forged)
    forged.leaf_hash = audit.log.leaf_hex(audit.content(forged))

    with factory() as session:
        session.add(forged)
        session.commit()

    # The forgery itself is self-consistent; the old entry 3, now at 4, points past it.
    assert _verify(factory) == 4


# --- audit: property over any log and any single edit --------------------------------------


@pytest.fixture(scope="module")
def shared_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = _engine(tmp_path_factory.mktemp("audit-property"))
    yield session_factory(engine)
    engine.dispose()


_short_text = st.text(st.characters(codec="utf-8"), max_size=20)
decisions = st.builds(
    Decision,
    request_id=st.text(max_size=64),
    action=_short_text,
    decision=st.sampled_from(["allow", "deny"]),
    reason=_short_text,
    status=st.sampled_from([200, 400, 401, 403, 404]),
    actor=st.none() | _short_text,
    subjects=st.lists(_short_text, max_size=3),
    fields=st.lists(_short_text, max_size=3),
)


@settings(max_examples=40, deadline=None)
@given(log=st.lists(decisions, min_size=1, max_size=8), data=st.data())
def test_any_log_verifies_and_any_edit_is_found_where_it_was_made(
    shared_factory: sessionmaker[Session], log: list[Decision], data: st.DataObject
) -> None:
    _sql(shared_factory, "DELETE FROM audit_log")
    _sql(shared_factory, "DELETE FROM audit_subjects")
    _sql(shared_factory, "UPDATE audit_tip SET size = 0, entry_hash = :g", g=GENESIS)
    with shared_factory() as session:
        for n, decision in enumerate(log):
            audit.append(session, decision, at=T0 + timedelta(microseconds=n))
        session.commit()
    assert _verify(shared_factory) is None

    target = data.draw(st.integers(min_value=1, max_value=len(log)), label="edited seq")
    old = _row(shared_factory, target)["reason"]
    _sql(shared_factory, "UPDATE audit_log SET reason = :v WHERE seq = :s", v=f"{old}!", s=target)

    assert _verify(shared_factory) == target


# --- API keys ------------------------------------------------------------------------------


@pytest.fixture
def key(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        plaintext = create_key(
            session, actor="li.na@civil-affairs", department="civil_affairs", role="caseworker"
        )
        session.commit()
    return plaintext


def _auth(factory: sessionmaker[Session], key: str | None, **kwargs: datetime) -> Identity:
    with factory() as session:
        return authenticate(session, key, **kwargs)


def _auth_error(factory: sessionmaker[Session], key: str | None, **kwargs: datetime) -> str:
    with pytest.raises(AuthenticationError) as caught:
        _auth(factory, key, **kwargs)
    assert caught.value.code == "unauthenticated"
    return caught.value.message


def test_a_created_key_has_the_documented_shape(key: str) -> None:
    prefix, key_id, secret = key.split("_", 2)

    assert key.startswith("dx_")
    assert prefix == "dx"
    assert len(key_id) == 12
    assert int(key_id, 16) >= 0
    assert len(secret) >= 32


def test_a_created_key_authenticates(factory: sessionmaker[Session], key: str) -> None:
    identity = _auth(factory, key)

    assert identity == Identity(
        actor="li.na@civil-affairs",
        department="civil_affairs",
        role="caseworker",
        key_id=key.split("_")[1],
    )


def test_the_stored_row_holds_neither_the_key_nor_its_secret(
    factory: sessionmaker[Session], key: str
) -> None:
    secret = key.split("_", 2)[2]
    with factory() as session:
        (row,) = session.execute(text("SELECT * FROM api_keys")).mappings().all()

    for value in row.values():
        if isinstance(value, str):
            assert key not in value
            assert secret not in value
        elif isinstance(value, bytes):
            assert key.encode() not in value
            assert secret.encode() not in value
    assert len(row["key_hash"]) == 32
    assert len(row["salt"]) == 16


def test_each_key_gets_its_own_salt(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        for n in range(2):
            create_key(
                session,
                actor=f"a{n}",
                department="d",
                role="r",
                plaintext="dx_" + f"k{n}" + "_same-secret",
            )
        session.commit()
        rows = session.scalars(text("SELECT salt FROM api_keys")).all()
        hashes = session.scalars(text("SELECT key_hash FROM api_keys")).all()

    assert rows[0] != rows[1]
    assert hashes[0] != hashes[1]


def test_creating_a_fixed_key_again_replaces_it(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        create_key(session, actor="a", department="d", role="old", plaintext="dx_demo_s1")
        session.commit()
        create_key(session, actor="a", department="d", role="new", plaintext="dx_demo_s2")
        session.commit()

    assert _auth(factory, "dx_demo_s2").role == "new"
    assert _auth_error(factory, "dx_demo_s1") == "invalid API key"


def test_the_secret_may_contain_underscores(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        create_key(session, actor="a", department="d", role="r", plaintext="dx_abc_x_y_z")
        session.commit()

    assert _auth(factory, "dx_abc_x_y_z").key_id == "abc"


def test_wrong_secret_and_unknown_key_id_share_one_opaque_message(
    factory: sessionmaker[Session], key: str
) -> None:
    key_id = key.split("_")[1]

    wrong_secret = _auth_error(factory, f"dx_{key_id}_not-the-secret")
    unknown_id = _auth_error(factory, "dx_000000000000_" + key.split("_", 2)[2])

    # Deliberately the same: the message must not tell a caller whether a key id exists.
    assert wrong_secret == unknown_id == "invalid API key"


@pytest.mark.parametrize(
    ("bad_key", "message"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("Bearer dx_abc_def", "must start with 'dx_'"),
        ("dx_", "expected dx_<key id>_<secret>"),
        ("dx_abc", "expected dx_<key id>_<secret>"),
        ("dx__secret", "expected dx_<key id>_<secret>"),
        ("dx_abc_", "expected dx_<key id>_<secret>"),
    ],
)
def test_missing_and_malformed_keys_are_refused(
    factory: sessionmaker[Session], bad_key: str | None, message: str
) -> None:
    assert message in _auth_error(factory, bad_key)


@given(junk=st.text().filter(lambda s: s and not s.startswith("dx_")))
def test_anything_without_the_prefix_is_malformed_before_any_lookup(junk: str) -> None:
    # No session is needed: the shape is checked before the database is touched.
    with pytest.raises(AuthenticationError, match="must start with 'dx_'"):
        authenticate(None, junk)  # type: ignore[arg-type]


def test_a_revoked_key_is_refused(factory: sessionmaker[Session], key: str) -> None:
    _sql(factory, "UPDATE api_keys SET revoked_at = :t", t=T0)

    assert _auth_error(factory, key) == "API key has been revoked"


def test_a_revoked_key_with_a_wrong_secret_does_not_reveal_the_revocation(
    factory: sessionmaker[Session], key: str
) -> None:
    _sql(factory, "UPDATE api_keys SET revoked_at = :t", t=T0)

    assert _auth_error(factory, key + "x") == "invalid API key"


def test_expiry_is_checked_against_the_given_time(factory: sessionmaker[Session]) -> None:
    expires = T0 + timedelta(days=30)
    with factory() as session:
        key = create_key(session, actor="a", department="d", role="r", expires_at=expires)
        session.commit()

    assert _auth(factory, key, now=expires - timedelta(microseconds=1)).actor == "a"
    assert _auth_error(factory, key, now=expires) == "API key has expired"
    assert _auth_error(factory, key, now=expires + timedelta(days=1)) == "API key has expired"


def test_every_refusal_reason_has_its_own_message(factory: sessionmaker[Session], key: str) -> None:
    with factory() as session:
        expired = create_key(
            session, actor="a", department="d", role="r", expires_at=T0 - timedelta(days=1)
        )
        revoked = create_key(session, actor="b", department="d", role="r")
        session.commit()
    revoked_id = revoked.split("_")[1]
    _sql(factory, "UPDATE api_keys SET revoked_at = :t WHERE key_id = :k", t=T0, k=revoked_id)

    messages = [
        _auth_error(factory, None),
        _auth_error(factory, "nope"),
        _auth_error(factory, "dx_only-an-id"),
        _auth_error(factory, key + "x"),
        _auth_error(factory, revoked),
        _auth_error(factory, expired, now=T0),
    ]

    assert len(set(messages)) == len(messages)
    assert _auth(factory, key, now=T0).actor == "li.na@civil-affairs"


def test_the_key_model_has_no_plaintext_column() -> None:
    columns = set(ApiKey.__table__.columns.keys())

    assert {"key_hash", "salt", "key_id"} <= columns
    assert not {"key", "secret", "plaintext"} & columns
    assert apikeys.PREFIX == "dx_"
