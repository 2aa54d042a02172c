"""The HSM layer against a real SoftHSM2 token."""

from __future__ import annotations

import hashlib

import coincurve
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.signing import VerifyKey
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11

from coffer.hsm import (
    SOFTHSM_MODULE,
    DecryptionFailed,
    Hsm,
    KeyExists,
    KeyKind,
    KeyNotFound,
    TokenNotFound,
    UnsupportedKey,
    WrongPin,
)
from coffer.hsm.token import SECP256K1_ORDER
from coffer.testing import TokenHandle


def test_private_keys_cannot_be_read_out(token: TokenHandle) -> None:
    """Keys generated in the token are sensitive and not extractable: reading the value is refused."""
    with token.open() as hsm:
        for label, kind in (("k1", KeyKind.SECP256K1), ("p256", KeyKind.P256), ("ed", KeyKind.ED25519),
                            ("aes", KeyKind.AES256)):
            hsm.generate_key(label, kind)
            session = hsm._ensure()
            object_class = ObjectClass.SECRET_KEY if kind is KeyKind.AES256 else ObjectClass.PRIVATE_KEY
            key = session.get_key(object_class=object_class, label=label)
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
            with pytest.raises(p11.AttributeSensitive):
                key[Attribute.VALUE]


def test_secp256k1_signature_verifies_with_libsecp256k1_and_is_low_s(token: TokenHandle) -> None:
    """A secp256k1 signature from the token verifies with coincurve (libsecp256k1) and has low S."""
    with token.open() as hsm:
        hsm.generate_key("k1", KeyKind.SECP256K1)
        public = hsm.public_key("k1")
        assert 33 == len(public)
        for i in range(20):
            digest = hashlib.sha256(f"message {i}".encode()).digest()
            raw = hsm.sign("k1", digest)
            assert int.from_bytes(raw[32:], "big") <= SECP256K1_ORDER // 2
            der = hsm.sign("k1", digest, der=True)
            assert coincurve.PublicKey(public).verify(der, digest, hasher=None)


def test_p256_signature_verifies_with_cryptography(token: TokenHandle) -> None:
    """A P-256 signature from the token verifies with pyca/cryptography (OpenSSL)."""
    with token.open() as hsm:
        hsm.generate_key("p", KeyKind.P256)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), hsm.public_key("p"))
        message = b"policy decision"
        raw = hsm.sign("p", hashlib.sha256(message).digest())
        signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_ed25519_signature_verifies_with_libsodium_and_openssl(token: TokenHandle) -> None:
    """An Ed25519 signature from the token verifies with PyNaCl (libsodium) and cryptography."""
    with token.open() as hsm:
        hsm.generate_key("ed", KeyKind.ED25519)
        public = hsm.public_key("ed")
        assert 32 == len(public)
        signature = hsm.sign("ed", b"halt notice")
        VerifyKey(public).verify(b"halt notice", signature)
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, b"halt notice")


def test_aes_gcm_round_trip_and_changed_associated_data_is_refused(token: TokenHandle) -> None:
    """AES-GCM decrypts what it encrypted; changed associated data or ciphertext is refused."""
    with token.open() as hsm:
        hsm.generate_key("kek", KeyKind.AES256)
        blob = hsm.encrypt("kek", b"share bytes", b"cosigner-1/key-7")
        assert bytearray(b"share bytes") == hsm.decrypt("kek", blob, b"cosigner-1/key-7")
        with pytest.raises(DecryptionFailed):
            hsm.decrypt("kek", blob, b"cosigner-2/key-7")
        tampered = bytearray(blob)
        tampered[20] ^= 1
        with pytest.raises(DecryptionFailed):
            hsm.decrypt("kek", bytes(tampered), b"cosigner-1/key-7")
        with pytest.raises(DecryptionFailed):
            hsm.decrypt("kek", blob[:10], b"cosigner-1/key-7")


def test_wrong_pin_is_refused(token: TokenHandle) -> None:
    """A wrong PIN gets WrongPin, not a session."""
    with pytest.raises(WrongPin):
        Hsm(module=SOFTHSM_MODULE, token_label=token.label, pin="0000000000")


def test_missing_token_and_key_are_typed_errors(token: TokenHandle) -> None:
    """A missing token or key label gets a typed error; duplicate labels are refused."""
    with pytest.raises(TokenNotFound):
        Hsm(module=SOFTHSM_MODULE, token_label="no-such-token", pin="x" * 8)
    with token.open() as hsm:
        with pytest.raises(KeyNotFound):
            hsm.sign("absent", b"\x00" * 32)
        hsm.generate_key("k", KeyKind.AES256)
        with pytest.raises(KeyExists):
            hsm.generate_key("k", KeyKind.AES256)
        with pytest.raises(UnsupportedKey):
            hsm.sign("k", b"\x00" * 32)


def test_repr_never_shows_the_pin(token: TokenHandle) -> None:
    """Neither the token handle nor the HSM session prints its PIN."""
    with token.open() as hsm:
        assert token.pin not in repr(hsm)
    assert token.pin not in repr(token)
