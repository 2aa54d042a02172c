"""Verification of a finished signature under a ciphersuite. Raises, never returns a bool."""

from __future__ import annotations

from coffer.mpc.errors import InvalidSignature
from coffer.mpc.frost.ciphersuite import Ciphersuite
from coffer.mpc.hazmat.group import Element

__all__ = ["verify_signature"]


def verify_signature(suite: Ciphersuite, public_key: Element, message: bytes, signature: bytes) -> None:
    """Raise InvalidSignature unless `signature` on `message` verifies under `public_key`.

    For SECP256K1_TR, `public_key` is the tweaked key (`signing_key`); only its x coordinate counts.
    """
    if public_key.group != suite.group.name:
        raise InvalidSignature(f"a {public_key.group} key cannot verify a {suite.name} signature")
    suite.verify(public_key, message, signature)
