"""Blind indexes: keyed hashes that let the exchange match identifiers without reading them.

``blind_index(key, "person.resident_id", value)`` is HMAC-SHA256 under the
linkage key over the domain and the normalised value, hex encoded. The same
identifier gives the same index in every department's records; without the key
the index reveals nothing, even for identifiers with few possible values.
"""

from __future__ import annotations

from exchange.security.crypto import hmac_sha256


def blind_index(key: bytes, domain: str, value: str) -> str:
    """Keyed hash of ``value`` within ``domain`` (e.g. ``person.resident_id``)."""
    message = domain.encode() + b"\x00" + value.strip().upper().encode()
    return hmac_sha256(key, message).hex()
