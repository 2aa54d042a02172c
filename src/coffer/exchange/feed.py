"""The documented integration API: what a trading engine hands Coffer, and what Coffer reads
from its own ledger, as typed values and as small protocols any engine adapter implements.

- `ExchangeFeed.contracts()`  the configured contracts;
- `ExchangeFeed.snapshot()`   positions, margin balances, marks and the accounts being
                              liquidated, consistent as of fill sequence `as_of_sequence`;
- `ExchangeFeed.fills(after, upto)` the fill log, in sequence, after `after` up to `upto`;
- `MarginLedger.margin_totals(as_of_sequence)` per account and settlement asset: the ledger's
  balance and the sums of its realised-PnL and fee postings backed by fills up to that sequence.
JSON forms are strict (`from_json(to_json(x)) == x`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from coffer.exchange.errors import InvalidSnapshot
from coffer.exchange.model import (
    BALANCE_MINOR_MAX,
    AccountBalance,
    Contract,
    Fill,
    MarkPrice,
    PositionSnapshot,
    check_identifier,
)

__all__ = ["ExchangeSnapshot", "LedgerMarginTotal", "ExchangeFeed", "MarginLedger", "SNAPSHOT_ROWS_MAX"]

SNAPSHOT_ROWS_MAX = 20_000_000


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list) or len(value) > SNAPSHOT_ROWS_MAX:
        raise InvalidSnapshot(f"{key}: expected a list of at most {SNAPSHOT_ROWS_MAX}")
    return value


@dataclass(frozen=True, slots=True)
class ExchangeSnapshot:
    as_of_sequence: int
    positions: tuple[PositionSnapshot, ...]
    balances: tuple[AccountBalance, ...]
    marks: tuple[MarkPrice, ...]
    liquidating: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"as_of_sequence": self.as_of_sequence, "positions": [p.to_json() for p in self.positions],
                "balances": [b.to_json() for b in self.balances], "marks": [m.to_json() for m in self.marks],
                "liquidating": list(self.liquidating)}

    @classmethod
    def from_json(cls, data: object) -> ExchangeSnapshot:
        fields = {"as_of_sequence", "positions", "balances", "marks", "liquidating"}
        if not isinstance(data, Mapping) or set(data) != fields:
            raise InvalidSnapshot(f"snapshot: expected exactly the fields {sorted(fields)}")
        sequence = data["as_of_sequence"]
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
            raise InvalidSnapshot("as_of_sequence: expected a non-negative integer")
        liquidating = tuple(check_identifier(a, field="liquidating") for a in _list(data, "liquidating"))
        return cls(sequence, tuple(PositionSnapshot.from_json(p) for p in _list(data, "positions")),
                   tuple(AccountBalance.from_json(b) for b in _list(data, "balances")),
                   tuple(MarkPrice.from_json(m) for m in _list(data, "marks")), liquidating)


@dataclass(frozen=True, slots=True)
class LedgerMarginTotal:
    account: str
    asset: str
    balance_minor: int
    pnl_minor: int
    fees_minor: int

    def __post_init__(self) -> None:
        check_identifier(self.account, field="account")
        check_identifier(self.asset, field="asset")
        for name in ("balance_minor", "pnl_minor", "fees_minor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > BALANCE_MINOR_MAX:
                raise InvalidSnapshot(f"{name}: expected an integer within +-2**62")

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "asset": self.asset, "balance_minor": self.balance_minor,
                "pnl_minor": self.pnl_minor, "fees_minor": self.fees_minor}

    @classmethod
    def from_json(cls, data: object) -> LedgerMarginTotal:
        fields = {"account", "asset", "balance_minor", "pnl_minor", "fees_minor"}
        if not isinstance(data, Mapping) or set(data) != fields:
            raise InvalidSnapshot(f"ledger total: expected exactly the fields {sorted(fields)}")
        return cls(data["account"], data["asset"], data["balance_minor"], data["pnl_minor"], data["fees_minor"])


class ExchangeFeed(Protocol):
    def contracts(self) -> Sequence[Contract]: ...

    def snapshot(self) -> ExchangeSnapshot: ...

    def fills(self, after_sequence: int, upto_sequence: int) -> Sequence[Fill]: ...


class MarginLedger(Protocol):
    def margin_totals(self, as_of_sequence: int) -> Sequence[LedgerMarginTotal]: ...
