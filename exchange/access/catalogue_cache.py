"""The catalogue's purposes and grants, cached in the process for the request path.

Every request states a purpose and is judged against its caller's grants; reading
both from the database on each request costs more than the lookup itself. This
cache keeps the purposes, and each (department, role)'s unrevoked grants, and
reloads them:

* at once, when a transaction of this process that changed a purpose or a grant
  commits (a catalogue version counter, bumped by SQLAlchemy session events: ORM
  adds and changes of :class:`~exchange.core.models.Purpose` and
  :class:`~exchange.core.models.Grant`, and ORM bulk ``update``/``delete`` of them), so
  a grant revoked or a purpose deactivated through the gateway's admin API stops
  applying at the next request;
* otherwise after ``ttl_s`` seconds, which bounds how long a change made by another
  process (``exchange`` commands, another gateway replica, raw SQL) can go unseen.

Entries are loaded in the caller's session and stored under the version that was
current when that session's transaction began (a session event notes it), so an
entry is never older than the version it is stored under: a change committed
after the snapshot began makes the entry stale at once. Loading in the caller's
session also means a request never waits for a second pooled connection while
holding one. Grants' validity
windows are not cached decisions: :mod:`exchange.access.policy` checks them against the
request's time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import chain
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session

from exchange.access import catalogue
from exchange.access.policy import GrantRule
from exchange.core.models import Grant, Purpose

_TABLES = frozenset({Grant.__tablename__, Purpose.__tablename__})
_CHANGED = "exchange.access.catalogue_cache.changed"
_BEGUN_AT = "exchange.access.catalogue_cache.begun_at"


class _Version:
    """How many committed transactions of this process changed the catalogue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def bump(self) -> None:
        with self._lock:
            self.value += 1


version = _Version()


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    if any(
        isinstance(o, Grant | Purpose) for o in chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _TABLES:
            state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_begin")
def _note_begin(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info[_BEGUN_AT] = version.value


@event.listens_for(Session, "after_commit")
def _bump_on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        version.bump()


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


class CatalogueCache:
    """Active purposes and grants by (department, role); thread-safe."""

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._purposes: tuple[int, float, dict[str, catalogue.PurposeRule]] | None = None
        self._grants: dict[tuple[str, str], tuple[int, float, list[GrantRule]]] = {}

    def _fresh(self, stamp: int, loaded: float) -> bool:
        return stamp == version.value and self._clock() - loaded < self._ttl

    def _stamp(self, session: Session) -> tuple[int, float]:
        session.connection()  # begins the transaction (and notes the version) if not yet
        return int(session.info.get(_BEGUN_AT, -1)), self._clock()

    def _purpose_rules(self, session: Session) -> dict[str, catalogue.PurposeRule]:
        with self._lock:
            cached = self._purposes
        if cached is None or not self._fresh(cached[0], cached[1]):
            stamp, loaded = self._stamp(session)
            rows = session.execute(
                select(
                    Purpose.code,
                    Purpose.active,
                    Purpose.case_ref_required,
                    Purpose.case_ref_pattern,
                )
            ).all()
            rules = {c: catalogue.PurposeRule(c, bool(a), bool(r), p) for c, a, r, p in rows}
            cached = (stamp, loaded, rules)
            with self._lock:
                self._purposes = cached
        return cached[2]

    def is_code(self, session: Session, value: str | None) -> bool:
        """Whether ``value`` is exactly a purpose code of the catalogue (active or not)."""
        return value is not None and value in self._purpose_rules(session)

    def active_purpose(
        self, session: Session, code: str | None, case_ref: str | None = None
    ) -> str:
        """The code of the purpose a request states, exactly as stated; the
        ValidationErrors of :func:`exchange.access.catalogue.purpose_refusal` if missing,
        not exactly a code, unknown or inactive, and of
        :func:`exchange.access.catalogue.check_case_ref` if ``case_ref`` does not meet the
        purpose's rules."""
        rules = self._purpose_rules(session)
        refusal = catalogue.purpose_refusal(code, {c: r.active for c, r in rules.items()})
        if refusal is not None:
            raise refusal
        assert code is not None
        catalogue.check_case_ref(rules[code], case_ref)
        return code

    def grants_of(self, session: Session, department: str, role: str) -> list[GrantRule]:
        """Every unrevoked grant of a department's role (the policy checks time and purpose)."""
        key = (department, role)
        with self._lock:
            cached = self._grants.get(key)
        if cached is None or not self._fresh(cached[0], cached[1]):
            stamp, loaded = self._stamp(session)
            rules = catalogue.grants_of(session, department, role)
            cached = (stamp, loaded, rules)
            with self._lock:
                if len(self._grants) >= 10_000:
                    self._grants.clear()
                self._grants[key] = cached
        return list(cached[2])
