"""Errors of the exchange integration: bad engine data is refused with a precise, typed error."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = [
    "ExchangeError", "InvalidContract", "UnknownContract", "InvalidFill", "SequenceGap",
    "DuplicateSequence", "DuplicateFill", "InvalidSnapshot", "InvalidFault",
    "ExchangeUnavailable",
]


class ExchangeError(CofferError):
    """Root of the exchange integration's errors."""


class InvalidContract(ExchangeError):
    """A contract definition is out of range or inconsistent."""


class UnknownContract(ExchangeError):
    """A fill, position or mark names a contract that is not configured."""

    def __init__(self, contract: str) -> None:
        super().__init__(f"unknown contract {contract!r}")
        self.contract = contract


class InvalidFill(ExchangeError):
    """A fill is malformed or out of range; `field` names the offending field."""

    def __init__(self, message: str, *, field: str, fill_id: str | None = None) -> None:
        where = f"fill {fill_id!r}: " if fill_id else ""
        super().__init__(f"{where}{field}: {message}")
        self.field = field
        self.fill_id = fill_id


class SequenceGap(ExchangeError):
    """The fill log skipped sequence numbers: fills are missing between `expected` and `received`."""

    def __init__(self, *, expected: int, received: int) -> None:
        super().__init__(f"sequence gap: expected {expected}, received {received}")
        self.expected = expected
        self.received = received


class DuplicateSequence(ExchangeError):
    """A sequence number arrived again (or went backwards)."""

    def __init__(self, *, expected: int, received: int) -> None:
        super().__init__(f"duplicate or reordered sequence: expected {expected}, received {received}")
        self.expected = expected
        self.received = received


class DuplicateFill(ExchangeError):
    """A fill id arrived twice."""

    def __init__(self, fill_id: str) -> None:
        super().__init__(f"duplicate fill id {fill_id!r}")
        self.fill_id = fill_id


class InvalidSnapshot(ExchangeError):
    """A position, balance or mark snapshot is malformed or out of range."""


class InvalidFault(ExchangeError):
    """A fault-injection command names an unknown fault or bad arguments."""


class ExchangeUnavailable(ExchangeError):
    """The engine could not be reached or answered with an error status: no data, not bad data."""
