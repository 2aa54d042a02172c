"""BIP-340 Schnorr signatures under a configurable tag prefix, over libsecp256k1 (coincurve).

With the prefix "BIP0340" this is BIP-340 itself; ChillDKG signs its proofs of possession and
certificates with the same algorithm under its own prefixes, which libsecp256k1 cannot do, so
both live here once. Keys are 32-byte x-only; secrets are ints and never appear in an error.
"""

from __future__ import annotations

from typing import Final

import coincurve

from coffer.btc.errors import BtcError
from coffer.btc.hashes import tagged_hash
from coffer.invariant import invariant

__all__ = ["InvalidSchnorrSignature", "sign", "verify", "ORDER", "FIELD_PRIME", "BIP340_TAG_PREFIX"]

ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FIELD_PRIME: Final = 2**256 - 2**32 - 977
BIP340_TAG_PREFIX: Final = "BIP0340"


class InvalidSchnorrSignature(BtcError):
    """A BIP-340 signature (or key) is malformed or does not verify."""


def _point(scalar: int) -> coincurve.PublicKey:
    return coincurve.PublicKey.from_valid_secret(scalar.to_bytes(32, "big"))


def _challenge(tag_prefix: str, nonce_x: bytes, public_x: bytes, message: bytes) -> int:
    return int.from_bytes(tagged_hash(tag_prefix + "/challenge", nonce_x + public_x + message), "big") % ORDER


def sign(message: bytes, secret: int, aux_rand: bytes, *, tag_prefix: str = BIP340_TAG_PREFIX) -> bytes:
    """BIP-340 Sign with 32 bytes of auxiliary randomness."""
    invariant(1 <= secret < ORDER, "signing key out of range")
    invariant(len(aux_rand) == 32, "aux_rand is 32 bytes")
    public = _point(secret).format(compressed=True)
    d = secret if public[0] == 0x02 else ORDER - secret
    public_x = public[1:]
    mask = tagged_hash(tag_prefix + "/aux", aux_rand)
    masked = bytes(a ^ b for a, b in zip(d.to_bytes(32, "big"), mask, strict=True))
    k0 = int.from_bytes(tagged_hash(tag_prefix + "/nonce", masked + public_x + message), "big") % ORDER
    invariant(k0 != 0, "BIP-340 nonce is zero")
    nonce = _point(k0).format(compressed=True)
    k = k0 if nonce[0] == 0x02 else ORDER - k0
    challenge = _challenge(tag_prefix, nonce[1:], public_x, message)
    return nonce[1:] + ((k + challenge * d) % ORDER).to_bytes(32, "big")


def _lift_x(public_x: bytes) -> coincurve.PublicKey:
    if int.from_bytes(public_x, "big") >= FIELD_PRIME:
        raise InvalidSchnorrSignature("the public key is not a valid x-only key")
    try:
        return coincurve.PublicKey(b"\x02" + public_x)
    except ValueError:
        raise InvalidSchnorrSignature("the public key is not a valid x-only key") from None


def verify(public_x: bytes, message: bytes, signature: bytes, *, tag_prefix: str = BIP340_TAG_PREFIX) -> None:
    """BIP-340 Verify against a 32-byte x-only key; raises InvalidSchnorrSignature."""
    if len(public_x) != 32 or len(signature) != 64:
        raise InvalidSchnorrSignature("BIP-340 keys are 32 bytes and signatures 64 bytes")
    point = _lift_x(public_x)
    r_value = int.from_bytes(signature[:32], "big")
    s_value = int.from_bytes(signature[32:], "big")
    if r_value >= FIELD_PRIME or s_value >= ORDER:
        raise InvalidSchnorrSignature("signature value out of range")
    challenge = _challenge(tag_prefix, signature[:32], public_x, message)
    # R = s*G - e*P, computed as s*G + (n - e)*P; either term may vanish.
    terms = []
    if s_value:
        terms.append(_point(s_value))
    if challenge:
        terms.append(point.multiply((ORDER - challenge).to_bytes(32, "big")))
    try:
        nonce = coincurve.PublicKey.combine_keys(terms).format(compressed=True) if terms else None
    except ValueError:  # libsecp256k1 refuses to return the point at infinity
        nonce = None
    if nonce is None or nonce[0] != 0x02 or nonce[1:] != signature[:32]:
        raise InvalidSchnorrSignature("BIP-340 signature does not verify")
