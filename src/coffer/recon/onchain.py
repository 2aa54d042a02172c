"""The on-chain check: pure. Per asset and wallet, the ledger's custody balance against what the
chain holds at the checked height on every custody script, with the differences explained only by
what is listed explicitly:

    chain holdings == ledger custody + pending deposits + in-flight withdrawals

- a *pending deposit* is on chain at the checked height but not yet credited in the ledger
  (fewer confirmations than the asset asks);
- an *in-flight withdrawal* is already debited from custody in the ledger but its transaction is
  not yet confirmed at the checked height (the amount includes the network fee).
Per asset, client liabilities never exceed what backs them: chain holdings less pending deposits
less in-flight withdrawals.

Amounts are integers of minor units. Sums run in numpy int64 when they provably fit and in
Python integers otherwise (wei balances do not fit 64 bits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from coffer.recon.errors import InvalidCheckInput
from coffer.recon.positions import Mismatch

__all__ = [
    "CustodyScript", "Holding", "PendingDeposit", "InflightWithdrawal", "HoldingColumns",
    "OnchainCheckInput", "WalletLine", "AssetLine", "OnchainCheckResult", "check_onchain",
    "holding_columns", "SCRIPTS_MAX", "HOLDINGS_MAX",
]

SCRIPTS_MAX = 10_000_000
HOLDINGS_MAX = 100_000_000
_INT64_SAFE = 1 << 62


def _amount(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCheckInput(f"{what}: amount must be a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class CustodyScript:
    """A script (hex scriptPubKey, or an address for account chains) that holds `asset` in `wallet`."""

    asset: str
    wallet: str
    script: str


@dataclass(frozen=True, slots=True)
class Holding:
    """What the chain holds on `script` at the checked height: one UTXO, or an account balance."""

    script: str
    amount: int


@dataclass(frozen=True, slots=True)
class PendingDeposit:
    asset: str
    wallet: str
    script: str
    reference: str
    amount: int


@dataclass(frozen=True, slots=True)
class InflightWithdrawal:
    asset: str
    wallet: str
    reference: str
    amount: int


@dataclass(frozen=True, slots=True)
class HoldingColumns:
    """Holdings as columns: the index of each holding's script in `scripts`, and its amount."""

    script_index: npt.NDArray[np.int64]
    amount: npt.NDArray[np.int64] | None
    amount_exact: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class OnchainCheckInput:
    heights: Mapping[str, int]
    scripts: Sequence[CustodyScript]
    holdings: HoldingColumns
    ledger_custody: Mapping[tuple[str, str], int]
    client_liabilities: Mapping[str, int]
    pending_deposits: Sequence[PendingDeposit] = ()
    inflight_withdrawals: Sequence[InflightWithdrawal] = ()


@dataclass(frozen=True, slots=True)
class WalletLine:
    asset: str
    wallet: str
    height: int
    scripts: int
    ledger_custody: int
    chain_holdings: int
    pending_deposits: int
    inflight_withdrawals: int

    @property
    def difference(self) -> int:
        """chain - (ledger + pending + in flight); zero when everything is accounted for."""
        return self.chain_holdings - self.ledger_custody - self.pending_deposits - self.inflight_withdrawals

    @property
    def ok(self) -> bool:
        return self.difference == 0

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.asset, "wallet": self.wallet, "height": self.height, "scripts": self.scripts,
                "ledger_custody": str(self.ledger_custody), "chain_holdings": str(self.chain_holdings),
                "pending_deposits": str(self.pending_deposits),
                "inflight_withdrawals": str(self.inflight_withdrawals),
                "difference": str(self.difference), "ok": self.ok}


@dataclass(frozen=True, slots=True)
class AssetLine:
    asset: str
    client_liabilities: int
    chain_holdings: int
    backing: int

    @property
    def ok(self) -> bool:
        return self.client_liabilities <= self.backing

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.asset, "client_liabilities": str(self.client_liabilities),
                "chain_holdings": str(self.chain_holdings), "backing": str(self.backing), "ok": self.ok}


@dataclass(frozen=True, slots=True)
class OnchainCheckResult:
    ok: bool
    wallets: tuple[WalletLine, ...]
    assets: tuple[AssetLine, ...]
    scripts: int
    holdings: int
    mismatches: tuple[Mismatch, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "scripts": self.scripts, "holdings": self.holdings,
                "wallets": [w.to_json() for w in self.wallets], "assets": [a.to_json() for a in self.assets],
                "mismatches": [m.to_json() for m in self.mismatches]}


