"""Keys and envelope encryption of sensitive fields.

Three layers of keys:

- the **master key** (32 bytes, a setting: :func:`master_key_from_settings`) wraps
- the **key-encryption key** (KEK, one current, in ``key_encryption_keys``), which wraps
- the **data keys** (one current per dataset and period, in ``data_keys``) that seal field
  values, and the departments' Ed25519 **signing keys** (``signing_keys``).

Only wrapped keys are stored. Each is wrapped with its identity as associated data
(the *wrap context*: ``b"exchange.keystore.v1"`` followed by length-prefixed UTF-8 parts,
``("kek", kek_id)``, ``("data", dataset, period, key_id)`` or ``("signing", department,
key_id)``), so a wrapped key copied onto another row does not unwrap.

:class:`FieldCipher` seals one field value of one record. Its token is
``0x01 || data key id (16 bytes) || nonce (12) || ciphertext || tag (16)``; the associated
data is the 17-byte header followed by the length-prefixed dataset, field and record key,
so a token moved to another record, field or dataset does not decrypt.

Rotation: :meth:`KeyStore.rotate_data_keys` retires data keys (new encryptions get new
keys, old tokens still decrypt); :meth:`KeyStore.rotate_kek` re-wraps every live key under
a new KEK without touching any ciphertext. :meth:`KeyStore.destroy` crypto-shreds a
dataset: its wrapped keys are erased and its tokens can never be decrypted again.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange.core.db import concurrent_conflict, transaction, utcnow
from exchange.core.errors import (
    ConfigError,
    DatabaseError,
    DecryptionError,
    KeyConflictError,
    KeyDestroyedError,
    KeyNotFoundError,
)
from exchange.core.models import DataKeyRecord, KeyEncryptionKey, SigningKeyRecord
from exchange.security import crypto

if TYPE_CHECKING:
    from exchange.core.config import Settings

log = logging.getLogger(__name__)

KEY_ID_BYTES = 16
TOKEN_VERSION = 0x01
_HEADER_SIZE = 1 + KEY_ID_BYTES
_WRAP_PREFIX = b"exchange.keystore.v1"
_ATTEMPTS = 8  # tries of a write that may conflict with another process

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


@dataclass(frozen=True)
class DataKey:
    """A data key in the clear: ``key_id`` is 32 hex characters. Never log ``key``."""

    key_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class DataKeyInfo:
    """What may be shown about a data key: everything but the key material."""

    key_id: str
    dataset: str
    period: str
    generation: int
    state: str  # "current", "retired" or "destroyed"
    created_at: datetime
    retired_at: datetime | None
    destroyed_at: datetime | None


class KeyStore(Protocol):
    """Where data keys and signing keys live; what a KMS has to offer.

    :class:`LocalKeyStore` keeps the keys in the SQL database, wrapped under a KEK that is
    wrapped under the master key. A real KMS maps onto the same interface; with HashiCorp
    Vault's transit engine, for example, the KEK is a transit key that never leaves Vault:
    ``data_key`` generates a key and stores the ciphertext of ``transit/encrypt/<kek>`` (or
    calls ``transit/datakey/wrapped/<kek>``), with the wrap context as the ``context`` of a
    derived key; ``data_key_by_id`` is ``transit/decrypt/<kek>`` of the stored ciphertext;
    ``rotate_kek`` is ``transit/keys/<kek>/rotate`` followed by ``transit/rewrap/<kek>`` of
    every stored ciphertext and raising ``min_decryption_version`` (then trimming) so the
    old KEK version is gone; ``destroy`` deletes the stored ciphertexts. Signing keys map
    onto an ``ed25519`` transit key per department (``transit/sign``, ``transit/verify``,
    ``rotate`` keeping old versions for verification).
    """

    def data_key(self, dataset: str, period: str) -> DataKey:
        """The current data key of ``dataset`` for ``period`` (e.g. ``2026-11``), made if none."""
        ...

    def data_key_by_id(self, key_id: str) -> bytes:
        """A data key by id: :class:`KeyDestroyedError` if shredded, :class:`KeyNotFoundError`."""
        ...

    def rotate_data_keys(self, dataset: str | None = None) -> int:
        """Retire the current data keys (of ``dataset`` or all); they still decrypt."""
        ...

    def rotate_kek(self) -> int:
        """Re-wrap every live key under a new KEK, delete the old; the number re-wrapped."""
        ...

    def destroy(self, dataset: str, period: str | None = None) -> int:
        """Crypto-shred the data keys of ``dataset`` (one period or all); the number destroyed."""
        ...

    def signing_key(self, department: str) -> tuple[str, bytes]:
        """``(key_id, raw Ed25519 private key)`` of the department's current key, made if none."""
        ...

    def rotate_signing_key(self, department: str) -> str:
        """Make a new current signing key; the old public key stays for verification."""
        ...

    def public_keys(self, department: str) -> dict[str, bytes]:
        """Every public key of ``department`` (current and retired), by key id."""
        ...


