"""Errors of the hot wallet."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["HotError", "InsufficientHotFunds", "HotPaymentRefused"]


class HotError(CofferError):
    """Root of the hot wallet's expected failures."""


class InsufficientHotFunds(HotError):
    """The hot wallet's confirmed, unreserved coins cannot pay the amount plus the fee."""


class HotPaymentRefused(HotError):
    """A request the hot wallet will not pay (wrong asset, wrong route, already paid elsewhere)."""
