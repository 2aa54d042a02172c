"""How realised PnL and fees of fills reach the ledger (`coffer.ledger`) as transfers.

Per fill, at most two transfers, each with an idempotency key derived from the fill id, so a
fill posted twice takes effect once:
- `pnl`  realised PnL between the client's `available` account and the company insurance fund
         (gain: insurance fund -> client; loss: client -> insurance fund);
- `fee`  a positive fee, client `available` -> company `fees`; a negative fee is a `fee_rebate`.
The metadata carries the fill id and sequence, which the reconciliation reads back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from coffer.exchange.accounting import Position, apply_fill
from coffer.exchange.errors import InvalidSnapshot, SequenceGap, UnknownContract
from coffer.exchange.feed import LedgerMarginTotal
from coffer.exchange.model import Contract, Fill

__all__ = ["fill_transfers", "post_fills", "FillPoster", "LedgerMargin"]


def fill_transfers(fill: Fill, settle_asset: str, realised_minor: int, *, at: datetime) -> list[Any]:
    """The ledger transfers (coffer.ledger.Transfer) a fill's realised PnL and fee make."""
    from coffer.ledger import AccountKey, Kind, Transfer, credit, debit

    client = AccountKey.available(fill.account, settle_asset)
    insurance = AccountKey.company("insurance_fund", settle_asset)
    fees = AccountKey.company("fees", settle_asset)
    metadata = {"fill_id": fill.fill_id, "sequence": fill.sequence, "contract": fill.contract}
    transfers = []
    if realised_minor > 0:
        transfers.append(Transfer(f"fill:{fill.fill_id}:pnl", Kind.PNL,
                                  (debit(insurance, realised_minor), credit(client, realised_minor)), at, metadata))
    elif realised_minor < 0:
        transfers.append(Transfer(f"fill:{fill.fill_id}:pnl", Kind.PNL,
                                  (debit(client, -realised_minor), credit(insurance, -realised_minor)), at, metadata))
    if fill.fee_minor > 0:
        transfers.append(Transfer(f"fill:{fill.fill_id}:fee", Kind.FEE,
                                  (debit(client, fill.fee_minor), credit(fees, fill.fee_minor)), at, metadata))
    elif fill.fee_minor < 0:
        transfers.append(Transfer(f"fill:{fill.fill_id}:fee", Kind.FEE_REBATE,
                                  (debit(fees, -fill.fee_minor), credit(client, -fill.fee_minor)), at, metadata))
    return transfers


def post_fills(ledger: Any, items: Sequence[tuple[Fill, str, int]], *, at: datetime,
               actor: str = "exchange") -> int:
    """Apply the transfers of (fill, settlement asset, realised PnL) items in one batch; returns
    how many transfers were applied (replays included)."""
    transfers = [t for fill, asset, realised in items for t in fill_transfers(fill, asset, realised, at=at)]
    if transfers:
        ledger.apply_many(transfers, actor=actor)
    return len(transfers)


class FillPoster:
    """Posts the realised PnL and fees of the engine's fills to the ledger, in sequence order.

    It replays the fills itself (`coffer.exchange.accounting`) to know each fill's realised PnL,
    and remembers, per fill sequence, the highest ledger transfer id its postings produced, so a
    reader can take the ledger "as of" a fill sequence (`LedgerMargin`).
    """

    def __init__(self, ledger: Any, contracts: Sequence[Contract], *, actor: str = "exchange") -> None:
        self._ledger = ledger
        self._contracts = {c.contract_id: c for c in contracts}
        self._actor = actor
        self._positions: dict[tuple[str, str], Position] = {}
        self.last_sequence = 0
        self._watermarks: list[tuple[int, int]] = [(0, 0)]
        self.accounts: set[tuple[str, str]] = set()
        self.settle_assets = frozenset(c.settle_asset for c in contracts)

    def post(self, fills: Sequence[Fill], *, at: datetime) -> int:
        """Post `fills`, which must continue the sequence; returns the transfers applied."""
        transfers: list[Any] = []
        positions = dict(self._positions)
        expected = self.last_sequence + 1
        for fill in fills:
            if fill.sequence != expected:
                raise SequenceGap(expected=expected, received=fill.sequence)
            contract = self._contracts.get(fill.contract)
            if contract is None:
                raise UnknownContract(fill.contract)
            key = (fill.account, fill.contract)
            positions[key], realised = apply_fill(positions.get(key, Position()), fill.signed_quantity,
                                                  contract.value(fill.price_ticks))
            transfers += fill_transfers(fill, contract.settle_asset, realised, at=at)
            expected += 1
        applied = self._ledger.apply_many(transfers, actor=self._actor) if transfers else []
        self._positions = positions
        self.accounts |= {(f.account, self._contracts[f.contract].settle_asset) for f in fills}
        if fills:
            top = max([int(a.transfer_id) for a in applied], default=self._watermarks[-1][1])
            self.last_sequence = fills[-1].sequence
            self._watermarks.append((self.last_sequence, top))
        return len(transfers)

    def watermark(self, sequence: int) -> int:
        """The highest ledger transfer id of postings for fills up to `sequence`."""
        if sequence > self.last_sequence:
            raise InvalidSnapshot(f"fills up to {sequence} are not posted yet (posted to {self.last_sequence})")
        best = 0
        for posted, transfer_id in self._watermarks:
            if posted <= sequence:
                best = max(best, transfer_id)
        return best


class LedgerMargin:
    """`MarginLedger` over the real ledger: per client and asset, the balance and the sums of
    `pnl` and fee postings, counting transfers up to the watermark of the asked fill sequence.
    It posts the feed's fills first (through `poster`), so the ledger is never behind the engine.
    Reads client statements: fit for the demo's scale, not for 100,000 accounts."""

    def __init__(self, ledger: Any, poster: FillPoster, feed: Any, *, clock: Any) -> None:
        self._ledger = ledger
        self._poster = poster
        self._feed = feed
        self._clock = clock

    def margin_totals(self, as_of_sequence: int) -> Sequence[LedgerMarginTotal]:
        from coffer.ledger import Kind

        if as_of_sequence > self._poster.last_sequence:
            self._poster.post(list(self._feed.fills(self._poster.last_sequence, as_of_sequence)), at=self._clock())
        limit = self._poster.watermark(as_of_sequence)
        totals = []
        for account, asset in sorted(self._poster.accounts | set(self._opened())):
            balance = pnl = fees = 0
            for line in self._ledger.statement(account, asset).lines:
                if line.transfer_id > limit:
                    break
                balance += line.delta
                if line.kind is Kind.PNL:
                    pnl += line.delta
                elif line.kind in (Kind.FEE, Kind.FEE_REBATE):
                    fees -= line.delta
            totals.append(LedgerMarginTotal(account, asset, balance, pnl, fees))
        return totals

    def _opened(self) -> list[tuple[str, str]]:
        from coffer.ledger import Book

        assets = self._poster.settle_assets
        return [(key.client_id, key.asset) for key in self._ledger.balances(book=Book.CLIENT)
                if key.asset in assets and key.name == "available" and key.client_id is not None]
