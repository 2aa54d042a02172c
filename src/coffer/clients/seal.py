"""Sealing of client secrets at rest (the TOTP secret) under an AES-256 key inside the HSM.

The sealed form is `sealed:v1:` + base64(nonce || ciphertext || tag), bound by its AAD to the
client id and the column, so a sealed secret copied to another client's row does not open.
Without a seal (tests, the embedded demo) secrets are stored as they are.
"""

from __future__ import annotations

import base64
from typing import Protocol

from coffer.clients.errors import ClientError
from coffer.hsm import Hsm, KeyKind

__all__ = ["SecretSeal", "HsmSeal", "seal_secret", "open_secret", "CLIENT_SECRETS_KEY_LABEL"]

CLIENT_SECRETS_KEY_LABEL = "coffer-client-secrets"
_PREFIX = "sealed:v1:"


class SecretSeal(Protocol):
    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


class HsmSeal:
    """AES-256-GCM in the HSM; the key is made on first use and never leaves the token."""

    def __init__(self, hsm: Hsm, *, label: str = CLIENT_SECRETS_KEY_LABEL) -> None:
        self._hsm = hsm
        self._label = label
        if not hsm.has_key(label):
            hsm.generate_key(label, KeyKind.AES256)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return self._hsm.encrypt(self._label, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        plain = self._hsm.decrypt(self._label, blob, aad)
        try:
            return bytes(plain)
        finally:
            plain[:] = b"\x00" * len(plain)


def _aad(client_id: str, column: str) -> bytes:
    return f"coffer/clients/{column}/v1\x00{client_id}".encode()


def seal_secret(seal: SecretSeal | None, client_id: str, column: str, secret: str) -> str:
    if seal is None:
        return secret
    return _PREFIX + base64.b64encode(seal.seal(secret.encode(), _aad(client_id, column))).decode()


def open_secret(seal: SecretSeal | None, client_id: str, column: str, stored: str) -> str:
    if not stored.startswith(_PREFIX):
        return stored
    if seal is None:
        raise ClientError("this client secret is sealed in the HSM and no seal is configured")
    try:
        return seal.open(base64.b64decode(stored[len(_PREFIX):], validate=True), _aad(client_id, column)).decode()
    except ClientError:
        raise
    except Exception as exc:  # a tampered or moved secret: refuse, never fall back
        raise ClientError(f"client secret does not open ({type(exc).__name__})") from None
