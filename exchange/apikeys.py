"""API keys: created once, stored as salted scrypt hashes, checked in constant time.

A key reads ``dx_<key id>_<secret>``. The key id finds the row; the secret is
checked against its scrypt hash (memory-hard, from ``cryptography``), so a
stolen database does not give away usable keys. The plaintext is returned once,
at creation, and never stored or logged.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db import utcnow
from exchange.errors import AuthenticationError
from exchange.models import ApiKey

PREFIX = "dx_"
# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB per check, ~50 ms on this class of machine.
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class Identity:
    """Who is calling, as established from a valid key."""

    actor: str
    department: str
    role: str
    key_id: str


def _hash(secret: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(secret.encode())


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
) -> str:
    """Store a new key and return its plaintext (shown once). ``plaintext`` fixes it (demo)."""
    key = plaintext or f"{PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"
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
        )
    )
    return key


def authenticate(session: Session, key: str | None, *, now: datetime | None = None) -> Identity:
    """Return the identity of a valid key; raise AuthenticationError with the reason otherwise."""
    if not key:
        raise AuthenticationError("missing API key: send it in the X-API-Key header")
    key_id, secret = _split(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None or not hmac.compare_digest(_hash(secret, row.salt), row.key_hash):
        raise AuthenticationError("invalid API key")
    moment = now or utcnow()
    if row.revoked_at is not None:
        raise AuthenticationError("API key has been revoked")
    if row.expires_at is not None and row.expires_at <= moment:
        raise AuthenticationError("API key has expired")
    return Identity(actor=row.actor, department=row.department, role=row.role, key_id=key_id)
