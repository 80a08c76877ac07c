"""The one module that touches cryptographic primitives (pyca/cryptography, and PyNaCl).

Everything else in the exchange seals, opens, wraps, signs and verifies through
this small API, which offers no algorithm choices:

- :func:`seal` / :func:`open_sealed`: AES-256-GCM with a random 96-bit nonce;
  a token is ``nonce (12) || ciphertext || tag (16)``. The associated data is
  authenticated, not stored: opening with other associated data fails.
- :func:`wrap_key` / :func:`unwrap_key`: a 32-byte key sealed under a
  key-encryption key, with ``context`` (the wrapped key's identity) bound in as
  associated data, so a wrapped key copied to another row does not unwrap.
- :func:`new_signing_key`, :func:`sign`, :func:`verify`: Ed25519, raw 32-byte keys.
  Verifying is done by libsodium (PyNaCl), the rest by OpenSSL (cryptography):
  the same keys and the same 64-byte RFC 8032 signatures, and libsodium checks
  one of them in 60% of OpenSSL's time on this project's machines (the
  registry builder verifies every record; see docs/benchmarks.md). libsodium
  is the stricter of the two: it also refuses public keys and signature points
  of small order, which no key made by :func:`new_signing_key` is.
- :func:`hmac_sha256`, and :func:`equal` (a comparison in constant time).
- :func:`pseudonym`: a keyed pseudonym of a value within a context (a purpose):
  HMAC-SHA256 under a key derived from ``key`` and the context by HMAC-SHA256, so
  pseudonyms of one value under two contexts cannot be linked without the key.
- :func:`hash_secret`: scrypt (memory-hard) of a secret under a salt, for API
  keys; the cost is fixed here, not chosen by the caller.

A failed open or unwrap raises :class:`DecryptionError` and a failed check
:class:`SignatureError`, each with one fixed message whatever went wrong; the
detailed cause goes to the log at DEBUG. Neither messages nor logs ever hold key
material or plaintext.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from exchange.core.errors import DecryptionError, SignatureError

log = logging.getLogger(__name__)

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SIGNATURE_SIZE = 64
# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB per hash, ~50 ms on this class of machine.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
# Domain separation: a wrapped key is never a valid sealed field and vice versa.
_WRAP_DOMAIN = b"exchange.wrap.v1\x00"


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        # A programming error, not a decryption failure: the caller handed in a non-key.
        raise ValueError(f"a key must be {KEY_SIZE} bytes, got {len(key)}")


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_SIZE)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM encrypt ``plaintext`` bound to ``aad``: ``nonce || ciphertext || tag``."""
    _check_key(key)
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, token: bytes, aad: bytes) -> bytes:
    """The plaintext of a :func:`seal` token; :class:`DecryptionError` if it does not open."""
    _check_key(key)
    if len(token) < NONCE_SIZE + TAG_SIZE:
        log.debug("open failed: token of %d bytes is shorter than nonce and tag", len(token))
        raise DecryptionError()
    try:
        return AESGCM(key).decrypt(token[:NONCE_SIZE], token[NONCE_SIZE:], aad)
    except InvalidTag:
        log.debug(
            "open failed: authentication tag mismatch (wrong key, tampered token or other "
            "associated data; token %d bytes, aad %d bytes)",
            len(token),
            len(aad),
        )
        raise DecryptionError() from None


def wrap_key(kek: bytes, key: bytes, *, context: bytes) -> bytes:
    """``key`` sealed under the key-encryption key ``kek``, bound to ``context``."""
    _check_key(key)
    return seal(kek, key, _WRAP_DOMAIN + context)


def unwrap_key(kek: bytes, wrapped: bytes, *, context: bytes) -> bytes:
    """The key inside ``wrapped``; :class:`DecryptionError` on a wrong KEK or context."""
    key = open_sealed(kek, wrapped, _WRAP_DOMAIN + context)
    if len(key) != KEY_SIZE:  # authenticated, so only if something wrapped a non-key
        log.debug("unwrap failed: wrapped value is %d bytes, not a key", len(key))
        raise DecryptionError()
    return key


def new_signing_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as raw bytes: ``(private 32, public 32)``."""
    private = Ed25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


@functools.lru_cache(maxsize=64)
def _private_key(private_raw: bytes) -> Ed25519PrivateKey:
    # Loading the key costs more than signing with it (measured: 84 -> 35 us a record);
    # a connector signs every record with the same key.
    return Ed25519PrivateKey.from_private_bytes(private_raw)


def sign(private_raw: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message``."""
    return _private_key(private_raw).sign(message)


def verify(public_raw: bytes, message: bytes, signature: bytes) -> None:
    """Return if ``signature`` is ``message`` signed by ``public_raw``, else raise
    :class:`SignatureError`."""
    if len(public_raw) != KEY_SIZE:
        log.debug("verify failed: unusable public key (%d bytes)", len(public_raw))
        raise SignatureError()
    if len(signature) == SIGNATURE_SIZE:
        try:
            crypto_sign_open(signature + message, public_raw)
            return
        except BadSignatureError:
            pass
    log.debug(
        "verify failed: signature of %d bytes does not match a message of %d bytes",
        len(signature),
        len(message),
    )
    raise SignatureError()


def public_key_pem(public_raw: bytes) -> str:
    """An Ed25519 public key as PEM (SubjectPublicKeyInfo), as openssl and others read it."""
    public = Ed25519PublicKey.from_public_bytes(public_raw)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_from_pem(pem: str) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as PEM; ValueError if it is not one."""
    public = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return public.public_bytes_raw()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key`` (32 bytes)."""
    # The standard library's one-shot HMAC (OpenSSL underneath) gives the same bytes as
    # pyca's HMAC object in a fraction of the time: blind indexes take one per identifier.
    return hmac.digest(key, message, "sha256")


_PSEUDONYM_DOMAIN = b"exchange.pseudonym.v1\x00"


def pseudonym(key: bytes, context: bytes, value: bytes) -> bytes:
    """A keyed pseudonym (32 bytes) of ``value`` within ``context``: the same value gives
    the same pseudonym in one context and unlinkable ones in two."""
    _check_key(key)
    derived = hmac.digest(key, _PSEUDONYM_DOMAIN + context, "sha256")
    return hmac.digest(derived, value, "sha256")


def equal(a: bytes, b: bytes) -> bool:
    """Whether ``a == b``, in a time that does not depend on where they differ."""
    return hmac.compare_digest(a, b)


def hash_secret(secret: bytes, salt: bytes) -> bytes:
    """scrypt of ``secret`` under ``salt`` (32 bytes; 16 MiB and ~50 ms a call, by design)."""
    return Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(secret)
