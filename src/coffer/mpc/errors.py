"""Errors of the threshold-cryptography layer (`coffer.mpc`).

An error about a misbehaving party names it: `culprits` holds participant identifiers (the
integers of the Shamir shares), `sender` the identifier of who sent a bad message. No error
message ever carries a share, a nonce or any other secret. Other parts of `coffer.mpc` (DKG,
ECDSA) add their own subclasses here; keep every class a subclass of `MpcError`.
"""

from __future__ import annotations

from collections.abc import Iterable

from coffer.errors import CofferError

__all__ = [
    "MpcError",
    "MalformedInput",
    "InvalidEncoding",
    "InvalidScalar",
    "InvalidElement",
    "InvalidMessage",
    "InvalidIdentifier",
    "DuplicateIdentifier",
    "InvalidParameters",
    "InsufficientSigners",
    "InvalidSignatureShare",
    "InvalidSignature",
    "InvalidNonceCommitment",
    "NonceReuse",
    "IdentityElement",
    "InvalidTweak",
    "InvalidKeyMaterial",
]


class MpcError(CofferError):
    """Root of every expected failure of the threshold-cryptography layer."""


class MalformedInput(MpcError):
    """Bytes that do not parse as the expected wire type (length, range, trailing data)."""


class InvalidEncoding(MalformedInput):
    """A value has the wrong length or a non-canonical encoding."""


class InvalidScalar(MalformedInput):
    """A scalar is out of range (not below the group order, or zero where zero is forbidden)."""


class InvalidElement(MalformedInput):
    """A group element is off the curve, the identity, or outside the prime-order subgroup."""


class IdentityElement(MpcError):
    """A computation produced the identity element where the protocol forbids it (abort)."""


class InvalidParameters(MpcError):
    """Threshold parameters or a signer set that no protocol run may use."""


class InvalidIdentifier(InvalidParameters):
    """An identifier is zero, too large, or not one of the expected participants."""


class DuplicateIdentifier(InvalidParameters):
    """The same identifier appears twice in a signer set or commitment list."""

    def __init__(self, message: str, *, identifier: int) -> None:
        super().__init__(f"{message} (identifier {identifier})")
        self.identifier = identifier


class InsufficientSigners(InvalidParameters):
    """Fewer signers than the threshold, or more than the number of participants."""


class InvalidKeyMaterial(InvalidParameters):
    """Public shares, secret share and group key do not fit together; `identifier` names the
    participant whose public share is at fault when one is."""

    def __init__(self, message: str, *, identifier: int | None = None) -> None:
        where = f" (identifier {identifier})" if identifier is not None else ""
        super().__init__(message + where)
        self.identifier = identifier


class InvalidTweak(MpcError):
    """A tweak is out of range or makes the tweaked key the identity."""


class InvalidMessage(MpcError):
    """A protocol message from another participant is malformed or inconsistent.

    `sender` is the identifier of the participant who sent it, or None when the message comes
    from the coordinator / aggregator itself.
    """

    def __init__(self, message: str, *, sender: int | None) -> None:
        where = f"participant {sender}" if sender is not None else "coordinator"
        super().__init__(f"{where}: {message}")
        self.sender = sender


class InvalidNonceCommitment(InvalidMessage):
    """A signer's round-one commitment is malformed (or the aggregate nonce is)."""


class InvalidSignatureShare(MpcError):
    """One or more signature shares do not verify; `culprits` names their senders."""

    def __init__(self, message: str = "invalid signature share", *, culprits: Iterable[int]) -> None:
        culprits_tuple = tuple(sorted(set(culprits)))
        super().__init__(f"{message}: culprits {list(culprits_tuple)}")
        self.culprits = culprits_tuple


class InvalidSignature(MpcError):
    """A signature does not verify under the given public key and message."""


class NonceReuse(MpcError):
    """A signing nonce was presented a second time; nonces are single-use by construction."""
