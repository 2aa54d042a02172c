"""Trusted-dealer key generation (RFC 9591 Appendix C). FOR TESTS AND VECTORS ONLY.

A dealer holds the whole secret key, which Coffer's invariant 1 forbids in any running system:
production keys come from the DKG (`coffer.mpc.dkg`). This module exists so the signing library can
be tested against RFC 9591's vectors and in isolation.
"""

from __future__ import annotations

from collections.abc import Sequence

from coffer.mpc.errors import InvalidParameters
from coffer.mpc.frost.keys import KeyPackage, PublicKeyPackage, lagrange_coefficient
from coffer.mpc.hazmat.group import Element, Group, Rng, system_rng

__all__ = [
    "evaluate_polynomial",
    "split_secret",
    "vss_commit",
    "vss_verify",
    "recover_secret",
    "trusted_dealer_keygen",
    "key_packages_from_coefficients",
]


def evaluate_polynomial(group: Group, coefficients: Sequence[int], x: int) -> int:
    """f(x) for f with constant term coefficients[0] (Horner's rule), modulo the order."""
    value = 0
    for coefficient in reversed(coefficients):
        value = (value * x + coefficient) % group.order
    return value


def split_secret(group: Group, coefficients: Sequence[int], max_signers: int) -> list[tuple[int, int]]:
    """Shamir shares (identifier, f(identifier)) for identifiers 1..max_signers (RFC 9591 C.1)."""
    if not 1 <= len(coefficients) <= max_signers:
        raise InvalidParameters("need 1 <= t <= n")
    return [(identifier, evaluate_polynomial(group, coefficients, identifier))
            for identifier in range(1, max_signers + 1)]


def vss_commit(group: Group, coefficients: Sequence[int]) -> list[Element]:
    """RFC 9591 C.2 vss_commit: the coefficients times the generator."""
    return [group.base_mul(coefficient) for coefficient in coefficients]


def vss_verify(group: Group, identifier: int, share: int, commitment: Sequence[Element]) -> bool:
    """RFC 9591 C.2 vss_verify: share * G equals the commitment polynomial at `identifier`."""
    expected = group.sum(group.mul(element, pow(identifier, power, group.order))
                         for power, element in enumerate(commitment))
    return group.base_mul(share) == expected


def recover_secret(group: Group, shares: Sequence[tuple[int, int]]) -> int:
    """RFC 9591 C.1 secret_share_combine: interpolate f(0) from t shares."""
    identifiers = [identifier for identifier, _ in shares]
    return sum(value * lagrange_coefficient(group, identifiers, identifier)
               for identifier, value in shares) % group.order


def key_packages_from_coefficients(group: Group, coefficients: Sequence[int],
                                   max_signers: int) -> tuple[list[KeyPackage], PublicKeyPackage]:
    """Key packages for identifiers 1..max_signers from the dealer polynomial's coefficients."""
    shares = split_secret(group, coefficients, max_signers)
    public = PublicKeyPackage(
        group, len(coefficients), group.base_mul(coefficients[0]),
        {identifier: group.base_mul(value) for identifier, value in shares})
    return [KeyPackage(identifier, value, public) for identifier, value in shares], public


def trusted_dealer_keygen(group: Group, max_signers: int, min_signers: int, rng: Rng = system_rng,
                          secret: int | None = None) -> tuple[list[KeyPackage], PublicKeyPackage]:
    """RFC 9591 C.1 trusted_dealer_keygen with a random (or given) secret. Tests only."""
    if not 1 <= min_signers <= max_signers:
        raise InvalidParameters("need 1 <= t <= n")
    constant = group.random_scalar(rng) if secret is None else secret
    coefficients = [constant] + [group.random_scalar(rng) for _ in range(min_signers - 1)]
    return key_packages_from_coefficients(group, coefficients, max_signers)
