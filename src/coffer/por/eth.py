"""Ethereum proofs of control: EIP-191 personal_sign signatures over the reserves challenge.

A hot or deposit key held by the threshold-ECDSA co-signers signs `personal_digest(challenge)`
jointly and returns (r, s, recovery id); `assemble` encodes it. `sign_personal` is for keys held
in this process (tests, demo). Verification: `coffer.por.verify.eth_verify` (stand-alone).
"""

from __future__ import annotations

from coincurve import PrivateKey

from coffer.por.errors import ReservesError
from coffer.por.verify import VerificationFailed, eth_address_of, eth_personal_digest, eth_verify

__all__ = ["personal_digest", "assemble", "sign_personal", "address_of_secret"]

personal_digest = eth_personal_digest
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def assemble(address: str, message: bytes, r: int, s: int, recovery_id: int) -> str:
    """0x-hex r || s || v (v = 27 + recovery id), low-s normalised, checked before it is returned."""
    if s > _ORDER // 2:
        s, recovery_id = _ORDER - s, recovery_id ^ 1
    signature = "0x" + (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + recovery_id])).hex()
    try:
        eth_verify(address, message, signature)
    except VerificationFailed as exc:
        raise ReservesError(f"the Ethereum signature for {address} does not verify: {exc.reason}") from None
    return signature


def address_of_secret(secret: bytes) -> str:
    return eth_address_of(PrivateKey(secret).public_key.format())


def sign_personal(secret: bytes, message: bytes) -> str:
    raw = PrivateKey(secret).sign_recoverable(personal_digest(message), hasher=None)
    return assemble(address_of_secret(secret), message, int.from_bytes(raw[:32], "big"),
                    int.from_bytes(raw[32:64], "big"), raw[64])