class _TTLCache(Generic[K, V]):
    """A dict whose entries expire ``ttl`` seconds after they were put (by ``clock``)."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl, self._clock = ttl, clock
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if self._clock() >= item[0]:
            del self._items[key]
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl > 0:
            self._items[key] = (self._clock() + self._ttl, value)

    def drop(self, keep: Callable[[K], bool] = lambda _k: False) -> None:
        self._items = {k: v for k, v in self._items.items() if keep(k)}


def _parts(*parts: str) -> bytes:
    """Unambiguous encoding of strings: each as a 4-byte big-endian length and UTF-8."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def _context(kind: str, *identity: str) -> bytes:
    return _WRAP_PREFIX + _parts(kind, *identity)


def _new_id() -> str:
    return secrets.token_hex(KEY_ID_BYTES)


def _check_name(what: str, value: str, max_length: int) -> None:
    if not value or len(value) > max_length or value != value.strip():
        raise ValueError(f"{what} must be 1 to {max_length} characters without outer spaces")


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise KeyConflictError(str(exc.orig)) from exc


def _lost_race(exc: DatabaseError) -> bool:
    """Whether a database error is a lost race: a constraint, a deadlock, serialization."""
    return isinstance(exc.__cause__, IntegrityError) or concurrent_conflict(exc)


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


