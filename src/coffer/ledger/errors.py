"""Errors of the ledger: every refused transfer raises one of these and writes nothing.

`LedgerInconsistent` is different: stored balances that do not match the postings, or a
transfer that does not balance in storage, is a bug or an intrusion (an `InvariantViolation`).
"""

from __future__ import annotations

from coffer.errors import CofferError, InvariantViolation, NotFound, Refused

__all__ = [
    "LedgerError", "InvalidTransfer", "InvalidAmount", "UnbalancedTransfer", "MixedAssets",
    "UnknownAsset", "UnknownAccount", "InvalidAccountKey", "RingFenceViolation",
    "InsufficientFunds", "IdempotencyConflict", "AccountNumberTaken", "LedgerBusy",
    "LedgerInconsistent",
]


class LedgerError(CofferError):
    """Root of the ledger's expected failures."""


class InvalidTransfer(LedgerError):
    """A transfer is malformed (bad key, kind, metadata, timestamp or posting list)."""


class InvalidAmount(InvalidTransfer):
    """An amount is not an int in 1 .. 2**63 - 1 (bool, float, zero, negative, beyond 64 bits)."""


class UnbalancedTransfer(InvalidTransfer):
    """The debits of a transfer do not equal its credits."""

    def __init__(self, message: str, *, debit_total: int, credit_total: int) -> None:
        super().__init__(message)
        self.debit_total = debit_total
        self.credit_total = credit_total


class MixedAssets(InvalidTransfer):
    """The postings of one transfer name accounts of more than one asset."""


class InvalidAccountKey(InvalidTransfer):
    """An account key is malformed (book, name, client id or asset code)."""


class UnknownAsset(LedgerError, NotFound):
    """The asset is not configured in this ledger."""


class UnknownAccount(LedgerError, NotFound):
    """The account has not been opened."""

    def __init__(self, message: str, *, account: str) -> None:
        super().__init__(message)
        self.account = account


class RingFenceViolation(LedgerError, Refused):
    """The kind of the transfer may not move value between these books or accounts."""


class InsufficientFunds(LedgerError, Refused):
    """Applying the transfer would leave a client balance below zero."""

    def __init__(self, message: str, *, account: str, index: int) -> None:
        super().__init__(message, rule="no_negative_client_balance")
        self.detail = message
        self.account = account
        self.index = index


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used for a transfer with different content."""

    def __init__(self, message: str, *, idempotency_key: str) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


class AccountNumberTaken(LedgerError):
    """The 64-bit account number asked for already belongs to another client."""


class LedgerBusy(LedgerError):
    """The database stayed locked or kept conflicting past the retry bound; nothing was written."""


class LedgerInconsistent(InvariantViolation):
    """Stored balances, postings or transfer digests disagree: a bug or an intrusion."""
