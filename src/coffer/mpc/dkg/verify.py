"""Consistency checks on a `KeyShareOutput` (public data, plus the share when present)."""

from __future__ import annotations

from coffer.mpc.dkg.errors import ProtocolError
from coffer.mpc.dkg.suite import DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput
from coffer.mpc.dkg.vss import lagrange_coefficient

__all__ = ["interpolate_public", "verify_output"]


def interpolate_public(suite: DkgSuite, public_shares: dict[int, bytes], identifiers: list[int]) -> bytes:
    """The encoding of sum_i lambda_i * Y_i over `identifiers`: the group key if they are consistent."""
    terms = [suite.mul(suite.decode(public_shares[identifier]),
                       lagrange_coefficient(identifiers, identifier, suite.order))
             for identifier in identifiers]
    return suite.encode(suite.sum(terms))


def verify_output(suite: DkgSuite, output: KeyShareOutput) -> None:
    """Raise ProtocolError unless the public shares lie on one degree t-1 polynomial whose value
    at zero is the group key, and the secret share (if any) matches its public share.

    Checks every window of t consecutive identifiers, so any inconsistent share is caught.
    """
    identifiers = list(output.identifiers)
    t = output.threshold
    if not 1 <= t <= len(identifiers):
        raise ProtocolError("threshold out of range for the public shares")
    for start in range(len(identifiers) - t + 1):
        window = identifiers[start:start + t]
        if interpolate_public(suite, output.public_shares, window) != output.group_public_key:
            raise ProtocolError(f"public shares {window} do not interpolate to the group key")
    share = output.secret_share
    if share is not None and suite.encode(suite.base_mul(share.value)) != output.public_shares.get(share.identifier):
        raise ProtocolError("secret share does not match its public share")
