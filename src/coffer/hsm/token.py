"""PKCS#11 token access: non-extractable keys by label, signatures, AES-GCM with associated data.

Keys generated here are SENSITIVE and not EXTRACTABLE: their private values never leave the
token. This module never logs or returns a PIN or a private value.
"""

from __future__ import annotations

import enum
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from coffer.hsm.errors import (
    DecryptionFailed,
    HsmError,
    HsmUnavailable,
    KeyExists,
    KeyNotFound,
    TokenNotFound,
    UnsupportedKey,
    WrongPin,
)

__all__ = ["KeyKind", "Hsm", "SECP256K1_ORDER", "normalize_low_s", "der_encode_signature"]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GCM_NONCE_BYTES = 12
GCM_TAG_BITS = 128
_CURVE_OIDS = {
    # DER-encoded named-curve OIDs (EC_PARAMS)
    "secp256k1": bytes.fromhex("06052b8104000a"),
    "p256": bytes.fromhex("06082a8648ce3d030107"),
    "ed25519": bytes.fromhex("06032b6570"),
}


class KeyKind(enum.Enum):
    SECP256K1 = "secp256k1"
    P256 = "p256"
    ED25519 = "ed25519"
    AES256 = "aes256"


@dataclass(frozen=True, slots=True)
class _Loaded:
    lib: Any
    module: str


_LOCK = threading.RLock()
_LOADED: dict[str, _Loaded] = {}
_GENERATION = [0]


def _load(module: str) -> Any:
    with _LOCK:
        loaded = _LOADED.get(module)
        if loaded is None:
            if not os.path.exists(module):
                raise HsmUnavailable(f"PKCS#11 module not found: {module}")
            try:
                loaded = _Loaded(pkcs11.lib(module), module)
            except Exception as exc:  # the binding raises several unrelated types on load failure
                raise HsmUnavailable(f"cannot load PKCS#11 module {module}: {type(exc).__name__}") from None
            _LOADED[module] = loaded
        return loaded.lib


def _der_octets(value: bytes) -> bytes:
    """Unwrap a DER OCTET STRING (EC_POINT is stored wrapped)."""
    if len(value) >= 2 and value[0] == 0x04:
        length = value[1]
        if length < 0x80 and len(value) == 2 + length:
            return value[2:]
        if length == 0x81 and len(value) == 3 + value[2]:
            return value[3:]
    return value


def _compress(point: bytes) -> bytes:
    if len(point) == 65 and point[0] == 0x04:
        x, y = point[1:33], point[33:]
        return bytes([0x02 | (y[-1] & 1)]) + x
    return point


def normalize_low_s(signature: bytes, order: int = SECP256K1_ORDER) -> bytes:
    """Raw r||s with s replaced by n - s when s > n/2 (BIP-62 low-S)."""
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if s > order // 2:
        s = order - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def der_encode_signature(signature: bytes) -> bytes:
    def integer(value: bytes) -> bytes:
        value = value.lstrip(b"\x00") or b"\x00"
        if value[0] & 0x80:
            value = b"\x00" + value
        return b"\x02" + bytes([len(value)]) + value

    body = integer(signature[:32]) + integer(signature[32:])
    return b"\x30" + bytes([len(body)]) + body


