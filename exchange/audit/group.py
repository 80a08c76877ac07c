"""Group commit of audit entries: many requests' entries in one transaction.

Each request hands its decision to :meth:`GroupCommit.append` and waits while
another request writes. The writer, once it holds the writers' lock, appends
every decision waiting at that moment, its own and others', in one transaction
(:func:`exchange.audit.log.append_many`), commits, and wakes them all: a request
whose entry was in that batch returns, and one of those that came too late
writes the next batch. No extra thread: the requests take turns being the writer.

The guarantees of a single append are kept: ``append`` returns only after its
entry is committed, and raises if it could not be (the caller then discloses
nothing); every decision is appended exactly once, in the order the requests
handed them in. If a batch fails, its decisions are retried one transaction
each, so one unwritable decision does not refuse the others.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from exchange.audit.log import Decision, append_many
from exchange.db import transaction, utcnow


@dataclass
class _Pending:
    decision: Decision
    at: datetime
    done: bool = False
    error: BaseException | None = None


class GroupCommit:
    """Appends decisions in batches; ``lock`` serialises the process's audit writers (the
    gateway's ``audit_lock``, also held by requests that append in their own transaction)."""

    def __init__(self, sessions: sessionmaker[Session], lock: threading.Lock) -> None:
        self._sessions = sessions
        self._lock = lock
        self._queue: list[_Pending] = []
        self._changed = threading.Condition()  # guards the queue and _writing
        self._writing = False  # a request is writing a batch now
        self.batches = 0  # transactions that committed entries (for tests and benchmarks)
        self.appended = 0  # entries committed

    def append(self, decision: Decision) -> None:
        """Append ``decision`` and return once it is committed; raise what stopped it."""
        with self._changed:
            # Timestamped in queue order, so the entries' times never go backwards here.
            item = _Pending(decision, utcnow())
            self._queue.append(item)
            # Wait while another request writes; when it is done, this one's entry may be
            # committed already, or this request writes the next batch.
            while self._writing and not item.done:
                self._changed.wait()
            lead = not item.done
            if lead:
                self._writing = True
        if lead:
            batch: list[_Pending] = []
            try:
                with self._lock:  # the batch is taken once the lock is ours: all waiting
                    with self._changed:
                        batch, self._queue = self._queue, []
                    self._write(batch)
            except BaseException as exc:  # not even retried: every waiter is refused
                for pending in batch:
                    if not pending.done:
                        pending.error, pending.done = exc, True
                raise
            finally:
                with self._changed:
                    self._writing = False
                    self._changed.notify_all()
        if item.error is not None:
            raise item.error

    def _write(self, batch: list[_Pending]) -> None:
        try:
            with transaction(self._sessions) as session:
                append_many(session, [(p.decision, p.at) for p in batch])
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:  # find the unwritable one; write the rest
                    self._write([one])
                return
            batch[0].error = exc
        else:
            self.batches += 1
            self.appended += len(batch)
        for pending in batch:
            pending.done = True
