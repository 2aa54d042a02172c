"""BIP-341 Taproot tweaks: the TapTweak hash, the output key, and the tweaked secret (BIP-86)."""

from __future__ import annotations

from typing import Final

import coincurve

from coffer.btc.errors import InvalidTweak
from coffer.btc.hashes import tagged_hash
from coffer.btc.schnorr import ORDER

__all__ = ["TAG_TAPTWEAK", "tap_tweak", "output_key", "tweak_secret"]

TAG_TAPTWEAK: Final = "TapTweak"


def tap_tweak(internal_key_xonly: bytes, merkle_root: bytes = b"") -> bytes:
    """t = H_TapTweak(x(P) || merkle_root); an empty merkle root means key path only (BIP-86)."""
    if len(internal_key_xonly) != 32:
        raise InvalidTweak("an x-only internal key is 32 bytes")
    if len(merkle_root) not in (0, 32):
        raise InvalidTweak("a merkle root is 32 bytes")
    return tagged_hash(TAG_TAPTWEAK, internal_key_xonly + merkle_root)


def output_key(internal_key_xonly: bytes, merkle_root: bytes = b"") -> bytes:
    """The x-only output key Q = lift_x(P) + t*G."""
    tweak = tap_tweak(internal_key_xonly, merkle_root)
    try:
        point = coincurve.PublicKey(b"\x02" + internal_key_xonly).add(tweak)
    except ValueError:
        raise InvalidTweak("not a valid internal key, or the tweak is out of range") from None
    return point.format(compressed=True)[1:]


def tweak_secret(secret: bytes, merkle_root: bytes = b"") -> bytes:
    """The secret of the output key: negate for an odd-y public key, then add the TapTweak."""
    key = coincurve.PrivateKey(secret)
    compressed = key.public_key.format(compressed=True)
    scalar = key.to_int() if compressed[0] == 2 else ORDER - key.to_int()
    tweak = int.from_bytes(tap_tweak(compressed[1:], merkle_root), "big")
    if tweak >= ORDER:
        raise InvalidTweak("the tweak is out of range")
    return ((scalar + tweak) % ORDER).to_bytes(32, "big")
