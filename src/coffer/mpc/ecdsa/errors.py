"""Errors of threshold ECDSA (DKLs23): every failure a caller may expect, typed and attributable.

An error about a misbehaving party names it: `sender` is the identifier of the participant whose
message failed to parse, `counterparty` the one whose pairwise check failed. No message ever
carries a share, a nonce, an OT seed or any other secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from coffer.mpc.errors import MpcError

__all__ = [
    "EcdsaError",
    "MalformedMessage",
    "ProtocolAbort",
    "BaseOtFailure",
    "OtConsistencyFailure",
    "MultiplicationCheckFailure",
    "CommitmentMismatch",
    "PublicShareMismatch",
    "TranscriptMismatch",
    "SignatureInvalid",
    "SetupDiscarded",
    "SessionStateError",
    "SecretReuse",
    "SignerSetError",
    "InvalidTweak",
]


class EcdsaError(MpcError):
    """Root of every expected failure of threshold ECDSA."""


class MalformedMessage(EcdsaError):
    """A message from `sender` does not parse: length, type, range, curve, session or address."""

    def __init__(self, message: str, *, sender: int | None) -> None:
        where = f"participant {sender}" if sender is not None else "unknown sender"
        super().__init__(f"{where}: {message}")
        self.sender = sender


class ProtocolAbort(EcdsaError):
    """A check of the protocol failed; the session is over and the OT setups it used are discarded.

    `counterparties` names who is suspected: one participant when a pairwise check failed, every
    peer of the session when the failure cannot be attributed (a wrong sum, a bad signature).
    """

    def __init__(self, message: str, *, counterparties: Iterable[int]) -> None:
        suspects = tuple(sorted(set(counterparties)))
        super().__init__(f"{message}: counterparties {list(suspects)}")
        self.counterparties = suspects

    @property
    def counterparty(self) -> int | None:
        """The single named counterparty, or None when the failure is not attributable."""
        return self.counterparties[0] if len(self.counterparties) == 1 else None


class BaseOtFailure(ProtocolAbort):
    """The base OT (verified Simplest OT) failed a proof or a verification step."""


class OtConsistencyFailure(ProtocolAbort):
    """The OT-extension receiver's rows failed the KOS consistency check."""


class MultiplicationCheckFailure(ProtocolAbort):
    """The VOLE (two-party multiplication) check or a Gamma check of DKLs23 failed."""


class CommitmentMismatch(ProtocolAbort):
    """A decommitted nonce point does not match its round-one commitment."""


class PublicShareMismatch(ProtocolAbort):
    """The public shares of the additive key shares do not sum to the (tweaked) group key."""


class TranscriptMismatch(ProtocolAbort):
    """Participants disagree on the combined nonce point R (an equivocating sender)."""


class SignatureInvalid(ProtocolAbort):
    """The combined signature does not verify under the (tweaked) group key: never released."""


class SetupDiscarded(EcdsaError):
    """An OT setup was used after an abort (or re-used for a session id); run a fresh base OT."""

    def __init__(self, message: str, *, counterparty: int) -> None:
        super().__init__(f"OT setup with participant {counterparty}: {message}")
        self.counterparty = counterparty


class SessionStateError(EcdsaError):
    """A round was called out of order, twice, or after the session ended."""


class SecretReuse(SessionStateError):
    """A single-use per-session secret was asked for a second time."""


class SignerSetError(EcdsaError):
    """A signer set is too small, too large, has duplicates, or does not include this party."""


class InvalidTweak(EcdsaError):
    """A derivation tweak is out of range or yields an invalid key (derive the next index)."""
