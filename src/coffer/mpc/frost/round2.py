"""FROST round two (RFC 9591 §5.2): a signer turns its nonces and share into a signature share.

`sign` consumes the `SigningNonces` first, so whatever happens next (a bad signing package, an
exception) the same nonces can never sign again. It checks that the signer set is well formed,
that the signer is in it and that the coordinator relayed this signer's own commitments unchanged.
It must be called only on a message the caller has validated itself (RFC 9591 §7.7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from coffer.btc.reader import ByteReader
from coffer.mpc.errors import (
    DuplicateIdentifier,
    InvalidEncoding,
    InvalidIdentifier,
    InvalidMessage,
    InvalidParameters,
    InvalidSignatureShare,
    InvalidTweak,
    MalformedInput,
)
from coffer.mpc.frost.ciphersuite import Ciphersuite, SessionValues, Tweak
from coffer.mpc.frost.keys import KeyPackage, check_group, check_signer_set, lagrange_coefficient
from coffer.mpc.frost.round1 import SigningCommitments, SigningNonces
from coffer.mpc.hazmat.group import Group

__all__ = [
    "MESSAGE_BYTES_MAX",
    "TWEAKS_MAX",
    "SigningPackage",
    "SignatureShare",
    "sign",
    "sign_with_session",
]

MESSAGE_BYTES_MAX: Final = 1 << 20
TWEAKS_MAX: Final = 16

_SUITE_TAGS: Final[dict[str, int]] = {
    "FROST(Ed25519, SHA-512)": 1,
    "FROST(secp256k1, SHA-256)": 2,
    "FROST(secp256k1, SHA-256, BIP-340)": 3,
}


@dataclass(frozen=True, slots=True)
class SignatureShare:
    """A signer's round-two output z_i. Public once sent; verified by the aggregator."""

    identifier: int
    value: int

    def to_bytes(self, group: Group) -> bytes:
        return group.serialize_scalar(self.value)

    @classmethod
    def from_bytes(cls, group: Group, identifier: int, data: bytes) -> SignatureShare:
        """Strict parse; a bad share is blamed on `identifier`, the sender."""
        try:
            value = group.deserialize_scalar(data)
        except MalformedInput as error:
            raise InvalidSignatureShare(f"malformed signature share ({error})", culprits=(identifier,)) from None
        return cls(identifier, value)


@dataclass(frozen=True, slots=True)
class SigningPackage:
    """What the coordinator sends in round two: every signer's commitments, the message, tweaks.

    Commitments are sorted by identifier and unique. Use `SigningPackage.create` to sort.
    """

    commitments: tuple[SigningCommitments, ...]
    message: bytes
    tweaks: tuple[Tweak, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "commitments", tuple(self.commitments))
        object.__setattr__(self, "tweaks", tuple(self.tweaks))
        identifiers = [commitment.identifier for commitment in self.commitments]
        for previous, current in zip(identifiers, identifiers[1:], strict=False):
            if previous == current:
                raise DuplicateIdentifier("commitments listed twice", identifier=current)
            if previous > current:
                raise InvalidParameters("commitments must be sorted by identifier")
        if len(self.message) > MESSAGE_BYTES_MAX:
            raise InvalidParameters(f"message longer than {MESSAGE_BYTES_MAX} bytes")
        if len(self.tweaks) > TWEAKS_MAX:
            raise InvalidTweak(f"more than {TWEAKS_MAX} tweaks")

    @classmethod
    def create(cls, commitments: Iterable[SigningCommitments], message: bytes,
               tweaks: Iterable[Tweak] = ()) -> SigningPackage:
        """Sort the commitments by identifier; refuse duplicates."""
        ordered = sorted(commitments, key=lambda commitment: commitment.identifier)
        return cls(tuple(ordered), bytes(message), tuple(tweaks))

    @property
    def identifiers(self) -> tuple[int, ...]:
        return tuple(commitment.identifier for commitment in self.commitments)

    def commitment(self, identifier: int) -> SigningCommitments:
        for commitment in self.commitments:
            if commitment.identifier == identifier:
                return commitment
        raise InvalidIdentifier(f"no commitment from participant {identifier}")

    def to_bytes(self, suite: Ciphersuite) -> bytes:
        """suite tag (1) || count (2) || (id (2) || D || E)* || len (4) || msg || k (1) || (mode (1) || tweak (32))*."""
        group = suite.group
        out = bytearray([_SUITE_TAGS[suite.name]])
        out += len(self.commitments).to_bytes(2, "big")
        for commitment in self.commitments:
            out += commitment.identifier.to_bytes(2, "big") + commitment.to_bytes(group)
        out += len(self.message).to_bytes(4, "big") + self.message
        out += len(self.tweaks).to_bytes(1, "big")
        for tweak in self.tweaks:
            out += bytes([1 if tweak.is_xonly else 0]) + tweak.value
        return bytes(out)

    @classmethod
    def from_bytes(cls, suite: Ciphersuite, data: bytes) -> SigningPackage:
        """Strict parse of `to_bytes` output; faults are the coordinator's (sender None)."""
        try:
            return _parse_signing_package(suite, data)
        except MalformedInput as error:
            raise InvalidMessage(f"malformed signing package: {error}", sender=None) from None
        except (InvalidParameters, InvalidTweak) as error:
            raise InvalidMessage(f"invalid signing package: {error}", sender=None) from None


