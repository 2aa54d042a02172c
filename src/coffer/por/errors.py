"""Errors of the proof of reserves and liabilities (the stand-alone verifier has its own)."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["PorError", "LiabilityOutOfRange", "DuplicateAccount", "MissingNonce", "NotInTree", "TooManyParts",
           "NonceExists", "ReservesError", "InsolventSnapshot", "BitmexFormatError"]


class PorError(CofferError):
    """Root of this part's expected failures."""


class LiabilityOutOfRange(PorError):
    """A liability or account number does not fit an unsigned 64-bit integer (negative ones never do)."""


class DuplicateAccount(PorError):
    """An account appears twice in one asset's liabilities."""


class MissingNonce(PorError):
    """An account has no (or a malformed) lifetime account nonce."""


class NotInTree(PorError):
    """An account has no leaves in the tree asked about."""


class TooManyParts(PorError):
    """Balances may be split into 1..PROOF_LEAVES_MAX parts."""


class NonceExists(PorError):
    """An account's lifetime nonce is created once and never replaced."""


class ReservesError(PorError):
    """The reserves do not match what the chain shows or lack a proof of control."""


class InsolventSnapshot(PorError):
    """Reserves are below liabilities: the statement says so and nothing hides it."""


class BitmexFormatError(PorError):
    """A file in BitMEX's format is malformed."""
