"""exchange.security.crypto: sealing, wrapping, signing; every failure is one opaque error."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.errors import ExchangeError
from exchange.security import crypto
from exchange.security.blindindex import blind_index
from exchange.security.crypto import DecryptionError, SignatureError
from exchange.security.keystore import DataKey, FieldCipher

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_new_key_is_32_random_bytes() -> None:
    keys = {crypto.new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 32 for k in keys)


def test_seal_round_trip_and_token_layout() -> None:
    token = crypto.seal(KEY, b"secret value", b"aad")

    assert len(token) == 12 + len(b"secret value") + 16
    assert b"secret value" not in token
    assert crypto.open_sealed(KEY, token, b"aad") == b"secret value"
    assert crypto.open_sealed(KEY, crypto.seal(KEY, b"", b""), b"") == b""


def test_nonces_are_random() -> None:
    assert crypto.seal(KEY, b"same", b"") != crypto.seal(KEY, b"same", b"")


def test_tampering_with_any_byte_fails() -> None:
    token = crypto.seal(KEY, b"a sensitive field", b"aad")
    for i in range(len(token)):
        for flip in (0x01, 0x80):
            tampered = bytearray(token)
            tampered[i] ^= flip
            with pytest.raises(DecryptionError):
                crypto.open_sealed(KEY, bytes(tampered), b"aad")


@pytest.mark.parametrize("token_len", [0, 1, 12, 27])
def test_truncated_tokens_fail(token_len: int) -> None:
    token = crypto.seal(KEY, b"x", b"")
    with pytest.raises(DecryptionError):
        crypto.open_sealed(KEY, token[:token_len], b"")


def test_wrong_aad_or_key_fails() -> None:
    token = crypto.seal(KEY, b"value", b"record-1")
    with pytest.raises(DecryptionError):
        crypto.open_sealed(KEY, token, b"record-2")
    with pytest.raises(DecryptionError):
        crypto.open_sealed(OTHER_KEY, token, b"record-1")


def test_error_is_opaque_and_the_cause_is_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = crypto.seal(KEY, b"PLAINTEXT-MARKER", b"aad")
    caplog.set_level(logging.DEBUG, logger="exchange.security.crypto")

    with pytest.raises(DecryptionError) as info:
        crypto.open_sealed(OTHER_KEY, token, b"aad")

    assert isinstance(info.value, ExchangeError)
    assert info.value.code == "decryption_failed"
    assert info.value.message == (
        "cannot decrypt: wrong key, tampered data, or data bound to another record"
    )
    assert info.value.__cause__ is None
    assert "authentication tag" in caplog.text
    for secret in (KEY, OTHER_KEY):
        assert secret.hex() not in caplog.text
    assert "PLAINTEXT-MARKER" not in caplog.text


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.seal(b"short", b"x", b"")
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.wrap_key(KEY, b"short", context=b"c")


def test_wrap_round_trip_is_bound_to_context_and_kek() -> None:
    data_key = crypto.new_key()
    wrapped = crypto.wrap_key(KEY, data_key, context=b"data:person:2026-11")

    assert data_key not in wrapped
    assert crypto.unwrap_key(KEY, wrapped, context=b"data:person:2026-11") == data_key
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(KEY, wrapped, context=b"data:person:2026-12")
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(OTHER_KEY, wrapped, context=b"data:person:2026-11")


def test_a_wrapped_key_is_not_a_sealed_value() -> None:
    """Domain separation: wrapping and sealing under the same key do not mix."""
    wrapped = crypto.wrap_key(KEY, crypto.new_key(), context=b"ctx")
    with pytest.raises(DecryptionError):
        crypto.open_sealed(KEY, wrapped, b"ctx")
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(KEY, crypto.seal(KEY, crypto.new_key(), b"ctx"), context=b"ctx")


def test_sign_and_verify() -> None:
    private, public = crypto.new_signing_key()
    assert len(private) == 32
    assert len(public) == 32
    signature = crypto.sign(private, b"batch 42")

    assert len(signature) == 64
    crypto.verify(public, b"batch 42", signature)


def test_tampered_message_signature_or_other_key_fails() -> None:
    private, public = crypto.new_signing_key()
    _, other_public = crypto.new_signing_key()
    signature = crypto.sign(private, b"batch 42")

    for i in range(len(signature)):
        bad = bytearray(signature)
        bad[i] ^= 0x01
        with pytest.raises(SignatureError):
            crypto.verify(public, b"batch 42", bytes(bad))
    with pytest.raises(SignatureError):
        crypto.verify(public, b"batch 43", signature)
    with pytest.raises(SignatureError):
        crypto.verify(other_public, b"batch 42", signature)
    with pytest.raises(SignatureError) as info:
        crypto.verify(b"not a key", b"batch 42", signature)
    assert info.value.code == "bad_signature"


def _openssl_accepts(public: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _accepts(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        crypto.verify(public, message, signature)
    except SignatureError:
        return False
    return True


@settings(max_examples=200, deadline=None)  # a busy machine must not fail it
@given(st.binary(max_size=300), st.integers(0, 95), st.integers(0, 7), st.booleans())
def test_verify_agrees_with_openssl(message: bytes, where: int, bit: int, tamper: bool) -> None:
    # libsodium verifies; the keys and signatures are OpenSSL's (cryptography's): the same
    # verdict on each signature, good or with one bit of the signature or the key flipped.
    private, public = crypto.new_signing_key()
    signature = crypto.sign(private, message)
    if tamper:
        both = bytearray(signature + public)
        both[where] ^= 1 << bit
        signature, public = bytes(both[:64]), bytes(both[64:])
    assert _accepts(public, message, signature) == _openssl_accepts(public, message, signature)
    assert _accepts(public, message, signature) is not tamper


def test_verify_takes_rfc_8032_test_1() -> None:
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    crypto.verify(public, b"", signature)
    with pytest.raises(SignatureError):
        crypto.verify(public, b"x", signature)


def test_a_non_canonical_signature_and_a_small_order_key_fail() -> None:
    # S + L (the group order) verifies the same equation: refused (as OpenSSL does).
    private, public = crypto.new_signing_key()
    signature = crypto.sign(private, b"m")
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + order
    malleated = signature[:32] + s.to_bytes(32, "little")
    assert not _accepts(public, b"m", malleated)
    assert not _openssl_accepts(public, b"m", malleated)
    # The neutral point as the key and as R, S = 0: every message "verifies" by the bare
    # equation; libsodium refuses small-order points (stricter than OpenSSL here).
    neutral = (1).to_bytes(32, "little")
    assert not _accepts(neutral, b"m", neutral + bytes(32))


def test_hmac_sha256_matches_rfc_4231_case_2() -> None:
    mac = crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


# --- property: field tokens open only where they were sealed ---------------------------------


class _OneKeyStore:
    """The smallest KeyStore FieldCipher needs: one data key."""

    key_id = "00112233445566778899aabbccddeeff"

    def __init__(self) -> None:
        self.key = crypto.new_key()

    def data_key(self, dataset: str, period: str) -> DataKey:
        return DataKey(self.key_id, self.key)

    def data_key_by_id(self, key_id: str) -> bytes:
        assert key_id == self.key_id
        return self.key


CIPHER = FieldCipher(_OneKeyStore())  # type: ignore[arg-type]  # only what FieldCipher calls
names = st.text(min_size=0, max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=200),
    record_key=names,
    other=names,
    dataset=st.sampled_from(["person", "vehicle"]),
    field=st.sampled_from(["name", "birth_date"]),
)
def test_field_tokens_open_only_for_their_record_field_and_dataset(
    plaintext: bytes, record_key: str, other: str, dataset: str, field: str
) -> None:
    token = CIPHER.encrypt(dataset, field, record_key, plaintext, period="2026-11")

    assert CIPHER.decrypt(dataset, field, record_key, token) == plaintext
    if other != record_key:
        with pytest.raises(DecryptionError):
            CIPHER.decrypt(dataset, field, other, token)
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(dataset, field + "_x", record_key, token)
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(dataset + "_x", field, record_key, token)


@given(a=names, b=names, c=names)
def test_field_binding_is_unambiguous(a: str, b: str, c: str) -> None:
    """Moving characters between dataset, field and record key never keeps a token valid."""
    token = CIPHER.encrypt(a, b, c, b"v", period="p")
    for shifted in [(a + b[:1], b[1:], c), (a, b + c[:1], c[1:]), (a[:-1], a[-1:] + b, c)]:
        if shifted != (a, b, c):
            with pytest.raises(DecryptionError):
                CIPHER.decrypt(*shifted, token)


def test_blind_index_is_hmac_sha256_of_domain_and_normalised_value() -> None:
    # The value every registry already holds: changing it would orphan every stored index.
    key = bytes(range(32))
    expected = hmac.new(key, b"person.resident_id\x00AB12X", hashlib.sha256).hexdigest()
    assert blind_index(key, "person.resident_id", "  ab12x ") == expected


def test_equal_compares_whole_values() -> None:
    assert crypto.equal(b"same", b"same")
    assert not crypto.equal(b"same", b"sama")
    assert not crypto.equal(b"same", b"same!")


def test_hash_secret_is_scrypt_at_the_fixed_cost() -> None:
    salt = b"0123456789abcdef"
    expected = hashlib.scrypt(b"secret", salt=salt, n=2**14, r=8, p=1, dklen=32)
    assert crypto.hash_secret(b"secret", salt) == expected
    assert crypto.hash_secret(b"secret", b"another salt....") != expected
