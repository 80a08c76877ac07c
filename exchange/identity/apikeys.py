"""API keys: created once, stored as salted scrypt hashes, checked in constant time.

A key reads ``dx_<key id>_<secret>``. The key id finds the row; the secret is
checked against its scrypt hash (memory-hard, from ``cryptography``), so a
stolen database does not give away usable keys. The plaintext is returned once,
at creation, and never stored or logged.

scrypt costs about 50 ms a check, which would cap a gateway at some 20 requests
a second. A verified key is therefore remembered in a bounded in-process cache
as an HMAC-SHA256 of its secret under a random per-process key (never the secret
itself): later requests compare that, in constant time, instead of running
scrypt again. Only the KDF result is cached: the key's row and its user's
``active`` flag are read on every request, so revocation, expiry and disabling a
user take effect on the very next one.

Failures tell nothing: an unknown key id runs scrypt too, on a random salt against a
random hash that nothing matches, so it answers on the same path, in the same time,
as a known id with a wrong secret, and with the same message. Every comparison of
secrets or hashes is constant-time (:func:`exchange.security.crypto.equal`).

Each key records its origin: ``demo`` (made by ``exchange demo``), ``development``
(made while the exchange ran in development mode, the default of library callers)
or ``production``. With ``production=True`` :func:`authenticate` refuses the first
two, and the demo's public key whatever its origin, with
:class:`~exchange.core.errors.DevelopmentCredentialError`.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from exchange.core.config import DEV_DEMO_KEY
from exchange.core.db import utcnow
from exchange.core.driver import DriverSelect
from exchange.core.errors import AuthenticationError, DevelopmentCredentialError
from exchange.core.models import ApiKey, User
from exchange.security.crypto import equal, hash_secret, hmac_sha256

PREFIX = "dx_"

# Where a key was made (ApiKey.origin); production refuses DEVELOPMENT_ORIGINS.
ORIGIN_DEMO = "demo"
ORIGIN_DEVELOPMENT = "development"
ORIGIN_PRODUCTION = "production"
DEVELOPMENT_ORIGINS = frozenset({ORIGIN_DEMO, ORIGIN_DEVELOPMENT})
DEMO_KEY_ID = DEV_DEMO_KEY.removeprefix(PREFIX).partition("_")[0]

# What an unknown key id is checked against: a random salt and a random "hash" that no
# secret's scrypt matches. The check costs what a wrong secret of a known id costs.
_UNKNOWN_SALT = secrets.token_bytes(16)
_UNKNOWN_HASH = secrets.token_bytes(32)


@dataclass(frozen=True)
class Identity:
    """Who is calling, as established from a valid key or bearer token.

    ``user_id`` is set when the credentials belong to a registered user (keys made
    by ``exchange.identity.apikeys.create_key`` without a user have none); ``method`` is
    ``api_key`` or ``oidc``.
    """

    actor: str
    department: str
    role: str
    key_id: str
    user_id: int | None = None
    method: str = "api_key"

    @property
    def limit_key(self) -> str:
        """What a rate limit counts against: the user, or the key when it has none."""
        return f"user:{self.user_id}" if self.user_id is not None else f"key:{self.key_id}"


class VerifiedKeyCache:
    """Key ids whose secret scrypt has verified, with a keyed MAC of that secret.

    Holds at most ``size`` keys, least recently used evicted first. The MAC key is
    random per process, so the cache is useless outside it. An entry is tied to
    the stored hash it was verified against: a key re-created under the same id
    is verified afresh.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._mac_key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, secret: str) -> bytes:
        return hmac_sha256(self._mac_key, secret.encode())

    def matches(self, key_id: str, secret: str, stored_hash: bytes) -> bool:
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is not None:
                self._entries.move_to_end(key_id)
        if entry is None or not equal(entry[0], stored_hash):
            return False
        return equal(entry[1], self._mac(secret))

    def vouches(self, key_id: str, secret: str) -> bool:
        """Whether this process has verified ``secret`` for ``key_id`` (one HMAC, no database
        read): what lets a known client through while its address is throttled. The key's
        row is still read, and its state checked, by :func:`authenticate` afterwards."""
        with self._lock:
            entry = self._entries.get(key_id)
        return entry is not None and equal(entry[1], self._mac(secret))

    def remember(self, key_id: str, secret: str, stored_hash: bytes) -> None:
        mac = self._mac(secret)
        with self._lock:
            self._entries[key_id] = (stored_hash, mac)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# The process's cache; tests pass their own.
verified_keys = VerifiedKeyCache()


def new_key() -> str:
    """A fresh random key in the ``dx_<key id>_<secret>`` shape (not yet stored)."""
    return f"{PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"


def key_id_of(key: str) -> str:
    """The key id part of a key (raises AuthenticationError if it is malformed)."""
    return _split(key)[0]


def vouched(key: str | None, cache: VerifiedKeyCache | None = None) -> bool:
    """Whether ``key`` is one this process has verified before (one HMAC, nothing read):
    see :meth:`VerifiedKeyCache.vouches`. Malformed or missing keys are not."""
    if not key:
        return False
    try:
        key_id, secret = _split(key)
    except AuthenticationError:
        return False
    return (verified_keys if cache is None else cache).vouches(key_id, secret)


def _hash(secret: str, salt: bytes) -> bytes:
    return hash_secret(secret.encode(), salt)


