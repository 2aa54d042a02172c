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

from coffer.exchange.model import Fill

__all__ = ["fill_transfers", "post_fills"]


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