def holding_columns(scripts: Sequence[CustodyScript], holdings: Sequence[Holding]) -> HoldingColumns:
    """Map each holding to its custody script's index; a holding on any other script is refused."""
    if len(scripts) > SCRIPTS_MAX or len(holdings) > HOLDINGS_MAX:
        raise InvalidCheckInput("too many scripts or holdings for one check")
    index = {script.script: position for position, script in enumerate(scripts)}
    if len(index) != len(scripts):
        raise InvalidCheckInput("a custody script is listed twice")
    try:
        positions = [index[holding.script] for holding in holdings]
    except KeyError as exc:
        raise InvalidCheckInput(f"holding on a script that is not custody: {exc.args[0]!r}") from None
    amounts = [_amount(holding.amount, "holding") for holding in holdings]
    script_index = np.array(positions, dtype=np.int64)
    if not amounts or max(amounts) * len(amounts) < _INT64_SAFE:
        return HoldingColumns(script_index, np.array(amounts, dtype=np.int64))
    return HoldingColumns(script_index, None, tuple(amounts))


def _per_wallet_chain(data: OnchainCheckInput, wallet_of_script: npt.NDArray[np.int64], wallets: int) -> list[int]:
    columns = data.holdings
    if columns.script_index.shape[0] and (columns.script_index.min() < 0
                                          or columns.script_index.max() >= len(data.scripts)):
        raise InvalidCheckInput("holding script index out of range")
    wallet_of_holding = wallet_of_script[columns.script_index]
    if columns.amount is not None:
        if columns.amount.shape != columns.script_index.shape:
            raise InvalidCheckInput("holding columns differ in length")
        if columns.amount.shape[0] and (columns.amount.min() < 0 or
                                        int(columns.amount.max()) * columns.amount.shape[0] >= _INT64_SAFE):
            raise InvalidCheckInput("holding amounts negative or too large for the 64-bit path")
        totals = np.zeros(wallets, dtype=np.int64)
        np.add.at(totals, wallet_of_holding, columns.amount)
        return [int(total) for total in totals.tolist()]
    exact = columns.amount_exact or ()
    if len(exact) != columns.script_index.shape[0]:
        raise InvalidCheckInput("holding columns differ in length")
    sums = [0] * wallets
    for wallet, amount in zip(wallet_of_holding.tolist(), exact, strict=True):
        sums[wallet] += _amount(amount, "holding")
    return sums


def check_onchain(data: OnchainCheckInput) -> OnchainCheckResult:
    """Compare ledger custody with chain holdings per (asset, wallet), and liabilities per asset."""
    keys = sorted({(s.asset, s.wallet) for s in data.scripts} | set(data.ledger_custody))
    wallet_index = {key: position for position, key in enumerate(keys)}
    wallet_of_script = np.array([wallet_index[(s.asset, s.wallet)] for s in data.scripts], dtype=np.int64)
    script_count = np.bincount(wallet_of_script, minlength=len(keys)).tolist() if keys else []
    chain = _per_wallet_chain(data, wallet_of_script, len(keys))
    pending = [0] * len(keys)
    custody_of = {s.script: (s.asset, s.wallet) for s in data.scripts}
    for deposit in data.pending_deposits:
        if custody_of.get(deposit.script) != (deposit.asset, deposit.wallet):
            raise InvalidCheckInput(f"pending deposit {deposit.reference!r} is not on a custody script of "
                                    f"{deposit.asset}/{deposit.wallet}")
        pending[wallet_index[(deposit.asset, deposit.wallet)]] += _amount(deposit.amount, "pending deposit")
    inflight = [0] * len(keys)
    for withdrawal in data.inflight_withdrawals:
        key = (withdrawal.asset, withdrawal.wallet)
        if key not in wallet_index:
            raise InvalidCheckInput(f"in-flight withdrawal {withdrawal.reference!r} from unknown wallet {key}")
        inflight[wallet_index[key]] += _amount(withdrawal.amount, "in-flight withdrawal")
    lines = []
    for position, (asset, wallet) in enumerate(keys):
        if asset not in data.heights:
            raise InvalidCheckInput(f"no checked height for {asset}")
        lines.append(WalletLine(asset, wallet, data.heights[asset], int(script_count[position]),
                                _amount(data.ledger_custody.get((asset, wallet), 0), "ledger custody"),
                                chain[position], pending[position], inflight[position]))
    return _verdict(data, tuple(lines), len(data.scripts), int(data.holdings.script_index.shape[0]))


def _verdict(data: OnchainCheckInput, lines: tuple[WalletLine, ...], scripts: int, holdings: int) -> OnchainCheckResult:
    mismatches = [Mismatch("custody_balance", f"{line.asset}/{line.wallet}",
                           line.ledger_custody + line.pending_deposits + line.inflight_withdrawals,
                           line.chain_holdings) for line in lines if not line.ok]
    assets = []
    for asset in sorted({line.asset for line in lines} | set(data.client_liabilities)):
        mine = [line for line in lines if line.asset == asset]
        chain = sum(line.chain_holdings for line in mine)
        backing = chain - sum(line.pending_deposits + line.inflight_withdrawals for line in mine)
        liabilities = _amount(data.client_liabilities.get(asset, 0), "client liabilities")
        assets.append(AssetLine(asset, liabilities, chain, backing))
        if liabilities > backing:
            mismatches.append(Mismatch("liabilities_exceed_custody", asset, backing, liabilities))
    return OnchainCheckResult(not mismatches, lines, tuple(assets), scripts, holdings, tuple(mismatches))
