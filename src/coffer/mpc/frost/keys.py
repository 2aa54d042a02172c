"""Key material for threshold signing: plain Shamir shares and the public data that goes with them.

A participant holds a `KeyPackage`: its identifier (the Shamir x coordinate, 1..n), its secret
share (the polynomial's value there) and the `PublicKeyPackage` every participant agrees on
(threshold, group public key, every participant's verifying share). This is exactly what a DKG
(or, in tests, the trusted dealer of RFC 9591 App. C) outputs, so its result feeds straight in.

The public package is checked when it is built: every verifying share lies on one polynomial of
degree t-1 whose constant term is the group key, so any t signers interpolate to the same key.
A key package's secret share must match its verifying share. Secret shares never appear in a
repr or an error message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from coffer.mpc.errors import (
    DuplicateIdentifier,
    InsufficientSigners,
    InvalidEncoding,
    InvalidIdentifier,
    InvalidKeyMaterial,
    InvalidParameters,
    InvalidScalar,
)
from coffer.mpc.hazmat.group import ED25519, SECP256K1, Element, Group

__all__ = [
    "PARTICIPANTS_MAX",
    "KeyPackage",
    "PublicKeyPackage",
    "lagrange_coefficient",
    "lagrange_coefficient_at",
    "check_signer_set",
    "group_by_name",
]

PARTICIPANTS_MAX: Final = 255
"""The largest n (and so the largest identifier) any key package may have."""

_GROUP_TAGS: Final[dict[str, int]] = {SECP256K1.name: 1, ED25519.name: 2}
_GROUPS: Final[dict[str, Group]] = {SECP256K1.name: SECP256K1, ED25519.name: ED25519}


def group_by_name(name: str) -> Group:
    """The group instance called `name` ("secp256k1" or "ed25519")."""
    try:
        return _GROUPS[name]
    except KeyError:
        raise InvalidParameters(f"unknown group {name!r}") from None


def lagrange_coefficient_at(group: Group, identifiers: Sequence[int], identifier: int, x: int) -> int:
    """The Lagrange basis polynomial of `identifier` over `identifiers`, evaluated at `x`."""
    if identifier not in identifiers:
        raise InvalidIdentifier(f"identifier {identifier} is not in the signer set")
    _check_unique(identifiers)
    numerator = 1
    denominator = 1
    for other in identifiers:
        if other == identifier:
            continue
        numerator = numerator * (x - other) % group.order
        denominator = denominator * (identifier - other) % group.order
    return numerator * group.scalar_inv(denominator) % group.order


def lagrange_coefficient(group: Group, identifiers: Sequence[int], identifier: int) -> int:
    """RFC 9591 §4.2 derive_interpolating_value: the coefficient of `identifier` at x = 0."""
    return lagrange_coefficient_at(group, identifiers, identifier, 0)


def _check_unique(identifiers: Iterable[int]) -> None:
    seen: set[int] = set()
    for identifier in identifiers:
        if identifier in seen:
            raise DuplicateIdentifier("identifiers must be unique", identifier=identifier)
        seen.add(identifier)


def check_signer_set(identifiers: Sequence[int], min_signers: int, max_signers: int) -> None:
    """Refuse a signer set with a bad identifier, a duplicate, or a size outside [t, n]."""
    for identifier in identifiers:
        if not 1 <= identifier <= max_signers:
            raise InvalidIdentifier(f"identifier {identifier} is outside 1..{max_signers}")
    _check_unique(identifiers)
    if not min_signers <= len(identifiers) <= max_signers:
        raise InsufficientSigners(
            f"{len(identifiers)} signers; the number of signers must be between {min_signers} and {max_signers}")


@dataclass(frozen=True, slots=True)
class PublicKeyPackage:
    """What every participant and the coordinator know: t, the group key, each verifying share.

    `verifying_shares[i]` belongs to identifier i + 1.
    """

    group: Group = field(repr=False)
    min_signers: int
    group_public_key: Element
    verifying_shares: tuple[Element, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "verifying_shares", tuple(self.verifying_shares))
        max_signers = len(self.verifying_shares)
        if not 1 <= self.min_signers <= max_signers <= PARTICIPANTS_MAX:
            raise InvalidParameters(
                f"need 1 <= t <= n <= {PARTICIPANTS_MAX}, got t={self.min_signers}, n={max_signers}")
        for element in (self.group_public_key, *self.verifying_shares):
            if element.group != self.group.name:
                raise InvalidKeyMaterial(f"an element of {element.group} in a {self.group.name} package")
        if self.group.is_identity(self.group_public_key):
            raise InvalidKeyMaterial("the group public key is the identity")
        for index, share in enumerate(self.verifying_shares):
            if self.group.is_identity(share):
                raise InvalidKeyMaterial("a verifying share is the identity", identifier=index + 1)
        self._check_one_polynomial()

    @property
    def max_signers(self) -> int:
        return len(self.verifying_shares)

    @property
    def identifiers(self) -> tuple[int, ...]:
        return tuple(range(1, self.max_signers + 1))

    def verifying_share(self, identifier: int) -> Element:
        if not 1 <= identifier <= self.max_signers:
            raise InvalidIdentifier(f"identifier {identifier} is outside 1..{self.max_signers}")
        return self.verifying_shares[identifier - 1]

    def _check_one_polynomial(self) -> None:
        """The first t verifying shares fix the polynomial; every other share and the key must fit."""
        base = tuple(range(1, self.min_signers + 1))
        group = self.group

        def interpolate(x: int) -> Element:
            return group.sum(
                group.mul(self.verifying_shares[i - 1], lagrange_coefficient_at(group, base, i, x))
                for i in base)

        if interpolate(0) != self.group_public_key:
            raise InvalidKeyMaterial("the verifying shares do not interpolate to the group public key")
        for identifier in range(self.min_signers + 1, self.max_signers + 1):
            if interpolate(identifier) != self.verifying_shares[identifier - 1]:
                raise InvalidKeyMaterial("the verifying share is off the polynomial", identifier=identifier)

    def to_bytes(self) -> bytes:
        """group tag (1) || t (2) || n (2) || group key || n verifying shares."""
        out = bytearray([_GROUP_TAGS[self.group.name]])
        out += self.min_signers.to_bytes(2, "big") + self.max_signers.to_bytes(2, "big")
        out += self.group.serialize_element(self.group_public_key)
        for share in self.verifying_shares:
            out += self.group.serialize_element(share)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKeyPackage:
        """Strict parse of `to_bytes` output: known group, exact length, valid points."""
        if len(data) < 5:
            raise InvalidEncoding("public key package too short")
        group = next((_GROUPS[name] for name, tag in _GROUP_TAGS.items() if tag == data[0]), None)
        if group is None:
            raise InvalidEncoding(f"unknown group tag {data[0]}")
        min_signers = int.from_bytes(data[1:3], "big")
        max_signers = int.from_bytes(data[3:5], "big")
        if max_signers > PARTICIPANTS_MAX:
            raise InvalidParameters(f"n={max_signers} exceeds {PARTICIPANTS_MAX}")
        size = group.element_length
        if len(data) != 5 + size * (1 + max_signers):
            raise InvalidEncoding("public key package has the wrong length")
        elements = [group.deserialize_element(data[5 + size * k: 5 + size * (k + 1)])
                    for k in range(1 + max_signers)]
        return cls(group, min_signers, elements[0], tuple(elements[1:]))


@dataclass(frozen=True, slots=True)
class KeyPackage:
    """One participant's Shamir share (identifier, secret scalar) and the public package.

    The secret share is checked against the participant's verifying share. Its repr is redacted.
    """

    identifier: int
    secret_share: int = field(repr=False)
    public: PublicKeyPackage

    def __post_init__(self) -> None:
        group = self.public.group
        if not 1 <= self.identifier <= self.public.max_signers:
            raise InvalidIdentifier(f"identifier {self.identifier} is outside 1..{self.public.max_signers}")
        if not 0 < self.secret_share < group.order:
            raise InvalidScalar("the secret share is out of range")
        if group.base_mul(self.secret_share) != self.public.verifying_share(self.identifier):
            raise InvalidKeyMaterial("the secret share does not match its verifying share",
                                     identifier=self.identifier)

    @property
    def group(self) -> Group:
        return self.public.group

    @property
    def verifying_share(self) -> Element:
        return self.public.verifying_share(self.identifier)

    def __repr__(self) -> str:
        return f"KeyPackage(identifier={self.identifier}, secret_share=<redacted>, public={self.public!r})"

    def to_bytes(self) -> bytes:
        """SECRET: identifier (2) || secret share || public package. Encrypt before storing."""
        group = self.public.group
        return (self.identifier.to_bytes(2, "big") + group.serialize_scalar(self.secret_share)
                + self.public.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyPackage:
        """Strict parse of `to_bytes` output; the share must match its verifying share."""
        if len(data) < 2 + 32 + 5:
            raise InvalidEncoding("key package too short")
        public = PublicKeyPackage.from_bytes(data[34:])
        secret_share = public.group.deserialize_scalar(data[2:34])
        return cls(int.from_bytes(data[0:2], "big"), secret_share, public)