def _parse_signing_package(suite: Ciphersuite, data: bytes) -> SigningPackage:
    group = suite.group
    reader = ByteReader(data, error=InvalidEncoding)
    if reader.uint_be(1) != _SUITE_TAGS[suite.name]:
        raise InvalidEncoding(f"not a {suite.name} signing package")
    count = reader.uint_be(2)
    commitments = []
    for _ in range(count):
        identifier = reader.uint_be(2)
        commitments.append(SigningCommitments.from_bytes(group, identifier, reader.take(2 * group.element_length)))
    message_length = reader.uint_be(4)
    if message_length > MESSAGE_BYTES_MAX:
        raise InvalidEncoding("message too long")
    message = reader.take(message_length)
    tweak_count = reader.uint_be(1)
    tweaks = []
    for _ in range(tweak_count):
        mode = reader.uint_be(1)
        if mode not in (0, 1):
            raise InvalidEncoding(f"unknown tweak mode {mode}")
        tweaks.append(Tweak(reader.take(32), mode == 1))
    reader.finish()
    if tweaks and not suite.supports_tweaks:
        raise InvalidEncoding(f"{suite.name} does not support tweaks")
    return SigningPackage(tuple(commitments), message, tuple(tweaks))


def sign(suite: Ciphersuite, key_package: KeyPackage, nonces: SigningNonces,
         signing_package: SigningPackage, *, message: bytes,
         tweaks: Sequence[Tweak] = ()) -> SignatureShare:
    """Round two: this signer's share of the signature on `message`.

    `message` (and, for Taproot, `tweaks`) is what the signer derived and validated itself; the
    coordinator's `signing_package` must carry exactly those, or InvalidMessage(sender=None) is
    raised. Consumes `nonces` first (a second call with them raises NonceReuse), then checks.
    """
    hiding, binding = nonces.take()
    check_group(key_package.group, suite.group)
    if signing_package.message != message or signing_package.tweaks != tuple(tweaks):
        raise InvalidMessage("the signing package carries another message or other tweaks", sender=None)
    if nonces.suite_name != suite.name:
        raise InvalidParameters("nonces were made for another ciphersuite")
    identifier = key_package.identifier
    if nonces.identifier != identifier:
        raise InvalidParameters("nonces were made for another participant")
    public = key_package.public
    check_signer_set(signing_package.identifiers, public)
    if identifier not in signing_package.identifiers:
        raise InvalidIdentifier(f"participant {identifier} is not in the signer set")
    if signing_package.commitment(identifier) != nonces.commitments:
        raise InvalidMessage("the signing package alters this signer's own commitments", sender=None)
    session = suite.session(public, signing_package.commitments, signing_package.message,
                            signing_package.tweaks)
    return sign_with_session(suite, session, identifier, key_package.secret_share, hiding, binding)


def sign_with_session(suite: Ciphersuite, session: SessionValues, identifier: int, secret_share: int,
                      hiding: int, binding: int) -> SignatureShare:
    """The signing equation, for a session already derived and checked (see module docstring)."""
    group = suite.group
    lagrange = lagrange_coefficient(group, session.identifiers, identifier)
    nonce_part = (hiding + binding * session.binding_factors[identifier]) * session.nonce_factor
    key_part = session.challenge * lagrange * session.key_factor * secret_share
    return SignatureShare(identifier, (nonce_part + key_part) % group.order)

