"""Where the on-chain check gets its inputs: the ledger (custody per wallet, client liabilities)
and the chains (holdings per custody script at one height), read so that they agree in time.

The ledger is read before and after the chain scan; if its custody balances moved meanwhile
(a deposit credited, a withdrawal settled) the scan is repeated, a bounded number of times, so a
race is never reported as a mismatch. Pending deposits and in-flight withdrawals come from the
parts that track them, as callables given the asset and the checked height.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from coffer.recon.errors import ReconError
from coffer.recon.onchain import (
    CustodyScript,
    Holding,
    InflightWithdrawal,
    OnchainCheckInput,
    PendingDeposit,
    holding_columns,
)

__all__ = ["OnchainSource", "ledger_custody", "HoldingsReader", "SCAN_RETRIES_MAX"]

SCAN_RETRIES_MAX = 5
HoldingsReader = Callable[[Sequence[CustodyScript]], tuple[int, list[Holding]]]


def ledger_custody(ledger: Any, assets: Sequence[str]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """(custody balance per (asset, wallet), client liabilities per asset) from a coffer.ledger.Ledger."""
    from coffer.ledger import Book

    custody = {(key.asset, key.name): int(amount)
               for key, amount in ledger.balances(book=Book.CUSTODY).items() if key.asset in assets}
    liabilities = {asset: sum(int(item.total) for item in ledger.client_liabilities(asset)) for asset in assets}
    return custody, liabilities


class OnchainSource:
    """A callable giving one consistent `OnchainCheckInput` (for `Reconciler(onchain=...)`)."""

    def __init__(self, *, scripts: Callable[[], Sequence[CustodyScript]], holdings: Mapping[str, HoldingsReader],
                 ledger_view: Callable[[Sequence[str]], tuple[dict[tuple[str, str], int], dict[str, int]]],
                 pending: Callable[[str, int], Sequence[PendingDeposit]] = lambda asset, height: (),
                 inflight: Callable[[str, int], Sequence[InflightWithdrawal]] = lambda asset, height: ()) -> None:
        self._scripts = scripts
        self._holdings = dict(holdings)
        self._ledger_view = ledger_view
        self._pending = pending
        self._inflight = inflight

    def __call__(self) -> OnchainCheckInput:
        scripts = list(self._scripts())
        assets = sorted({s.asset for s in scripts} | set(self._holdings))
        missing = [asset for asset in assets if asset not in self._holdings]
        if missing:
            raise ReconError(f"no chain reader for {missing}")
        for _ in range(SCAN_RETRIES_MAX):
            custody, liabilities = self._ledger_view(assets)
            heights: dict[str, int] = {}
            holdings: list[Holding] = []
            for asset in assets:
                mine = [s for s in scripts if s.asset == asset]
                heights[asset], found = self._holdings[asset](mine)
                holdings.extend(found)
            if self._ledger_view(assets)[0] != custody:
                continue
            pending = [p for asset in assets for p in self._pending(asset, heights[asset])]
            inflight = [w for asset in assets for w in self._inflight(asset, heights[asset])]
            return OnchainCheckInput(heights, scripts, holding_columns(scripts, holdings), custody, liabilities,
                                     tuple(pending), tuple(inflight))
        raise ReconError("ledger custody kept changing during the chain scan")