class LocalKeyStore(KeyStore):
    """The keystore in the SQL database (SQLite or PostgreSQL), under a 32-byte master key.

    Unwrapped keys are cached in memory for ``cache_ttl`` seconds (``clock`` measures them).
    Rotation and destruction take effect at once in this process; another process keeps
    using a key it cached for at most ``cache_ttl`` seconds (0 disables the cache): a
    connector that cached a key of a dataset destroyed elsewhere may seal a few more values
    under it, which are then as unreadable as the rest.

    Safe for the threads of one process (one lock) and for concurrent processes: unique
    generations (no two current keys), foreign keys to the KEK (no key wrapped under a
    deleted KEK), compare-and-set updates (a rotation never revives a destroyed key), row
    locks on the KEK on PostgreSQL (rotations and writes wait for each other), and retries
    with a random pause for whatever race is left.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        master_key: bytes,
        *,
        cache_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(master_key) != crypto.KEY_SIZE:
            raise ConfigError(f"the master key must be {crypto.KEY_SIZE} bytes")
        self._sessions = sessions
        self._master = master_key
        self._lock = threading.RLock()
        self._keks: dict[str, bytes] = {}  # by kek id; a KEK id never changes meaning
        self._current = _TTLCache[tuple[str, str], DataKey](cache_ttl, clock)
        self._by_id = _TTLCache[str, bytes](cache_ttl, clock)
        self._signing = _TTLCache[str, tuple[str, bytes]](cache_ttl, clock)

    # --- the KEK ---------------------------------------------------------------------------

    def _kek(self, session: Session, kek_id: str) -> bytes:
        kek = self._keks.get(kek_id)
        if kek is None:
            row = session.get(KeyEncryptionKey, kek_id)
            if row is None:
                raise KeyConflictError(f"KEK {kek_id} is gone (rotated by another process)")
            kek = crypto.unwrap_key(self._master, row.wrapped, context=_context("kek", kek_id))
            self._keks[kek_id] = kek
        return kek

    def _lock_keks(self, session: Session, *, exclusive: bool) -> list[KeyEncryptionKey]:
        """The KEK rows, newest first, locked on PostgreSQL (SQLite has no row locks).

        Every write takes this lock before any other: a shared key lock for writes that
        wrap under the current KEK or touch key rows, an exclusive one for a rotation. So a
        rotation waits for those writes and they wait for it, instead of failing.
        """
        stmt = select(KeyEncryptionKey).order_by(KeyEncryptionKey.generation.desc())
        stmt = stmt.with_for_update(read=not exclusive, key_share=not exclusive)
        for _ in range(_ATTEMPTS):
            rows = list(session.scalars(stmt.execution_options(populate_existing=True)))
            if rows or not session.scalar(select(func.count()).select_from(KeyEncryptionKey)):
                return rows
            # Every row we waited for was deleted by a rotation that committed meanwhile.
        raise KeyConflictError("the key-encryption keys kept changing")

    def _current_kek(self, session: Session) -> tuple[str, bytes]:
        for row in self._lock_keks(session, exclusive=False):
            if row.current:
                return row.kek_id, self._kek(session, row.kek_id)
        return self._new_kek(session)

    def _new_kek(self, session: Session) -> tuple[str, bytes]:
        top = session.scalar(select(func.max(KeyEncryptionKey.generation))) or 0
        kek_id, kek = _new_id(), crypto.new_key()
        wrapped = crypto.wrap_key(self._master, kek, context=_context("kek", kek_id))
        session.add(KeyEncryptionKey(kek_id=kek_id, generation=top + 1, wrapped=wrapped))
        _flush(session)
        self._keks[kek_id] = kek
        log.info("created key-encryption key %s (generation %d)", kek_id, top + 1)
        return kek_id, kek

    def _retrying(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a transaction, again (after a random pause) if it lost a race."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with transaction(self._sessions) as session:
                    return work(session)
            except DatabaseError as exc:  # KeyConflictError is one: a race lost here
                if not isinstance(exc, KeyConflictError) and not _lost_race(exc):
                    raise
                self._keks.clear()  # a KEK may have been rotated away
                log.info("key write conflicted (%s); attempt %d of %d", exc, attempt, _ATTEMPTS)
                if attempt == _ATTEMPTS:
                    raise DatabaseError(
                        "key write kept conflicting with other processes; try again"
                    ) from exc
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    def check(self) -> None:
        """Read the current key-encryption key and unwrap it under the master key (once a
        process; then only the read): raise if the database cannot be read or the master key
        is not the one the keys were wrapped under. For readiness probes."""
        with self._sessions() as session:
            kek_id = session.scalar(
                select(KeyEncryptionKey.kek_id).where(KeyEncryptionKey.current.is_(True)).limit(1)
            )
            if kek_id is not None:
                with self._lock:
                    self._kek(session, kek_id)

    # --- data keys -------------------------------------------------------------------------

    def data_key(self, dataset: str, period: str) -> DataKey:
        _check_name("dataset", dataset, 100)
        _check_name("period", period, 32)
        with self._lock:
            cached = self._current.get((dataset, period))
            if cached is None:
                cached = self._retrying(lambda s: self._load_or_create(s, dataset, period))
                self._current.put((dataset, period), cached)
                self._by_id.put(cached.key_id, cached.key)
            return cached

    def _load_or_create(self, session: Session, dataset: str, period: str) -> DataKey:
        top = session.scalar(
            select(DataKeyRecord)
            .where(DataKeyRecord.dataset == dataset, DataKeyRecord.period == period)
            .order_by(DataKeyRecord.generation.desc())
            .limit(1)
        )
        if top is not None and top.current and top.wrapped is not None and top.kek_id:
            return DataKey(top.key_id, self._unwrap_data_key(session, top))
        generation = 1 if top is None else top.generation + 1
        kek_id, kek = self._current_kek(session)
        key_id, key = _new_id(), crypto.new_key()
        wrapped = crypto.wrap_key(kek, key, context=_context("data", dataset, period, key_id))
        session.add(
            DataKeyRecord(
                key_id=key_id,
                dataset=dataset,
                period=period,
                generation=generation,
                wrapped=wrapped,
                kek_id=kek_id,
                current=True,
            )
        )
        _flush(session)
        log.info(
            "created data key %s for %s %s (generation %d)", key_id, dataset, period, generation
        )
        return DataKey(key_id, key)

    def _unwrap_data_key(self, session: Session, row: DataKeyRecord) -> bytes:
        assert row.wrapped is not None
        assert row.kek_id is not None
        context = _context("data", row.dataset, row.period, row.key_id)
        return crypto.unwrap_key(self._kek(session, row.kek_id), row.wrapped, context=context)

    def data_key_by_id(self, key_id: str) -> bytes:
        with self._lock:
            key = self._by_id.get(key_id)
            if key is None:
                key = self._retrying(lambda s: self._load_by_id(s, key_id))
                self._by_id.put(key_id, key)
            return key

    def _load_by_id(self, session: Session, key_id: str) -> bytes:
        row = session.scalar(select(DataKeyRecord).where(DataKeyRecord.key_id == key_id))
        if row is None:
            raise KeyNotFoundError(f"no data key has id {key_id!r}")
        if row.destroyed_at is not None or row.wrapped is None or row.kek_id is None:
            raise KeyDestroyedError(
                f"the data key of {row.dataset} {row.period} was destroyed; "
                "what it encrypted can no longer be read"
            )
        return self._unwrap_data_key(session, row)

    def rotate_data_keys(self, dataset: str | None = None) -> int:
        stmt = (
            update(DataKeyRecord)
            .where(DataKeyRecord.current.is_(True), DataKeyRecord.destroyed_at.is_(None))
            .values(current=False, retired_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if dataset is not None:
            stmt = stmt.where(DataKeyRecord.dataset == dataset)
        with self._lock:
            count = self._retrying(lambda s: self._update_keys(s, stmt))
            self._current.drop(keep=lambda k: dataset is not None and k[0] != dataset)
        log.info("retired %d data key(s) of %s", count, dataset or "every dataset")
        return count

    def destroy(self, dataset: str, period: str | None = None) -> int:
        """Erase the wrapped keys of ``dataset`` (one period or all), keeping tombstones.

        The database may still hold old copies of the erased rows (SQLite free pages and
        WAL, PostgreSQL dead tuples, backups): rotate the KEK afterwards so that any such
        copy is wrapped under a KEK that no longer exists (``exchange keys destroy`` does).
        """
        now = utcnow()
        stmt = (
            update(DataKeyRecord)
            .where(DataKeyRecord.dataset == dataset, DataKeyRecord.destroyed_at.is_(None))
            .values(
                wrapped=None,
                kek_id=None,
                current=False,
                destroyed_at=now,
                retired_at=func.coalesce(DataKeyRecord.retired_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        if period is not None:
            stmt = stmt.where(DataKeyRecord.period == period)
        with self._lock:
            count = self._retrying(lambda s: self._update_keys(s, stmt))
            # Every cached key goes: the cache does not know which dataset a key id is of.
            self._current.drop()
            self._by_id.drop()
        log.warning("destroyed %d data key(s) of %s %s", count, dataset, period or "(all periods)")
        return count

    def _update_keys(self, session: Session, stmt: Any) -> int:
        self._lock_keks(session, exclusive=False)  # not while a rotation re-wraps these rows
        return _rowcount(session.execute(stmt))

    def list_data_keys(
        self, dataset: str | None = None, period: str | None = None
    ) -> list[DataKeyInfo]:
        """The data keys (no key material), by dataset, period and generation."""
        stmt = select(DataKeyRecord).order_by(
            DataKeyRecord.dataset, DataKeyRecord.period, DataKeyRecord.generation
        )
        if dataset is not None:
            stmt = stmt.where(DataKeyRecord.dataset == dataset)
        if period is not None:
            stmt = stmt.where(DataKeyRecord.period == period)
        with transaction(self._sessions) as session:
            rows = session.scalars(stmt).all()
        return [
            DataKeyInfo(
                key_id=r.key_id,
                dataset=r.dataset,
                period=r.period,
                generation=r.generation,
                state="destroyed" if r.destroyed_at else "current" if r.current else "retired",
                created_at=r.created_at,
                retired_at=r.retired_at,
                destroyed_at=r.destroyed_at,
            )
            for r in rows
        ]

    # --- KEK rotation ----------------------------------------------------------------------

    def rotate_kek(self) -> int:
        with self._lock:
            count, new_id = self._retrying(self._rewrap_all)
            self._keks = {k: v for k, v in self._keks.items() if k == new_id}
        log.warning("rotated the key-encryption key: %d key(s) re-wrapped", count)
        return count

    def _rewrap_all(self, session: Session) -> tuple[int, str]:
        # Unwrap the KEKs first: a wrong master key fails here, before anything is written.
        for row in self._lock_keks(session, exclusive=True):
            self._kek(session, row.kek_id)
        # Writing first takes SQLite's write lock, so the reads below cannot go stale there;
        # on PostgreSQL the exclusive KEK lock holds off other key writes, and the
        # compare-and-set updates and the foreign keys catch anything else.
        new_id, new_kek = self._new_kek(session)
        count = 0
        for data in session.scalars(
            select(DataKeyRecord).where(DataKeyRecord.wrapped.is_not(None))
        ).all():
            assert data.wrapped is not None
            assert data.kek_id is not None
            ctx = _context("data", data.dataset, data.period, data.key_id)
            key = crypto.unwrap_key(self._kek(session, data.kek_id), data.wrapped, context=ctx)
            count += self._swap(
                session,
                update(DataKeyRecord).where(
                    DataKeyRecord.id == data.id,
                    DataKeyRecord.kek_id == data.kek_id,
                    DataKeyRecord.destroyed_at.is_(None),
                ),
                wrapped=crypto.wrap_key(new_kek, key, context=ctx),
                kek_id=new_id,
            )
        for sk in session.scalars(
            select(SigningKeyRecord).where(SigningKeyRecord.wrapped_private.is_not(None))
        ).all():
            assert sk.wrapped_private is not None
            assert sk.kek_id is not None
            ctx = _context("signing", sk.department, sk.key_id)
            kek = self._kek(session, sk.kek_id)
            key = crypto.unwrap_key(kek, sk.wrapped_private, context=ctx)
            count += self._swap(
                session,
                update(SigningKeyRecord).where(
                    SigningKeyRecord.id == sk.id,
                    SigningKeyRecord.kek_id == sk.kek_id,
                    SigningKeyRecord.wrapped_private.is_not(None),
                ),
                wrapped_private=crypto.wrap_key(new_kek, key, context=ctx),
                kek_id=new_id,
            )
        # Every other KEK goes; a key still wrapped under one (created meanwhile by another
        # process) fails its foreign key here, and the rotation is retried.
        try:
            session.execute(delete(KeyEncryptionKey).where(KeyEncryptionKey.kek_id != new_id))
        except IntegrityError as exc:
            raise KeyConflictError(str(exc.orig)) from exc
        return count, new_id

    @staticmethod
    def _swap(session: Session, stmt: Any, **values: object) -> int:
        """Apply a compare-and-set update of one row; a row changed meanwhile is a conflict."""
        result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
        if _rowcount(result) != 1:
            raise KeyConflictError("a key changed while the KEK was being rotated")
        return 1

    # --- signing keys ----------------------------------------------------------------------

    def signing_key(self, department: str) -> tuple[str, bytes]:
        _check_name("department", department, 100)
        with self._lock:
            cached = self._signing.get(department)
            if cached is None:
                cached = self._retrying(lambda s: self._signing_key(s, department, rotate=False))
                self._signing.put(department, cached)
            return cached

    def rotate_signing_key(self, department: str) -> str:
        _check_name("department", department, 100)
        with self._lock:
            self._signing.drop(keep=lambda d: d != department)
            key_id, private = self._retrying(
                lambda s: self._signing_key(s, department, rotate=True)
            )
            self._signing.put(department, (key_id, private))
        log.warning("rotated the signing key of %s: now %s", department, key_id)
        return key_id

    def _signing_key(self, session: Session, department: str, *, rotate: bool) -> tuple[str, bytes]:
        top = session.scalar(
            select(SigningKeyRecord)
            .where(SigningKeyRecord.department == department)
            .order_by(SigningKeyRecord.generation.desc())
            .limit(1)
        )
        if top is not None and top.current and top.wrapped_private is not None and not rotate:
            assert top.kek_id is not None
            ctx = _context("signing", department, top.key_id)
            kek = self._kek(session, top.kek_id)
            return top.key_id, crypto.unwrap_key(kek, top.wrapped_private, context=ctx)
        kek_id, kek = self._current_kek(session)  # the KEK lock first, then the rows
        if top is not None and top.current:
            # The retired private key is erased: only its public key is still needed.
            self._swap(
                session,
                update(SigningKeyRecord).where(
                    SigningKeyRecord.id == top.id, SigningKeyRecord.current.is_(True)
                ),
                current=False,
                retired_at=utcnow(),
                wrapped_private=None,
                kek_id=None,
            )
        key_id = _new_id()
        private, public = crypto.new_signing_key()
        session.add(
            SigningKeyRecord(
                key_id=key_id,
                department=department,
                generation=1 if top is None else top.generation + 1,
                public_key=public,
                wrapped_private=crypto.wrap_key(
                    kek, private, context=_context("signing", department, key_id)
                ),
                kek_id=kek_id,
                current=True,
            )
        )
        _flush(session)
        log.info("created signing key %s for %s", key_id, department)
        return key_id, private

    def public_keys(self, department: str) -> dict[str, bytes]:
        stmt = (
            select(SigningKeyRecord.key_id, SigningKeyRecord.public_key)
            .where(SigningKeyRecord.department == department)
            .order_by(SigningKeyRecord.generation)
        )
        with transaction(self._sessions) as session:
            return dict(session.execute(stmt).all())


class FieldCipher:
    """Envelope encryption of field values, bound to their dataset, field and record."""

    def __init__(self, keystore: KeyStore) -> None:
        self._keystore = keystore

    @staticmethod
    def _aad(header: bytes, dataset: str, field: str, record_key: str) -> bytes:
        return header + _parts(dataset, field, record_key)

    def encrypt(
        self, dataset: str, field: str, record_key: str, plaintext: bytes, *, period: str
    ) -> bytes:
        """Seal ``plaintext`` under the current data key of ``dataset`` and ``period``."""
        data_key = self._keystore.data_key(dataset, period)
        header = bytes([TOKEN_VERSION]) + bytes.fromhex(data_key.key_id)
        aad = self._aad(header, dataset, field, record_key)
        return header + crypto.seal(data_key.key, plaintext, aad)

    def decrypt(self, dataset: str, field: str, record_key: str, token: bytes) -> bytes:
        """The plaintext of ``token``: :class:`DecryptionError` if it does not open here,
        :class:`KeyDestroyedError` if its data key was destroyed."""
        if len(token) < _HEADER_SIZE or token[0] != TOKEN_VERSION:
            log.debug("field decrypt failed: not a version %d token", TOKEN_VERSION)
            raise DecryptionError()
        header = token[:_HEADER_SIZE]
        try:
            key = self._keystore.data_key_by_id(header[1:].hex())
        except KeyNotFoundError:
            log.debug("field decrypt failed: token names an unknown data key")
            raise DecryptionError() from None
        aad = self._aad(header, dataset, field, record_key)
        return crypto.open_sealed(key, token[_HEADER_SIZE:], aad)


def period_of(moment: datetime) -> str:
    """The data-key period of an aware moment: its UTC year and month, e.g. ``2026-11``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; use datetime.now(UTC)")
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