class Hsm:
    """One logged-in session on one token. Thread-safe; reopens itself after a module re-scan."""

    def __init__(self, *, module: str, token_label: str, pin: str) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = pin
        # One lock for every token in the process: concurrent calls into the module through
        # different sessions have been seen to crash SoftHSM2, so calls are serialised.
        self._lock = _LOCK
        self._session: Any = None
        self._generation = -1
        self._open()

    def __repr__(self) -> str:
        return f"Hsm(token={self._token_label!r}, pin=<redacted>)"

    @property
    def token_label(self) -> str:
        return self._token_label

    def _open(self) -> None:
        lib = _load(self._module)
        with _LOCK:
            try:
                token = lib.get_token(token_label=self._token_label)
            except p11.NoSuchToken:
                lib.reinitialize()  # tokens made since the module was loaded appear after a re-scan
                _GENERATION[0] += 1
                try:
                    token = lib.get_token(token_label=self._token_label)
                except p11.NoSuchToken:
                    raise TokenNotFound(f"no token labelled {self._token_label!r}") from None
            try:
                self._session = token.open(user_pin=self._pin, rw=True)
            except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
                raise WrongPin(f"token {self._token_label!r} refused the PIN") from None
            except p11.PinLocked:
                raise WrongPin(f"token {self._token_label!r} is locked after too many wrong PINs") from None
            self._generation = _GENERATION[0]

    def _ensure(self) -> Any:
        if self._generation != _GENERATION[0]:
            self._open()
        return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                except p11.PKCS11Error:
                    pass
                self._session = None

    def __enter__(self) -> Hsm:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- keys --------------------------------------------------------------------------------
    def has_key(self, label: str) -> bool:
        with self._lock:
            session = self._ensure()
            return any(True for _ in session.get_objects({Attribute.LABEL: label}))

    def generate_key(self, label: str, kind: KeyKind) -> None:
        """Create a non-extractable key `label` of `kind` inside the token."""
        if not label or len(label) > 128:
            raise HsmError("key label must be 1..128 characters")
        with self._lock:
            session = self._ensure()
            if self.has_key(label):
                raise KeyExists(f"key {label!r} exists")
            private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.TOKEN: True,
                       Attribute.PRIVATE: True, Attribute.SIGN: True}
            if kind is KeyKind.AES256:
                session.generate_key(KeyType.AES, 256, label=label, store=True,
                                     template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                               Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
                return
            if kind is KeyKind.ED25519:
                params = session.create_domain_parameters(
                    KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: _CURVE_OIDS["ed25519"]}, local=True)
                params.generate_keypair(store=True, label=label, private_template=private,
                                        mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
                return
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: _CURVE_OIDS[kind.value]}, local=True)
            params.generate_keypair(store=True, label=label, private_template=private)

    def _key(self, label: str, object_class: ObjectClass) -> Any:
        session = self._ensure()
        try:
            return session.get_key(object_class=object_class, label=label)
        except p11.NoSuchKey:
            raise KeyNotFound(f"no key {label!r} in token {self._token_label!r}") from None
        except p11.MultipleObjectsReturned:
            raise HsmError(f"several keys labelled {label!r}") from None

    def key_kind(self, label: str) -> KeyKind:
        with self._lock:
            try:
                key = self._key(label, ObjectClass.SECRET_KEY)
                if key.key_type == KeyType.AES:
                    return KeyKind.AES256
            except KeyNotFound:
                pass
            key = self._key(label, ObjectClass.PUBLIC_KEY)
            if key.key_type == KeyType.EC_EDWARDS:
                return KeyKind.ED25519
            params = bytes(key[Attribute.EC_PARAMS])
            for name, oid in _CURVE_OIDS.items():
                if oid == params:
                    return KeyKind(name)
            raise UnsupportedKey(f"key {label!r} has an unknown curve")

    def public_key(self, label: str) -> bytes:
        """SEC1 compressed point (33 bytes) for ECDSA keys; the raw 32 bytes for Ed25519."""
        with self._lock:
            key = self._key(label, ObjectClass.PUBLIC_KEY)
            return _compress(_der_octets(bytes(key[Attribute.EC_POINT])))

    # -- signatures -------------------------------------------------------------------------
    def sign(self, label: str, message: bytes, *, der: bool = False) -> bytes:
        """Sign with key `label`.

        ECDSA keys take a 32-byte digest (hash outside the token) and return raw r||s, low-S for
        secp256k1 (DER when `der`). Ed25519 keys take the message itself and return 64 bytes.
        """
        kind = self.key_kind(label)
        if kind is KeyKind.AES256:
            raise UnsupportedKey(f"key {label!r} is an AES key and cannot sign")
        with self._lock:
            key = self._key(label, ObjectClass.PRIVATE_KEY)
            if kind is KeyKind.ED25519:
                return bytes(key.sign(message, mechanism=Mechanism.EDDSA))
            if len(message) != 32:
                raise HsmError("ECDSA signing takes a 32-byte digest")
            raw = bytes(key.sign(message, mechanism=Mechanism.ECDSA))
        if kind is KeyKind.SECP256K1:
            raw = normalize_low_s(raw)
        return der_encode_signature(raw) if der else raw

    # -- encryption -------------------------------------------------------------------------
    def encrypt(self, label: str, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM under key `label`: nonce (12) || ciphertext || tag (16)."""
        nonce = secrets.token_bytes(GCM_NONCE_BYTES)
        with self._lock:
            key = self._key(label, ObjectClass.SECRET_KEY)
            sealed = key.encrypt(bytes(plaintext), mechanism=Mechanism.AES_GCM,
                                 mechanism_param=pkcs11.GCMParams(nonce, aad, GCM_TAG_BITS))
        return nonce + bytes(sealed)

    def decrypt(self, label: str, blob: bytes, aad: bytes) -> bytearray:
        """Inverse of encrypt; raises DecryptionFailed when the blob or `aad` was changed."""
        if len(blob) < GCM_NONCE_BYTES + GCM_TAG_BITS // 8:
            raise DecryptionFailed("ciphertext too short")
        nonce, sealed = blob[:GCM_NONCE_BYTES], blob[GCM_NONCE_BYTES:]
        with self._lock:
            key = self._key(label, ObjectClass.SECRET_KEY)
            try:
                plain = key.decrypt(sealed, mechanism=Mechanism.AES_GCM,
                                    mechanism_param=pkcs11.GCMParams(nonce, aad, GCM_TAG_BITS))
            except (p11.GeneralError, p11.EncryptedDataInvalid, p11.EncryptedDataLenRange,
                    p11.FunctionFailed):
                raise DecryptionFailed("ciphertext or associated data was changed") from None
            except p11.PKCS11Error:
                raise DecryptionFailed("the token refused to decrypt") from None
        return bytearray(plain)
