"""Group commit of audit entries (exchange.audit.group) and batch appends (append_many):
every decision appended exactly once, in a log that verifies, each caller released only
after its entry is committed; a failing write refuses its caller (fail closed) and does
not sink the other decisions of its batch; a batch stores exactly the entries that one
append after another would."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from exchange import audit
from exchange.audit import Decision
from exchange.audit.group import GroupCommit, Ticket
from exchange.audit.log import append_many
from exchange.core.db import make_engine, migrate, session_factory, transaction, utcnow
from exchange.core.errors import AuditLogError
from exchange.core.models import AuditEntry, AuditSubject


def _factory(path: Path) -> tuple[sessionmaker[Session], Engine]:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return session_factory(engine), engine


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _decision(n: int, subjects: list[str] | None = None) -> Decision:
    return Decision(
        request_id=f"r{n}",
        action="person.lookup",
        decision="allow",
        reason="test",
        status=200,
        subjects=[f"s{n}"] if subjects is None else subjects,
    )


def _request_ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry.request_id).order_by(AuditEntry.seq)))


def _stored(sessions: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with sessions() as session:
        entries = session.execute(
            select(
                AuditEntry.seq, AuditEntry.request_id, AuditEntry.subjects,
                AuditEntry.prev_hash, AuditEntry.entry_hash, AuditEntry.leaf_hash,
            ).order_by(AuditEntry.seq)
        ).all()  # fmt: skip
        subjects = session.execute(
            select(AuditSubject.subject, AuditSubject.seq).order_by(
                AuditSubject.seq, AuditSubject.subject
            )
        ).all()
        return [tuple(r) for r in entries] + [tuple(r) for r in subjects]


def test_a_batch_stores_exactly_what_appends_one_by_one_store(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    at = utcnow()
    decisions = [
        (_decision(1), at),
        (_decision(2, ["a", "b", "a"]), at + timedelta(microseconds=1)),  # a repeated subject
        (_decision(3, []), at + timedelta(microseconds=2)),
        (_decision(4), at + timedelta(microseconds=3)),
    ]
    with transaction(sessions) as session:
        audit.append(session, _decision(0), at=at)
        appended = append_many(session, decisions[:3])
        appended += append_many(session, decisions[3:])
        assert append_many(session, []) == []
    other, engine = _factory(tmp_path / "one_by_one.db")
    try:
        with transaction(other) as session:
            audit.append(session, _decision(0), at=at)
            singles = [audit.append(session, d, at=t) for d, t in decisions]
        assert appended == singles
        assert [a.seq for a in appended] == [2, 3, 4, 5]
        assert _stored(sessions) == _stored(other)
    finally:
        engine.dispose()
    with sessions() as session:
        assert audit.verify(session) is None
        assert audit.log.size(session) == 5


def test_concurrent_appends_are_each_committed_once_before_returning(
    sessions: sessionmaker[Session],
) -> None:
    writer = GroupCommit(sessions, threading.Lock())
    committed_on_return: list[bool] = []
    errors: list[BaseException] = []

    def worker(first: int) -> None:
        for n in range(first, first + 25):
            try:
                writer.append(_decision(n))
            except BaseException as exc:  # reported below
                errors.append(exc)
                return
            with sessions() as session:  # visible to another connection: committed
                committed_on_return.append(
                    session.scalar(select(func.count()).where(AuditEntry.request_id == f"r{n}"))
                    == 1
                )

    threads = [threading.Thread(target=worker, args=(i * 100,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(committed_on_return) == 200
    assert all(committed_on_return)
    ids = _request_ids(sessions)
    assert sorted(ids) == sorted(f"r{i * 100 + n}" for i in range(8) for n in range(25))
    assert writer.appended == 200
    assert 1 <= writer.batches <= 200
    with sessions() as session:
        assert audit.verify(session) is None
        times = list(session.scalars(select(AuditEntry.at).order_by(AuditEntry.seq)))
    assert times == sorted(times)  # stamped in queue order: never backwards


def _queue_three_while_locked(
    lock: threading.Lock, writer: GroupCommit, call: Callable[[int], None]
) -> None:
    """Run ``call(1)``, ``call(2)`` and ``call(3)`` in threads while another writer holds
    ``lock``, until all three decisions are queued; then release it and wait for them."""
    with lock:
        threads = [threading.Thread(target=call, args=(n,)) for n in (1, 2, 3)]
        for t in threads:
            t.start()
        while len(writer._queue) < 3:
            threading.Event().wait(0.01)
    for t in threads:
        t.join()


def test_queued_decisions_go_in_one_transaction(sessions: sessionmaker[Session]) -> None:
    lock = threading.Lock()
    writer = GroupCommit(sessions, lock)
    _queue_three_while_locked(lock, writer, lambda n: writer.append(_decision(n)))
    assert writer.batches == 1
    assert writer.appended == 3
    assert sorted(_request_ids(sessions)) == ["r1", "r2", "r3"]


def test_a_failed_write_refuses_the_caller_and_writes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    writer = GroupCommit(sessions, threading.Lock())
    writer.append(_decision(1))
    with sessions() as session:
        session.execute(text("DELETE FROM audit_tip"))  # every append now fails
        session.commit()
    with pytest.raises(AuditLogError):
        writer.append(_decision(2))
    assert _request_ids(sessions) == ["r1"]


def test_one_unwritable_decision_does_not_sink_its_batch(
    sessions: sessionmaker[Session],
) -> None:
    writer = GroupCommit(sessions, threading.Lock())
    bad = _decision(2)
    bad.subjects = [None]  # type: ignore[list-item]  # the subjects index refuses it
    # A batch as concurrent callers would leave it: three decisions queued together.
    pending = [Ticket(d, utcnow()) for d in (_decision(1), bad, _decision(3))]
    writer._write(pending)
    assert pending[0].error is None
    assert pending[2].error is None
    assert pending[1].error is not None
    assert _request_ids(sessions) == ["r1", "r3"]
    with sessions() as session:
        assert audit.verify(session) is None


def test_an_interrupted_writer_refuses_every_waiter_of_its_batch(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    writer = GroupCommit(sessions, lock)
    outcomes: dict[int, BaseException | None] = {}

    def call(n: int) -> None:
        try:
            writer.append(_decision(n))
            outcomes[n] = None
        except BaseException as exc:
            outcomes[n] = exc

    real_write = writer._write
    calls: list[int] = []

    def interrupted_once(batch: list[Ticket]) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise KeyboardInterrupt  # escapes the batch's retry, unlike a database error
        real_write(batch)

    monkeypatch.setattr(writer, "_write", interrupted_once)
    _queue_three_while_locked(lock, writer, call)
    assert sorted(outcomes) == [1, 2, 3]
    # None of the three was written: none may return as if it had been.
    assert calls[0] == 3
    assert all(isinstance(e, KeyboardInterrupt) for e in outcomes.values())
    assert _request_ids(sessions) == []


def _hold_first_batch(
    writer: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[list[str]], threading.Event, threading.Event]:
    """Record the request ids of each batch the writer writes, and hold its first batch
    until ``finish`` is set (``writing`` is set as it begins)."""
    writing, finish = threading.Event(), threading.Event()
    real_write = writer._write
    batches: list[list[str]] = []

    def slow_first(batch: list[Ticket]) -> None:
        batches.append([t.decision.request_id for t in batch])
        if len(batches) == 1:
            writing.set()
            assert finish.wait(10)
        real_write(batch)

    monkeypatch.setattr(writer, "_write", slow_first)
    return batches, writing, finish


def test_decisions_that_come_during_a_write_are_the_next_batch(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = GroupCommit(sessions, threading.Lock())
    batches, writing, finish = _hold_first_batch(writer, monkeypatch)
    first = writer.submit(_decision(0))
    assert writing.wait(10)
    late = [writer.submit(_decision(n)) for n in (1, 2, 3)]
    assert not first.done  # settled only once committed
    assert _request_ids(sessions) == []
    finish.set()
    for ticket in [first, *late]:
        ticket.wait()
        assert ticket.done
        assert ticket.error is None
    assert batches == [["r0"], ["r1", "r2", "r3"]]  # the three that came meanwhile: one batch
    assert writer.batches == 2
    assert _request_ids(sessions) == ["r0", "r1", "r2", "r3"]


def test_a_ticket_is_awaited_in_the_event_loop(sessions: sessionmaker[Session]) -> None:
    writer = GroupCommit(sessions, threading.Lock())

    async def lookup(n: int) -> tuple[bool, BaseException | None]:
        ticket = writer.submit(_decision(n))
        await ticket.settled()
        with sessions() as session:  # committed by the time it is settled
            seen = session.scalar(select(func.count()).where(AuditEntry.request_id == f"r{n}"))
        return seen == 1, ticket.error

    async def many() -> list[tuple[bool, BaseException | None]]:
        return list(await asyncio.gather(*(lookup(n) for n in range(20))))

    assert asyncio.run(many()) == [(True, None)] * 20
    with sessions() as session:
        assert audit.verify(session) is None


def test_a_failed_entry_settles_its_awaiting_request_with_the_error(
    sessions: sessionmaker[Session],
) -> None:
    writer = GroupCommit(sessions, threading.Lock())
    with sessions() as session:
        session.execute(text("DELETE FROM audit_tip"))
        session.commit()

    async def one() -> BaseException | None:
        ticket = writer.submit(_decision(1))
        await ticket.settled()
        return ticket.error

    assert isinstance(asyncio.run(one()), AuditLogError)


def test_a_closed_writer_writes_what_is_queued_and_refuses_the_rest(
    sessions: sessionmaker[Session],
) -> None:
    lock = threading.Lock()
    writer = GroupCommit(sessions, lock)
    with lock:  # the writer cannot write yet: both wait in the queue
        tickets = [writer.submit(_decision(n)) for n in (1, 2)]
        closing = threading.Thread(target=writer.close)
        closing.start()
        while not writer._closed:
            threading.Event().wait(0.01)
        with pytest.raises(AuditLogError, match="stopped"):
            writer.submit(_decision(3))
    closing.join(10)
    assert not closing.is_alive()
    assert all(t.done and t.error is None for t in tickets)
    assert _request_ids(sessions) == ["r1", "r2"]


def test_a_writer_that_cannot_finish_in_time_refuses_what_is_left(
    sessions: sessionmaker[Session],
) -> None:
    lock = threading.Lock()
    writer = GroupCommit(sessions, lock)
    with lock:  # the database "stuck": the writer cannot take its batch
        tickets = [writer.submit(_decision(n)) for n in (1, 2)]
        writer.close(timeout=0.2)
        for ticket in tickets:  # settled, refused: their requests answer 503, never hang
            assert ticket.done
            assert isinstance(ticket.error, AuditLogError)
    writer._thread.join(10)  # type: ignore[union-attr]
    assert not writer._thread.is_alive()  # type: ignore[union-attr]
    assert _request_ids(sessions) == []
    assert writer.batches == 0


def _sleeps(monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], threading.Event]:
    """The writer's gathering pauses, recorded (and still taken), and an event set as one
    begins."""
    taken: list[float] = []
    began = threading.Event()
    real = time.sleep

    def sleep(seconds: float) -> None:
        taken.append(seconds)
        began.set()
        real(seconds)

    monkeypatch.setattr("exchange.audit.group.time.sleep", sleep)
    return taken, began


def test_a_busy_writer_gathers_before_its_next_batch(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, gathering = _sleeps(monkeypatch)
    lock = threading.Lock()
    writer = GroupCommit(sessions, lock, delay=0.3)
    batches, writing, finish = _hold_first_batch(writer, monkeypatch)
    with lock:  # both are queued before the writer may take a batch
        first = [writer.submit(_decision(n)) for n in (1, 2)]
    assert writing.wait(10)
    # Comes while a batch of two is written: the writer is busy, so it gathers next.
    third = writer.submit(_decision(3))
    finish.set()
    assert gathering.wait(10)
    fourth = writer.submit(_decision(4))  # sent while the writer gathers
    for ticket in [*first, third, fourth]:
        ticket.wait()
    assert taken == [0.3]
    assert batches == [["r1", "r2"], ["r3", "r4"]]
    assert _request_ids(sessions) == ["r1", "r2", "r3", "r4"]


def test_a_request_that_finds_the_writer_idle_is_never_delayed(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, _ = _sleeps(monkeypatch)
    lock = threading.Lock()
    writer = GroupCommit(sessions, lock, delay=5.0)
    # A batch of three, after which the writer is idle: the next request is not delayed.
    _queue_three_while_locked(lock, writer, lambda n: writer.append(_decision(n)))
    for n in range(4, 7):  # one after another: each finds the writer idle
        writer.append(_decision(n))
    assert taken == []
    assert writer.batches == 4
    with pytest.raises(ValueError, match="negative"):
        GroupCommit(sessions, threading.Lock(), delay=-1)