def master_key_from_settings(settings: Settings) -> bytes:
    """The 32-byte master key: ``master_key``, else ``master_key_file``, else (development
    only) ``<data_dir>/keys/master.key``, created with mode 0600 on first use."""
    from exchange.core.config import Environment

    if settings.master_key is not None:
        return _decode_master(settings.master_key.get_secret_value(), "master_key")
    if settings.master_key_file is not None:
        return _read_master(settings.master_key_file)
    if settings.env is not Environment.DEVELOPMENT:
        raise ConfigError("set master_key or master_key_file")
    path = settings.data_dir / "keys" / "master.key"
    if not path.exists():
        _create_master(path)
    return _read_master(path)


def _decode_master(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: not valid base64") from None
    if len(key) != crypto.KEY_SIZE:
        raise ConfigError(f"{source}: must be base64 of {crypto.KEY_SIZE} bytes, not {len(key)}")
    return key


def _read_master(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the master key file {path}: {exc}") from exc
    if os.name == "posix" and mode & 0o077:
        log.warning("master key file %s is readable by others (mode %o)", path, mode & 0o777)
    return _decode_master(text, f"master key file {path}")


def _create_master(path: Path) -> None:
    """Write a new random key, atomically: a concurrent creator's key wins if it was first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(base64.b64encode(crypto.new_key()).decode() + "\n")
        os.link(tmp, path)
        log.warning(
            "created a development master key in %s: losing it makes every encrypted field "
            "unreadable",
            path,
        )
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


__all__ = [
    "DataKey",
    "DataKeyInfo",
    "FieldCipher",
    "KeyStore",
    "LocalKeyStore",
    "master_key_from_settings",
    "period_of",
]