def _split(key: str) -> tuple[str, str]:
    if not key.startswith(PREFIX):
        raise AuthenticationError("malformed API key: it must start with 'dx_'")
    key_id, sep, secret = key.removeprefix(PREFIX).partition("_")
    if not sep or not key_id or not secret:
        raise AuthenticationError("malformed API key: expected dx_<key id>_<secret>")
    return key_id, secret


def create_key(
    session: Session,
    *,
    actor: str,
    department: str,
    role: str,
    expires_at: datetime | None = None,
    plaintext: str | None = None,
    user_id: int | None = None,
    label: str | None = None,
    origin: str = ORIGIN_DEVELOPMENT,
) -> str:
    """Store a new key and return its plaintext (shown once). ``plaintext`` fixes it (demo).

    ``user_id`` binds the key to a registered user (see ``exchange.identity.identities``),
    whose department, role and ``active`` flag then decide at each request. ``origin``
    records who made it (``demo``, ``development`` or ``production``): callers that know
    the exchange's environment pass it; the default is refused in production.
    """
    if origin not in {ORIGIN_DEMO, ORIGIN_DEVELOPMENT, ORIGIN_PRODUCTION}:
        raise ValueError(f"unknown key origin {origin!r}")
    key = plaintext or new_key()
    key_id, secret = _split(key)
    salt = secrets.token_bytes(16)
    existing = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(
        ApiKey(
            key_id=key_id,
            salt=salt,
            key_hash=_hash(secret, salt),
            actor=actor,
            department=department,
            role=role,
            expires_at=expires_at,
            user_id=user_id,
            label=label,
            origin=origin,
        )
    )
    return key


_KEY_AND_USER = DriverSelect(
    select(
        ApiKey.key_hash,
        ApiKey.salt,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.actor,
        ApiKey.department,
        ApiKey.role,
        ApiKey.origin,
        User.id.label("user_id"),
        User.username,
        User.active,
        User.department.label("user_department"),
        User.role.label("user_role"),
    )
    .outerjoin(User, User.id == ApiKey.user_id)
    .where(ApiKey.key_id == bindparam("key_id"))
)


def authenticate(
    session: Session,
    key: str | None,
    *,
    now: datetime | None = None,
    cache: VerifiedKeyCache | None = None,
    production: bool = False,
) -> Identity:
    """Return the identity of a valid key; raise AuthenticationError with the reason otherwise.

    ``cache`` defaults to the process's :data:`verified_keys`. An unknown key id and a
    wrong secret take the same path (one scrypt) and get the same answer. With
    ``production``, keys of the demo or of development mode are refused
    (:class:`DevelopmentCredentialError`).
    """
    if not key:
        raise AuthenticationError("missing API key: send it in the X-API-Key header")
    key_id, secret = _split(key)
    cache = verified_keys if cache is None else cache
    # On the driver's cursor: this runs on every request.
    rows = _KEY_AND_USER.all(session, {"key_id": key_id})
    row = rows[0] if rows else None
    stored, salt = (row.key_hash, row.salt) if row is not None else (_UNKNOWN_HASH, _UNKNOWN_SALT)
    if row is None or not cache.matches(key_id, secret, stored):
        # Unknown ids too: scrypt runs once, and the comparison fails as a wrong secret's.
        if not equal(_hash(secret, salt), stored) or row is None:
            raise AuthenticationError("invalid API key")
        cache.remember(key_id, secret, stored)
    if production:
        _refuse_development(key_id, key, row.origin)
    moment = now or utcnow()
    if row.revoked_at is not None:
        raise AuthenticationError("API key has been revoked")
    if row.expires_at is not None and row.expires_at <= moment:
        raise AuthenticationError("API key has expired")
    if row.user_id is None:
        return Identity(actor=row.actor, department=row.department, role=row.role, key_id=key_id)
    if not row.active:
        raise AuthenticationError(f"API key belongs to user {row.username!r}, who is disabled")
    return Identity(
        actor=row.username,
        department=row.user_department,
        role=row.user_role,
        key_id=key_id,
        user_id=row.user_id,
    )


def development_keys(session: Session) -> list[str]:
    """The ids of the keys, not revoked, that production refuses (made by the demo or in
    development mode, or the demo's own key), for the warning a production gateway logs
    at start."""
    rows = session.scalars(
        select(ApiKey.key_id)
        .where(ApiKey.revoked_at.is_(None))
        .where(ApiKey.origin.in_(sorted(DEVELOPMENT_ORIGINS)) | (ApiKey.key_id == DEMO_KEY_ID))
        .order_by(ApiKey.key_id)
    )
    return list(rows)


def _refuse_development(key_id: str, key: str, origin: str | None) -> None:
    """In production: refuse the demo's public key and keys made by the demo or in
    development mode."""
    if origin == ORIGIN_DEMO or key_id == DEMO_KEY_ID or equal(key.encode(), DEV_DEMO_KEY.encode()):
        raise DevelopmentCredentialError(
            f"API key {key_id!r} was created by the demo; production refuses it: create a key "
            "with EXCHANGE_ENV=production"
        )
    if origin == ORIGIN_DEVELOPMENT:
        raise DevelopmentCredentialError(
            f"API key {key_id!r} was created in development mode; production refuses it: "
            "create a key with EXCHANGE_ENV=production"
        )
