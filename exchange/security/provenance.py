"""Provenance of a published record: its headers and the department's signature.

Every record a connector publishes carries headers naming its department,
dataset, connector, source record, a keyed content hash and ingest time, and an
Ed25519 signature by the department over those facts and the exact value bytes.
The registry builder verifies it against the department's public keys before it
accepts the record. Both sides build the signed message here, so they agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from exchange.core.errors import UnverifiedRecordError
from exchange.security.crypto import verify

DEPARTMENT = "department"
DATASET = "dataset"
CONNECTOR_ID = "connector-id"
CONNECTOR_VERSION = "connector-version"
SOURCE_ID = "source-id"
CONTENT_HASH = "content-hash"
INGEST_TIME = "ingest-time"
SIGNATURE = "signature"
SIGNING_KEY_ID = "signing-key-id"
# When the department's own system last changed the record (ISO 8601, UTC), if its
# connector knows (the source's ``changed_at`` column). Covered by the signature when set.
SOURCE_CHANGED_AT = "source_changed_at"

# The content hash a withdrawal (a tombstone: a null value) carries; its signature covers b"".
WITHDRAWN = "withdrawn"


def signed_message(
    *,
    department: str,
    dataset: str,
    source_id: str,
    content_hash: str,
    value: bytes,
    source_changed_at: str | None = None,
) -> bytes:
    """The bytes a department signs for one record (unambiguous: length-prefixed parts).

    A record with a source change time (header :data:`SOURCE_CHANGED_AT`) signs it too,
    under its own tag; a record without one signs exactly what it signed before the
    header existed, so older records keep verifying."""
    parts = [department.encode(), dataset.encode(), source_id.encode(), content_hash.encode()]
    tag = b"exchange-record-v1\x00"
    if source_changed_at is not None:
        parts.append(source_changed_at.encode())
        tag = b"exchange-record-v2\x00"
    prefix = b"".join(len(p).to_bytes(4, "big") + p for p in parts)
    return tag + prefix + hashlib.sha256(value).digest()


def changed_at(headers: Mapping[str, bytes]) -> str | None:
    """The record's source change time header, as text, if it has one (UnicodeDecodeError
    if it is not UTF-8)."""
    raw = headers.get(SOURCE_CHANGED_AT)
    return None if raw is None else raw.decode()


def headers_dict(headers: list[tuple[str, bytes]] | None) -> dict[str, bytes]:
    return dict(headers or [])


def verify_record(
    headers: Mapping[str, bytes], value: bytes, public_keys: Mapping[str, bytes]
) -> None:
    """Raise unless the record is signed by one of ``public_keys``.

    UnverifiedRecordError if it is unsigned or names an unknown key;
    SignatureError if the signature does not match.
    """
    try:
        key_id = headers[SIGNING_KEY_ID].decode()
        signature = headers[SIGNATURE]
        message = signed_message(
            department=headers[DEPARTMENT].decode(),
            dataset=headers[DATASET].decode(),
            source_id=headers[SOURCE_ID].decode(),
            content_hash=headers[CONTENT_HASH].decode(),
            value=value,
            source_changed_at=changed_at(headers),
        )
    except (KeyError, UnicodeDecodeError) as exc:
        raise UnverifiedRecordError("record is unsigned or lacks provenance headers") from exc
    public = public_keys.get(key_id)
    if public is None:
        raise UnverifiedRecordError(
            f"signing key {key_id!r} is not in the department's catalogue of public keys"
        )
    verify(public, message, signature)
