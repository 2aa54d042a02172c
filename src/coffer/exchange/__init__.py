"""The exchange integration: the typed data a trading engine hands Coffer (contracts, fills,
position snapshots, marks, margin balances), its strict ingestion, the one definition of
position accounting, and a deterministic trading simulator (`coffer exchange-sim`).
"""

from coffer.exchange.accounting import Position, apply_fill, maintenance_margin, unrealised_pnl
from coffer.exchange.errors import (
    DuplicateFill,
    DuplicateSequence,
    ExchangeError,
    ExchangeUnavailable,
    InvalidContract,
    InvalidFault,
    InvalidFill,
    InvalidSnapshot,
    SequenceGap,
    UnknownContract,
)
from coffer.exchange.feed import ExchangeFeed, ExchangeSnapshot, LedgerMarginTotal, MarginLedger
from coffer.exchange.ingest import ContractBook, FillColumns, FillLog
from coffer.exchange.ledger_bridge import FillPoster, LedgerMargin, fill_transfers, post_fills
from coffer.exchange.model import (
    AccountBalance,
    Contract,
    ContractKind,
    Fill,
    MarkPrice,
    PositionSnapshot,
    Side,
    contract_value,
)
from coffer.exchange.simulator import (
    DEFAULT_CONTRACTS,
    ExchangeSimulator,
    FaultKind,
    MemoryLedger,
    SimulatorFeed,
)

__all__ = [
    "Position", "apply_fill", "maintenance_margin", "unrealised_pnl",
    "ExchangeError", "ExchangeUnavailable", "InvalidContract", "UnknownContract", "InvalidFill", "SequenceGap", "DuplicateSequence",
    "DuplicateFill", "InvalidSnapshot", "InvalidFault",
    "ExchangeFeed", "ExchangeSnapshot", "LedgerMarginTotal", "MarginLedger",
    "ContractBook", "FillColumns", "FillLog",
    "AccountBalance", "Contract", "ContractKind", "Fill", "MarkPrice", "PositionSnapshot", "Side", "contract_value",
    "FillPoster", "LedgerMargin", "fill_transfers", "post_fills",
    "DEFAULT_CONTRACTS", "ExchangeSimulator", "FaultKind", "MemoryLedger", "SimulatorFeed",
]
