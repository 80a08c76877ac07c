"""Building audit logs and tampering with them directly in the database, for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.audit import heads
from exchange.audit.log import GENESIS, chain_hex, leaf_hex, row_content
from exchange.core.db import transaction
from exchange.security.keystore import KeyStore

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Beijing

COLUMNS = (
    "at", "request_id", "actor", "department", "role", "purpose", "case_ref", "action",
    "dataset", "subjects", "fields", "decision", "reason", "status", "prev_hash",
    "entry_hash", "leaf_hash",
)  # fmt: skip


def decision(n: int, **overrides: Any) -> audit.Decision:
    values: dict[str, Any] = {
        "request_id": f"req-{n}",
        "action": "person.lookup",
        "decision": "allow" if n % 3 else "deny",
        "reason": "records returned" if n % 3 else "no grant allows it",
        "status": 200 if n % 3 else 403,
        "actor": f"cw{n % 2}@civil",
        "department": "civil_affairs",
        "role": "caseworker",
        "purpose": "minimum_living_allowance",
        "case_ref": f"CASE-{n:04d}",
        "dataset": "person",
        "subjects": [f"{n % 5:064x}"],
        "fields": ["full_name", "birth_date"],
    }
    values.update(overrides)
    return audit.Decision(**values)


def reset(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        for table in ("audit_log", "audit_subjects", "audit_tree_heads"):
            s.execute(text(f"DELETE FROM {table}"))
        s.execute(text("UPDATE audit_tip SET size = 0, entry_hash = :g"), {"g": GENESIS})


def build(
    sessions: sessionmaker[Session], keystore: KeyStore, n: int, *, head_every: int = 0
) -> None:
    """Append entries 1..n in their own transactions, signing a head every ``head_every``."""
    for i in range(1, n + 1):
        with transaction(sessions) as s:
            audit.append(s, decision(i), at=T0 + timedelta(seconds=i))
        if head_every and i % head_every == 0:
            heads.sign(sessions, keystore)


def sql(sessions: sessionmaker[Session], statement: str, **params: Any) -> None:
    with transaction(sessions) as s:
        s.execute(text(statement), params)


def row(sessions: sessionmaker[Session], seq: int) -> dict[str, Any]:
    with sessions() as s:
        found = s.execute(text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq}).mappings()
        return dict(found.one())


def size(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.execute(text("SELECT count(*) FROM audit_log")).scalar_one())


def check(sessions: sessionmaker[Session], **kwargs: Any) -> audit.VerifyReport:
    with sessions() as s:
        return audit.check(s, **kwargs)


# --- tampering ----------------------------------------------------------------------------


def edit(sessions: sessionmaker[Session], seq: int) -> None:
    sql(sessions, "UPDATE audit_log SET reason = :r WHERE seq = :s", r="nothing to see", s=seq)


def delete(sessions: sessionmaker[Session], seq: int) -> None:
    sql(sessions, "DELETE FROM audit_log WHERE seq = :s", s=seq)


def delete_and_renumber(sessions: sessionmaker[Session], seq: int) -> None:
    """Delete entry ``seq`` and close the gap, so the sequence looks unbroken."""
    last = size(sessions)
    delete(sessions, seq)
    for old in range(seq + 1, last + 1):
        sql(sessions, "UPDATE audit_log SET seq = :new WHERE seq = :old", new=old - 1, old=old)
    sql(sessions, "UPDATE audit_tip SET size = :n", n=last - 1)


def insert(sessions: sessionmaker[Session], seq: int) -> None:
    """Insert a forged entry at ``seq``, moving the later ones up; its prev_hash is right."""
    last = size(sessions)
    prev = row(sessions, seq - 1)["entry_hash"] if seq > 1 else GENESIS
    for old in range(last, seq - 1, -1):
        sql(sessions, "UPDATE audit_log SET seq = :new WHERE seq = :old", new=old + 1, old=old)
    forged = {**row(sessions, seq + 1), "seq": seq, "request_id": "forged", "actor": "intruder"}
    forged["prev_hash"] = prev
    forged["entry_hash"] = "f" * 64
    forged["leaf_hash"] = "f" * 64
    names = ", ".join(["seq", *COLUMNS])
    sql(
        sessions,
        f"INSERT INTO audit_log ({names}) VALUES ({', '.join(':' + c for c in ['seq', *COLUMNS])})",
        **_bindable(forged),
    )
    sql(sessions, "UPDATE audit_tip SET size = :n", n=last + 1)


def swap(sessions: sessionmaker[Session], seq: int) -> None:
    """Swap the whole contents (hashes included) of entries ``seq`` and ``seq + 1``."""
    a, b = row(sessions, seq), row(sessions, seq + 1)
    assignments = ", ".join(f"{c} = :{c}" for c in COLUMNS)
    sql(sessions, "UPDATE audit_log SET entry_hash = 'tmp' WHERE seq = :s", s=seq)
    sql(
        sessions,
        f"UPDATE audit_log SET {assignments} WHERE seq = :seq",
        **_bindable({**a, "seq": seq + 1}),
    )
    sql(
        sessions,
        f"UPDATE audit_log SET {assignments} WHERE seq = :seq",
        **_bindable({**b, "seq": seq}),
    )


def rewrite_and_rehash(sessions: sessionmaker[Session], seq: int) -> None:
    """The attacker who can write the database but not sign: edit entry ``seq`` and
    recompute every stored hash from it on (chain, leaves, tip)."""
    edit(sessions, seq)
    with sessions() as s:
        rows = [dict(r) for r in s.execute(text("SELECT * FROM audit_log ORDER BY seq")).mappings()]
    prev = GENESIS
    for r in rows:
        values = _typed(r)
        encoding = row_content(values)
        if r["seq"] >= seq:
            entry_hash, leaf = chain_hex(prev, encoding), leaf_hex(encoding)
            sql(
                sessions,
                "UPDATE audit_log SET prev_hash = :p, entry_hash = :e, leaf_hash = :l "
                "WHERE seq = :s",
                p=prev, e=entry_hash, l=leaf, s=r["seq"],
            )  # fmt: skip
            prev = entry_hash
        else:
            prev = r["entry_hash"]
    sql(sessions, "UPDATE audit_tip SET entry_hash = :h", h=prev)


def _typed(r: dict[str, Any]) -> dict[str, Any]:
    import json

    values = dict(r)
    for key in ("subjects", "fields"):
        if isinstance(values[key], str):
            values[key] = json.loads(values[key])
    if isinstance(values["at"], str):
        values["at"] = datetime.fromisoformat(values["at"])
    if values["at"].tzinfo is None:
        values["at"] = values["at"].replace(tzinfo=UTC)
    return values


def _bindable(values: dict[str, Any]) -> dict[str, Any]:
    import json

    out = dict(values)
    for key in ("subjects", "fields"):
        if not isinstance(out[key], str):
            out[key] = json.dumps(out[key])
    return out
