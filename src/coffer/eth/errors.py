"""Errors of the Ethereum hot wallet: refused requests and bad spends, typed."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["EthError", "EthSpendInvalid", "EthPaymentRefused", "InsufficientEthFunds"]


class EthError(CofferError):
    """Root of the Ethereum hot wallet's expected failures."""


class EthSpendInvalid(EthError):
    """A spend description does not parse or breaks a bound (fees, gas, value, address, path)."""

    def __init__(self, message: str, *, rule: str = "eth.spend") -> None:
        super().__init__(message)
        self.rule = rule


class EthPaymentRefused(EthError):
    """The hot wallet does not pay this request (asset, kind, route, destination)."""


class InsufficientEthFunds(EthError):
    """The hot (or deposit) address cannot pay the value plus the maximum fee."""
