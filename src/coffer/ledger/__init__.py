"""The segregated double-entry ledger: the one source of balances.

Client funds live in per-client accounts (`available`, `held`) per asset, in the client book,
ring-fenced from the company book: only `fee` and `pnl` (against the insurance fund) may move
value between them, and no client balance can go below zero (checked by the pure core and again
by the database). Custody accounts track what the exchange holds on chain per wallet.

Entry points: `Ledger(engine)` (store), and the pure values `AccountKey`, `Transfer`, `Posting`,
`debit`, `credit`, `Kind`, `Book`, `Asset`.
"""

from coffer.ledger.core import (
    AMOUNT_MAX,
    BTC,
    DEFAULT_ASSETS,
    ETH,
    AccountKey,
    Asset,
    Book,
    Kind,
    Posting,
    Side,
    Transfer,
    apply_transfers,
    check_ring_fence,
    check_transfer,
    credit,
    debit,
    transfer_digest,
)
from coffer.ledger.errors import (
    AccountNumberTaken,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAccountKey,
    InvalidAmount,
    InvalidTransfer,
    LedgerBusy,
    LedgerError,
    LedgerInconsistent,
    MixedAssets,
    RingFenceViolation,
    UnbalancedTransfer,
    UnknownAccount,
    UnknownAsset,
)
from coffer.ledger.store import (
    AppliedTransfer,
    BookTotals,
    ClientAccount,
    ClientLiability,
    ConsistencyReport,
    Ledger,
    Statement,
    StatementLine,
)

__all__ = [
    "AMOUNT_MAX", "BTC", "ETH", "DEFAULT_ASSETS", "AccountKey", "Asset", "Book", "Kind", "Posting", "Side",
    "Transfer", "apply_transfers", "check_ring_fence", "check_transfer", "credit", "debit", "transfer_digest",
    "AccountNumberTaken", "IdempotencyConflict", "InsufficientFunds", "InvalidAccountKey", "InvalidAmount",
    "InvalidTransfer", "LedgerBusy", "LedgerError", "LedgerInconsistent", "MixedAssets", "RingFenceViolation",
    "UnbalancedTransfer", "UnknownAccount", "UnknownAsset",
    "AppliedTransfer", "BookTotals", "ClientAccount", "ClientLiability", "ConsistencyReport", "Ledger",
    "Statement", "StatementLine",
]
