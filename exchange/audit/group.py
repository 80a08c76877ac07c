"""Group commit of audit entries: many requests' entries in one transaction.

A request hands its decision to :meth:`GroupCommit.submit` and gets a
:class:`Ticket` at once. One writer thread, once it holds the writers' lock,
appends every decision waiting at that moment in one transaction
(:func:`exchange.audit.log.append_many`), commits, and settles their tickets;
the decisions that came meanwhile are its next batch. A caller waits on its
ticket, in a thread (:meth:`Ticket.wait`, what :meth:`GroupCommit.append`
does) or in the event loop (``await`` :meth:`Ticket.settled`): the gateway's
lookups wait in the event loop, so a request holds no worker thread while its
entry waits for its batch.

The guarantees of a single append are kept: a ticket is settled only once its
entry is committed, or with the error that stopped it (the caller then
discloses nothing); every decision is appended exactly once, in the order the
requests handed them in. If a batch fails, its decisions are retried one
transaction each, so one unwritable decision does not refuse the others.

A transaction has a fixed cost (taking the tip, committing) that its entries
share. Under load the writer can wait ``delay`` seconds before taking its next
batch, so that more entries share it: only while it is busy, that is when
entries were already waiting as it finished a transaction that held more than
one. A request that finds the writer idle is never delayed. PostgreSQL's
``commit_delay`` and ``commit_siblings`` work alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from exchange.audit.log import Decision, append_many
from exchange.core.db import transaction, utcnow
from exchange.core.errors import AuditLogError

log = logging.getLogger(__name__)


class Ticket:
    """A submitted decision: settled once its entry is committed (``error`` None) or could
    not be (``error`` says why)."""

    __slots__ = ("_waiter", "_wake", "at", "decision", "done", "error")

    def __init__(self, decision: Decision, at: datetime) -> None:
        self.decision = decision
        self.at = at
        self.done = False
        self.error: BaseException | None = None
        self._wake = threading.Lock()  # held until settled: a thread's wait
        self._wake.acquire()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def wait(self) -> None:
        """Block the calling thread until settled; raise the error, if any."""
        self._wake.acquire()
        self._wake.release()
        if self.error is not None:
            raise self.error

    async def settled(self) -> None:
        """Wait in the event loop until settled (the ticket's error, if any, is not raised:
        read ``error``)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with _REGISTER:
            if self.done:
                return
            self._waiter = (loop, future)
        await future

    def _settle(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None:
        """Mark settled and wake a waiting thread; returns the event loop's waiter, for the
        writer to wake with the rest of its batch."""
        with _REGISTER:
            self.done = True
            waiter, self._waiter = self._waiter, None
        self._wake.release()
        return waiter


_REGISTER = threading.Lock()  # orders a loop waiter's registration against its settling


def _wake_futures(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a cancelled request's future stays cancelled
            future.set_result(None)


class GroupCommit:
    """Appends decisions in batches; ``lock`` serialises the process's audit writers (the
    gateway's ``audit_lock``, also held by requests that append in their own transaction).
    The writer thread starts with the first decision submitted; :meth:`close` stops it.
    ``delay`` (seconds, 0 for none) is how long the writer gathers under load (above)."""

    GATHER_UP_TO = 64  # a queue this long is written at once, without the delay

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lock: threading.Lock,
        *,
        delay: float = 0.0,
        observe: Callable[[int, int], None] | None = None,
    ) -> None:
        """``observe(written, failed)``, if given, is called by the writer after each batch
        with how many entries it committed and how many it could not (metrics)."""
        if delay < 0:
            raise ValueError("delay must not be negative")
        self._sessions = sessions
        self._lock = lock
        self._delay = delay
        self._last = 0  # entries in the last batch written
        self._queue: list[Ticket] = []
        self._changed = threading.Condition()  # guards the queue; wakes the writer
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # transactions that committed entries (for tests and benchmarks)
        self.appended = 0  # entries committed
        self._observe = observe

    @property
    def closed(self) -> bool:
        """Whether the writer was stopped (submits are refused)."""
        return self._closed

    def submit(self, decision: Decision) -> Ticket:
        """Queue ``decision`` for the next batch and return its ticket at once. Raises
        AuditLogError once the writer is closed."""
        with self._changed:
            if self._closed:
                raise AuditLogError("the audit writer is stopped; nothing more is appended")
            # Timestamped in queue order, so the entries' times never go backwards here.
            ticket = Ticket(decision, utcnow())
            self._queue.append(ticket)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="audit-group-commit", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        return ticket

    def append(self, decision: Decision) -> None:
        """Append ``decision`` and return once it is committed; raise what stopped it."""
        self.submit(decision).wait()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the writer; later submits are refused. What the
        writer has not taken within ``timeout`` seconds (the database stuck) is refused, so
        that no request waits for ever."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._changed:
            left, self._queue = self._queue, []
        for ticket in left:
            ticket.error = AuditLogError("the audit writer stopped before writing this entry")
        self._settle(left)

    def _run(self) -> None:
        while True:
            with self._changed:
                busy = bool(self._queue)  # entries came while the last batch was written
                while not self._queue and not self._closed:
                    self._changed.wait()
                if not self._queue:
                    return
                gather = (
                    self._delay > 0
                    and busy
                    and self._last > 1
                    and not self._closed
                    and len(self._queue) < self.GATHER_UP_TO
                )
            if gather:
                time.sleep(self._delay)  # more entries join the batch meanwhile
            batch: list[Ticket] = []
            try:
                with self._lock:  # the batch is taken once the lock is ours: all waiting
                    with self._changed:
                        batch, self._queue = self._queue, []
                    if batch:  # empty if close() gave up on them meanwhile
                        self._write(batch)
            except BaseException as exc:  # not even retried: every waiter is refused
                log.exception("audit group commit: a batch of %d failed", len(batch))
                for ticket in batch:
                    if ticket.error is None:  # (none is settled before the finally below)
                        ticket.error = exc
            finally:
                if self._observe is not None and batch:  # counted before anyone is woken
                    failed = sum(1 for t in batch if t.error is not None)
                    self._observe(len(batch) - failed, failed)
                self._settle(batch)
            self._last = len(batch)

    def _settle(self, batch: list[Ticket]) -> None:
        loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for ticket in batch:
            waiter = ticket._settle()
            if waiter is not None:
                loops.setdefault(waiter[0], []).append(waiter[1])
        for loop, futures in loops.items():  # one wake-up of each loop for the whole batch
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_wake_futures, futures)

    def _write(self, batch: list[Ticket]) -> None:
        try:
            with transaction(self._sessions) as session:
                append_many(session, [(t.decision, t.at) for t in batch])
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:  # find the unwritable one; write the rest
                    self._write([one])
                return
            batch[0].error = exc
        else:
            self.batches += 1
            self.appended += len(batch)
