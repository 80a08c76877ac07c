"""Security: keys, blind indexes, provenance and Merkle hashes.

Rule of this package: only :mod:`exchange.security.crypto` imports cryptographic
primitives (``cryptography``, ``nacl``, ``hmac``); everything else calls it.
"""
