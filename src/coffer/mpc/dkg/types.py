"""The values every key-generation protocol here returns: plain Shamir shares and public keys.

FROST signing (`coffer.mpc.frost`) consumes them directly: a `SecretShare` is the pair
(identifier, scalar) of a degree t-1 polynomial f with f(0) the group secret; `public_shares`
maps each identifier j to the encoding of f(j)*G; `group_public_key` encodes f(0)*G. Encodings
are the group's own (`coffer.mpc.hazmat.group`): 33-byte compressed points for secp256k1 (the
full point, not x-only: BIP-FROST signing handles the even-y rule), 32 bytes for Ed25519.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SecretShare", "KeyShareOutput"]


@dataclass(frozen=True, slots=True)
class SecretShare:
    """One participant's Shamir share: f(identifier). The value is secret; repr redacts it."""

    identifier: int
    value: int = field(repr=False)

    def __repr__(self) -> str:
        return f"SecretShare(identifier={self.identifier}, value=<redacted>)"


@dataclass(frozen=True, slots=True)
class KeyShareOutput:
    """The result of a DKG, refresh or re-share for one party (or the coordinator).

    `secret_share` is None for a coordinator or any other observer. `public_shares` is keyed by
    identifier and must not be mutated.
    """

    suite: str
    threshold: int
    group_public_key: bytes
    public_shares: dict[int, bytes]
    secret_share: SecretShare | None

    @property
    def identifiers(self) -> tuple[int, ...]:
        return tuple(sorted(self.public_shares))

    def public_share(self, identifier: int) -> bytes:
        return self.public_shares[identifier]

    def without_secret(self) -> KeyShareOutput:
        return KeyShareOutput(self.suite, self.threshold, self.group_public_key,
                              dict(self.public_shares), None)
