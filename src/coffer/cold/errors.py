"""Errors of cold custody. A refusal names the rule that refused."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = [
    "ColdError", "DescriptorError", "PsbtInvalid", "SignerRefused", "DrawMismatch", "NotRegistered",
    "InsufficientFunds", "SeedUnavailable", "BundleInvalid",
]


class ColdError(CofferError):
    """Root of cold custody errors."""


class DescriptorError(ColdError):
    """A descriptor is malformed, has a bad checksum, or does not hold the expected keys."""


class PsbtInvalid(ColdError):
    """A PSBT could not be parsed strictly or is structurally wrong."""


class BundleInvalid(ColdError):
    """A signing bundle (PSBT + requests + approvals + attestation + draw) is malformed."""


class SignerRefused(ColdError):
    """A signer refused to sign; `rule` names the check that failed."""

    def __init__(self, message: str, *, rule: str, signer_id: int | None = None) -> None:
        who = f"signer {signer_id}: " if signer_id is not None else ""
        super().__init__(f"{who}{rule}: {message}")
        self.rule = rule
        self.signer_id = signer_id


class DrawMismatch(ColdError):
    """A quorum draw does not recompute from its public inputs."""


class NotRegistered(ColdError):
    """The signer has not registered that wallet descriptor."""


class InsufficientFunds(ColdError):
    """The cold wallet's confirmed coins do not cover the batch and its fee."""


class SeedUnavailable(ColdError):
    """A signer's seed could not be decrypted (wrong token, tampered file)."""
