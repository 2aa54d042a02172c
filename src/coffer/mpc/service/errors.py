"""Errors of the co-signer services and of the coordinator that drives them.

Every error about a misbehaving party names it: `cosigner` (or `sender`, inherited from
`InvalidMessage`) is a co-signer identifier, None for the coordinator. No message carries a
share, a nonce or a host secret key.
"""

from __future__ import annotations

from coffer.mpc.errors import InvalidMessage, MpcError

__all__ = [
    "ServiceError",
    "ProtocolViolation",
    "CosignerRefused",
    "CosignerUnavailable",
    "CosignerRevoked",
    "SessionReplayed",
    "UnknownKey",
    "OpaqueMessageRefused",
    "SpendNotApproved",
    "QuorumUnavailable",
]


class ServiceError(MpcError):
    """Root of the expected failures of the co-signer service layer."""


class ProtocolViolation(InvalidMessage):
    """A service message does not parse strictly (fields, types, lengths, points, ranges).

    `sender` names who sent it: a co-signer identifier, or None for the coordinator.
    """


class CosignerRefused(ServiceError):
    """A co-signer refused a request; `rule` names its rule, `cosigner` the co-signer."""

    def __init__(self, message: str, *, rule: str, cosigner: int | None = None,
                 culprits: tuple[int, ...] = ()) -> None:
        where = f"co-signer {cosigner}: " if cosigner is not None else ""
        super().__init__(f"{where}{rule}: {message}")
        self.rule = rule
        self.cosigner = cosigner
        self.culprits = culprits


class SessionReplayed(CosignerRefused):
    """A session id was seen before (replay), or its nonces were already used."""

    def __init__(self, message: str, *, cosigner: int | None = None) -> None:
        super().__init__(message, rule="session.replayed", cosigner=cosigner)


class OpaqueMessageRefused(CosignerRefused):
    """The co-signer was asked to sign something it cannot derive and check itself."""

    def __init__(self, message: str, *, cosigner: int | None = None) -> None:
        super().__init__(message, rule="message.opaque", cosigner=cosigner)


class SpendNotApproved(CosignerRefused):
    """A transaction's outputs, inputs or fee do not match the approved requests."""

    def __init__(self, message: str, *, rule: str = "spend.not_approved", cosigner: int | None = None) -> None:
        super().__init__(message, rule=rule, cosigner=cosigner)


class CosignerRevoked(ServiceError):
    """A revoked co-signer took part, or was asked to; `cosigner` names it."""

    def __init__(self, cosigner: int) -> None:
        super().__init__(f"co-signer {cosigner} is revoked")
        self.cosigner = cosigner


class CosignerUnavailable(ServiceError):
    """A co-signer did not answer (down, killed, timed out)."""

    def __init__(self, cosigner: int, detail: str) -> None:
        super().__init__(f"co-signer {cosigner} unavailable: {detail}")
        self.cosigner = cosigner


class QuorumUnavailable(ServiceError):
    """Fewer than t usable co-signers for a session."""


class UnknownKey(ServiceError):
    """No key with this id / version (or not in the state the operation needs)."""
