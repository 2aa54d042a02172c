"""Errors of distributed key generation, refresh and re-sharing (`coffer.mpc.dkg`).

Every error about a misbehaving party names it. `culprit` is always a Shamir identifier (the
integer x-coordinate of the party's share, 1-based). In ChillDKG the participant with list index
`i` (the BIP's 0-based "participant id") has identifier `i + 1`; `participant_index` gives the
BIP's number. No message ever carries a share, a seed or any other secret.

The names follow the ChillDKG draft (BlockstreamResearch/bip-frost-dkg) so that its test vectors
map one to one; the BIP's structural `ValueError`s become `InvalidArgument` (a caller's own input
is malformed) or a blame error naming whoever sent the malformed message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coffer.mpc.errors import MalformedInput, MpcError

if TYPE_CHECKING:
    from coffer.mpc.dkg.protocol import ParticipantInvestigationData

__all__ = [
    "DkgError",
    "InvalidArgument",
    "HostSeckeyError",
    "RandomnessError",
    "SessionParamsError",
    "ThresholdOrCountError",
    "InvalidHostPubkeyError",
    "DuplicateHostPubkeyError",
    "ProtocolError",
    "FaultyParticipantError",
    "FaultyParticipantOrCoordinatorError",
    "FaultyCoordinatorError",
    "UnknownFaultyParticipantOrCoordinatorError",
    "RecoveryDataError",
    "InvalidRecoveryAckError",
    "InvalidDealing",
]


class DkgError(MpcError):
    """Root of the expected failures of key generation, refresh and re-sharing."""


class InvalidArgument(DkgError, MalformedInput):
    """The caller's own input has the wrong structure (length, count, range). Blames nobody."""


class HostSeckeyError(DkgError):
    """The host secret key is invalid, or does not match the session's host public keys."""


class RandomnessError(DkgError):
    """The fresh randomness is all zeroes: a broken random number generator."""


class SessionParamsError(DkgError):
    """The common session parameters (host public keys, threshold) are invalid."""


class ThresholdOrCountError(SessionParamsError):
    """`1 <= t <= n <= 2**32 - 1` does not hold."""


class InvalidHostPubkeyError(SessionParamsError):
    """A host public key is not a valid element encoding; `culprit` names its owner."""

    def __init__(self, message: str = "invalid host public key", *, culprit: int) -> None:
        super().__init__(f"{message} (participant {culprit})")
        self.culprit = culprit
        self.culprits = (culprit,)

    @property
    def participant_index(self) -> int:
        return self.culprit - 1


class DuplicateHostPubkeyError(SessionParamsError):
    """Two participants have the same host public key; at least one of them is faulty."""

    def __init__(self, first: int, second: int) -> None:
        super().__init__(f"participants {first} and {second} have the same host public key")
        self.culprits = (first, second)


class ProtocolError(DkgError):
    """A received protocol message is malformed or inconsistent."""


class _NamesParticipant(ProtocolError):
    """A protocol error that names one participant (`culprit`, 1-based)."""

    suspects = "participant {culprit}"

    def __init__(self, message: str, *, culprit: int) -> None:
        super().__init__(f"{self.suspects.format(culprit=culprit)}: {message}")
        self.reason = message
        self.culprit = culprit
        self.culprits = (culprit,)

    @property
    def participant_index(self) -> int:
        return self.culprit - 1


class FaultyParticipantError(_NamesParticipant):
    """Raised by a coordinator (or a recipient of a signed dealing): `culprit` is faulty.

    Assuming messages were transmitted intact, the named participant deviated from the protocol.
    """


class FaultyParticipantOrCoordinatorError(_NamesParticipant):
    """Raised by a participant: `culprit` looks faulty, unless the coordinator framed it."""

    suspects = "participant {culprit} (or the coordinator)"


class FaultyCoordinatorError(ProtocolError):
    """Raised by a participant: the coordinator deviated from the protocol."""

    def __init__(self, message: str) -> None:
        super().__init__(f"coordinator: {message}")
        self.reason = message
        self.culprits: tuple[int, ...] = ()


class UnknownFaultyParticipantOrCoordinatorError(ProtocolError):
    """The received secret share is wrong but its sender is not known yet.

    Pass this error and the coordinator's investigation message to `participant_investigate`
    to name the sender. `investigation` holds secret material; its repr is redacted.
    """

    def __init__(self, message: str, *, investigation: ParticipantInvestigationData) -> None:
        super().__init__(message)
        self.reason = message
        self.investigation = investigation
        self.culprits: tuple[int, ...] = ()


class RecoveryDataError(DkgError):
    """The recovery data is malformed, inconsistent or not certified by every participant."""


class InvalidRecoveryAckError(FaultyParticipantError):
    """A recovery acknowledgment signature does not verify; `culprit` names its signer."""

    def __init__(self, *, culprit: int) -> None:
        super().__init__("invalid recovery acknowledgment signature", culprit=culprit)


class InvalidDealing(FaultyParticipantError):
    """A refresh or re-share dealing is malformed, unsigned, or inconsistent; names its dealer."""
