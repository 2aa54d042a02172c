"""Trusted-dealer Shamir sharing of an ECDSA key: for tests, benches and demos only.

Production keys come from the DKG layer (`coffer.mpc.dkg`), which never holds the whole key;
this module does, by definition. Never import it from a service.
"""

from __future__ import annotations

from collections.abc import Sequence

from coffer.mpc.ecdsa.curve import Q, Rng, base_mul, point_bytes, random_nonzero_scalar, random_scalar
from coffer.mpc.ecdsa.sign import KeyShare

__all__ = ["split", "deal_key"]


def split(secret: int, threshold: int, identifiers: Sequence[int], rng: Rng) -> dict[int, int]:
    """Shamir shares f(i) of a degree threshold-1 polynomial with f(0) = secret."""
    coefficients = [secret] + [random_scalar(rng) for _ in range(threshold - 1)]
    shares = {}
    for identifier in identifiers:
        value = 0
        for coefficient in reversed(coefficients):
            value = (value * identifier + coefficient) % Q
        shares[identifier] = value
    return shares


def deal_key(key_id: bytes, threshold: int, participants: int, rng: Rng) -> tuple[int, list[KeyShare]]:
    """A fresh key and its shares for identifiers 1..participants (returns the secret too)."""
    secret = random_nonzero_scalar(rng)
    public = point_bytes(base_mul(secret))
    shares = split(secret, threshold, range(1, participants + 1), rng)
    return secret, [KeyShare(key_id, i, threshold, public, s) for i, s in shares.items()]
