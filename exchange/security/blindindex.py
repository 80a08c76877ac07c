"""Blind indexes: keyed hashes that let the exchange match identifiers without reading them.

``blind_index(key, "person.resident_id", value)`` is HMAC-SHA256 under the
linkage key over the domain and the normalised value, hex encoded. The same
identifier gives the same index in every department's records; without the key
the index reveals nothing, even for identifiers with few possible values.
"""

from __future__ import annotations

import base64

from exchange.security.crypto import hmac_sha256, pseudonym


def blind_index(key: bytes, domain: str, value: str) -> str:
    """Keyed hash of ``value`` within ``domain`` (e.g. ``person.resident_id``)."""
    message = domain.encode() + b"\x00" + value.strip().upper().encode()
    return hmac_sha256(key, message).hex()


TOKEN_KEY_DATASET = "mask-token"  # the keystore's data key the gateway makes tokens with
TOKEN_KEY_PERIOD = "v1"


def mask_token(key: bytes, purpose: str, domain: str, value: str) -> str:
    """The ``token`` masking style: a keyed pseudonym of ``value`` (normalised as for a
    blind index) within ``domain``, for one purpose; ``tk_`` and 26 base32 characters.

    The same value gives the same token for one purpose (a caseworker can tell two records
    of one person apart from two people), and unlinkable tokens for two purposes."""
    message = domain.encode() + b"\x00" + value.strip().upper().encode()
    digest = pseudonym(key, purpose.encode(), message)
    return "tk_" + base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()
