"""Zero-sharing (F_Zero of DKLs23): per-session shares zeta_i with sum zero over the signer set.

Each pair {i, j} holds a common secret seed from its setup; party i adds +PRF(seed, sid) for every
peer j > i and subtracts it for every j < i, so the shares cancel pairwise.
"""

from __future__ import annotations

from collections.abc import Mapping

from coffer.mpc.ecdsa.curve import Q, hash_to_scalars

__all__ = ["zero_share"]


def zero_share(me: int, seeds: Mapping[int, bytes], session_id: bytes) -> int:
    """This party's zero share for `session_id`, from the seeds shared with each peer."""
    total = 0
    for peer, seed in seeds.items():
        if peer == me:
            raise ValueError("a party shares no seed with itself")
        (value,) = hash_to_scalars("zero/share", [seed, session_id], 1)
        total += value if me < peer else -value
    return total % Q
