"""Errors of the threshold-ECDSA co-signer service as the coordinator sees them."""

from __future__ import annotations

from collections.abc import Iterable

from coffer.mpc.service.errors import ServiceError

__all__ = ["EcdsaServiceError", "SigningAborted", "PairingFailed", "SignatureRejected", "KeyDisagreement"]


class EcdsaServiceError(ServiceError):
    """Root of the ECDSA service's expected failures on the coordinator's side."""


class SigningAborted(EcdsaServiceError):
    """A signing session ended without a signature; `culprits` names the suspected co-signers.

    `rule` is the refusing co-signer's rule (e.g. "ecdsa.abort.MultiplicationCheckFailure",
    "spend.mismatch", "halt", "cosigner.unavailable"); `reporter` the co-signer that reported it.
    The OT setups of the session are discarded on every side: the next session pairs afresh.
    """

    def __init__(self, message: str, *, rule: str, culprits: Iterable[int] = (), reporter: int | None = None) -> None:
        self.culprits = tuple(sorted(set(culprits)))
        self.rule = rule
        self.reporter = reporter
        super().__init__(f"{message} (rule {rule}, culprits {list(self.culprits)}, reported by {reporter})")


class PairingFailed(SigningAborted):
    """The pairing (base OT + zero-sharing seed) between two co-signers failed."""


class SignatureRejected(EcdsaServiceError):
    """The combined signature failed the coordinator's own verification: never released."""


class KeyDisagreement(EcdsaServiceError):
    """Co-signers report different public facts (group key, threshold, version) for one key."""
