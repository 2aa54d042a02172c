"""Errors of the HSM layer. None of them ever carries key material or a PIN."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = [
    "HsmError", "HsmUnavailable", "TokenNotFound", "WrongPin", "KeyNotFound", "KeyExists",
    "DecryptionFailed", "UnsupportedKey",
]


class HsmError(CofferError):
    """Something went wrong talking to the HSM."""


class HsmUnavailable(HsmError):
    """The PKCS#11 module cannot be loaded."""


class TokenNotFound(HsmError):
    """No token with that label."""


class WrongPin(HsmError):
    """The token refused the PIN."""


class KeyNotFound(HsmError):
    """No key with that label in the token."""


class KeyExists(HsmError):
    """A key with that label already exists; labels are unique."""


class DecryptionFailed(HsmError):
    """A ciphertext was tampered with, or its associated data does not match."""


class UnsupportedKey(HsmError):
    """That operation is not defined for that kind of key."""
