"""Key material for threshold signing: plain Shamir shares and the public data that goes with them.

A participant holds a `KeyPackage`: its identifier (the Shamir x coordinate, 1..255), its secret
share (the polynomial's value there) and the `PublicKeyPackage` every participant agrees on
(threshold, group public key, every participant's verifying share). This is exactly what a DKG
(or, in tests, the trusted dealer of RFC 9591 App. C) outputs, so its result feeds straight in.

The public package is checked when it is built: every verifying share lies on one polynomial of
degree t-1 whose constant term is the group key, so any t signers interpolate to the same key.
A key package's secret share must match its verifying share. Secret shares never appear in a
repr or an error message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    "check_group",
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


def check_group(group: Group, expected: Group) -> None:
    """Refuse key material of one group used with a ciphersuite of another."""
    if group.name != expected.name:
        raise InvalidParameters(f"key material of {group.name} used with a {expected.name} ciphersuite")


def check_signer_set(identifiers: Sequence[int], public: PublicKeyPackage) -> None:
    """Refuse a signer set with an unknown identifier, a duplicate, or a size outside [t, n]."""
    for identifier in identifiers:
        if identifier not in public.identifiers:
            raise InvalidIdentifier(f"identifier {identifier} is not a participant of this key")
    _check_unique(identifiers)
    if not public.min_signers <= len(identifiers) <= public.max_signers:
        raise InsufficientSigners(
            f"{len(identifiers)} signers; the number of signers must be between "
            f"{public.min_signers} and {public.max_signers}")


@dataclass(frozen=True, slots=True)
class PublicKeyPackage:
    """What every participant and the coordinator know: t, the group key, each verifying share.

    `verifying_shares` maps identifier -> Y_j = f(j) * G (given as a mapping or as pairs; stored
    as pairs sorted by identifier). Identifiers are any distinct integers in 1..PARTICIPANTS_MAX,
    so a re-shared key may keep its co-signers' numbers (e.g. {1, 2, 4, 5} after revoking 3).
    """

    group: Group = field(repr=False)
    min_signers: int
    group_public_key: Element
    verifying_shares: Mapping[int, Element] | tuple[tuple[int, Element], ...]
    _index: dict[int, Element] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        pairs = (tuple(self.verifying_shares.items()) if isinstance(self.verifying_shares, Mapping)
                 else tuple(self.verifying_shares))
        index = dict(pairs)
        if len(index) != len(pairs):
            duplicate = next(i for i, _ in pairs if [j for j, _ in pairs].count(i) > 1)
            raise DuplicateIdentifier("a verifying share is listed twice", identifier=duplicate)
        object.__setattr__(self, "verifying_shares", tuple(sorted(index.items())))
        object.__setattr__(self, "_index", index)
        if not 1 <= self.min_signers <= len(index) <= PARTICIPANTS_MAX:
            raise InvalidParameters(
                f"need 1 <= t <= n <= {PARTICIPANTS_MAX}, got t={self.min_signers}, n={len(index)}")
        for identifier, element in sorted(index.items()):
            if not 1 <= identifier <= PARTICIPANTS_MAX:
                raise InvalidIdentifier(f"identifier {identifier} is outside 1..{PARTICIPANTS_MAX}")
            if element.group != self.group.name or self.group.is_identity(element):
                raise InvalidKeyMaterial("a verifying share is invalid", identifier=identifier)
        if self.group_public_key.group != self.group.name or self.group.is_identity(self.group_public_key):
            raise InvalidKeyMaterial("the group public key is invalid")
        self._check_one_polynomial()

    @classmethod
    def from_encoded(cls, group: Group, min_signers: int, group_public_key: bytes,
                     verifying_shares: Mapping[int, bytes]) -> PublicKeyPackage:
        """Build from encoded points (e.g. a DKG's output), strictly parsed and then checked."""
        return cls(group, min_signers, group.deserialize_element(group_public_key),
                   {identifier: group.deserialize_element(encoding)
                    for identifier, encoding in verifying_shares.items()})

    @property
    def max_signers(self) -> int:
        return len(self._index)

    @property
    def identifiers(self) -> tuple[int, ...]:
        return tuple(sorted(self._index))

    def verifying_share(self, identifier: int) -> Element:
        try:
            return self._index[identifier]
        except KeyError:
            raise InvalidIdentifier(f"identifier {identifier} is not a participant of this key") from None

    def _check_one_polynomial(self) -> None:
        """The first t verifying shares fix the polynomial; every other share and the key must fit."""
        identifiers = self.identifiers
        base = identifiers[: self.min_signers]
        group = self.group

        def interpolate(x: int) -> Element:
            return group.sum(
                group.mul(self._index[i], lagrange_coefficient_at(group, base, i, x)) for i in base)

        if interpolate(0) != self.group_public_key:
            raise InvalidKeyMaterial("the verifying shares do not interpolate to the group public key")
        for identifier in identifiers[self.min_signers:]:
            if interpolate(identifier) != self._index[identifier]:
                raise InvalidKeyMaterial("the verifying share is off the polynomial", identifier=identifier)

    def to_bytes(self) -> bytes:
        """group tag (1) || t (2) || n (2) || group key || n x (identifier (2) || verifying share)."""
        out = bytearray([_GROUP_TAGS[self.group.name]])
        out += self.min_signers.to_bytes(2, "big") + self.max_signers.to_bytes(2, "big")
        out += self.group.serialize_element(self.group_public_key)
        for identifier, share in sorted(self._index.items()):
            out += identifier.to_bytes(2, "big") + self.group.serialize_element(share)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKeyPackage:
        """Strict parse of `to_bytes` output: known group, exact length, sorted ids, valid points."""
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
        if len(data) != 5 + size + (2 + size) * max_signers:
            raise InvalidEncoding("public key package has the wrong length")
        group_public_key = group.deserialize_element(data[5: 5 + size])
        pairs: list[tuple[int, Element]] = []
        for k in range(max_signers):
            offset = 5 + size + (2 + size) * k
            identifier = int.from_bytes(data[offset: offset + 2], "big")
            if pairs and identifier <= pairs[-1][0]:
                raise InvalidEncoding("verifying shares must be sorted by identifier, without repeats")
            pairs.append((identifier, group.deserialize_element(data[offset + 2: offset + 2 + size])))
        return cls(group, min_signers, group_public_key, tuple(pairs))


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
        if self.identifier not in self.public.identifiers:
            raise InvalidIdentifier(f"identifier {self.identifier} is not a participant of this key")
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
