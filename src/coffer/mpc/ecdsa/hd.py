"""Deposit addresses for a threshold ECDSA key: public, non-hardened additive tweaks.

BIP32-style public derivation from the group key and a chain code: for each index i (below
2^31), I = HMAC-SHA512(chain code, compressed key || i), tweak += I_L, key += I_L*G, chain code
= I_R. The result is a `Derivation` whose `tweak` every co-signer passes to `SigningSession`
(the lowest identifier of the signer set adds it to its additive share, so the shares sum to
sk + tweak); no new key generation is needed. Hardened indices are refused: they need the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from coffer.mpc.ecdsa.curve import IdentityResult, Q, add, base_mul, point_bytes, point_from_bytes
from coffer.mpc.ecdsa.errors import InvalidTweak

__all__ = ["Derivation", "derive", "default_chain_code", "ethereum_address", "HARDENED"]

HARDENED: Final = 1 << 31
DEPTH_MAX: Final = 16


@dataclass(frozen=True, slots=True)
class Derivation:
    """A derived public key, the total tweak from the group key, and the chain code."""

    public_key: bytes  # compressed, 33 bytes
    tweak: int
    chain_code: bytes
    path: tuple[int, ...]


def default_chain_code(group_public_key: bytes, key_id: bytes) -> bytes:
    """A public chain code for keys whose DKG produced none (derivations stay public anyway)."""
    return hashlib.sha256(b"coffer/mpc/ecdsa/chain-code/v1" + key_id + group_public_key).digest()


def derive(group_public_key: bytes, chain_code: bytes, path: Sequence[int]) -> Derivation:
    """Non-hardened derivation along `path`; raises InvalidTweak for the (2^-127) bad indices."""
    if len(chain_code) != 32:
        raise InvalidTweak("chain code must be 32 bytes")
    if len(path) > DEPTH_MAX:
        raise InvalidTweak("derivation path too deep")
    key = point_from_bytes(group_public_key)
    tweak = 0
    for index in path:
        if not 0 <= index < HARDENED:
            raise InvalidTweak("hardened or out-of-range index")
        digest = hmac.new(chain_code, point_bytes(key) + index.to_bytes(4, "big"), hashlib.sha512).digest()
        step = int.from_bytes(digest[:32], "big")
        if step >= Q:
            raise InvalidTweak("derived tweak not below the order; use the next index")
        try:
            key = add([key, base_mul(step)]) if step else key
        except IdentityResult as error:
            raise InvalidTweak("derived key is the identity; use the next index") from error
        tweak = (tweak + step) % Q
        chain_code = digest[32:]
    return Derivation(point_bytes(key), tweak, chain_code, tuple(path))


def ethereum_address(public_key: bytes) -> str:
    """EIP-55 checksummed address: last 20 bytes of keccak256 of the uncompressed key."""
    uncompressed = point_from_bytes(public_key).format(compressed=False)
    return str(to_checksum_address(keccak(uncompressed[1:])[-20:]))
