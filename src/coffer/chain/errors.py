"""Errors of the chain backends. A rejection carries Core's own code and reason text."""

from __future__ import annotations

from coffer.errors import CofferError, NotFound

__all__ = [
    "ChainError", "DecodeError", "BlockNotFound", "TransactionNotFound", "BroadcastRejected",
    "RpcError", "ChainUnavailable", "BlockRejected",
]


class ChainError(CofferError):
    """A chain backend failed or refused a request."""


class DecodeError(ChainError):
    """Bytes that should be a transaction, block or script do not parse."""


class BlockNotFound(ChainError, NotFound):
    """No block with that height or hash on the chain."""


class TransactionNotFound(ChainError, NotFound):
    """No transaction with that id is known."""


class BroadcastRejected(ChainError):
    """The node refused a transaction. `reason` is Core's reject reason, e.g. "min relay fee not met"."""

    def __init__(self, reason: str, *, code: int = -26, details: str | None = None,
                 txid: str | None = None) -> None:
        self.reason = reason
        self.code = code
        self.details = details
        self.txid = txid
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """Core's sendrawtransaction error message: the reason, then the details after a comma."""
        return self.reason if not self.details else f"{self.reason}, {self.details}"


class BlockRejected(ChainError):
    """The consensus engine refused a block; `reason` says why as far as it is known."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RpcError(ChainError):
    """A JSON-RPC error object from a node: Core's numeric code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"RPC error {code}: {message}")
        self.code = code
        self.message = message


class ChainUnavailable(ChainError):
    """The node could not be reached or answered garbage."""
