"""Realised PnL and fees of simulated fills reach the real ledger as transfers, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.exchange import ExchangeSimulator, Position, apply_fill
from coffer.exchange.ledger_bridge import post_fills
from coffer.ledger import AccountKey, Asset, Kind, Ledger, Transfer, credit, debit
from coffer.ledger.core import DEFAULT_ASSETS

USDT = Asset("USDT", 6, "micro")
AT = datetime(2026, 11, 27, tzinfo=UTC)


def test_fill_pnl_and_fees_post_to_ledger_once(engine: Engine) -> None:
    """Posting a simulator's fills twice moves each client's balance by its PnL minus fees, once."""
    ledger = Ledger(engine, assets=(*DEFAULT_ASSETS, USDT))
    sim = ExchangeSimulator(seed=8, accounts=4)
    assets = ["BTC", "USDT"]
    ledger.open_house_accounts(assets, at=AT)
    for account in sim.accounts:
        ledger.open_client(account, assets, at=AT)
        for asset, amount in (("BTC", 10**8), ("USDT", 10**11)):
            ledger.apply(Transfer(f"dep:{account}:{asset}", Kind.DEPOSIT,
                                  (debit(AccountKey.custody("cold", asset), amount),
                                   credit(AccountKey.available(account, asset), amount)), AT))
    for _ in range(10):
        sim.step(20)
    contracts = {c.contract_id: c for c in sim.contracts}
    positions: dict[tuple[str, str], Position] = {}
    items = []
    for fill in sim.fills(0, 10**9):
        contract = contracts[fill.contract]
        key = (fill.account, fill.contract)
        positions[key], realised = apply_fill(positions.get(key, Position()), fill.signed_quantity,
                                              contract.value(fill.price_ticks))
        items.append((fill, contract.settle_asset, realised))
    post_fills(ledger, items, at=AT)
    post_fills(ledger, items, at=AT)
    for total in sim.ledger.totals():
        assert total.balance_minor == ledger.balance(AccountKey.available(total.account, total.asset))
    assert ledger.check_consistency().transfers > 0


def test_reconciliation_reads_the_real_ledger(tmp_path: Path) -> None:
    """The position check over the real ledger passes; a PnL credit no fill backs is then caught."""
    engine = make_engine(f"sqlite:///{tmp_path / 'coffer.db'}")
    migrate(engine)
    from coffer.exchange import SimulatorFeed
    from coffer.exchange.ledger_bridge import FillPoster, LedgerMargin
    from coffer.recon import check_positions
    from coffer.recon.service import PositionReconciler

    ledger = Ledger(engine, assets=(*DEFAULT_ASSETS, USDT))
    sim = ExchangeSimulator(seed=12, accounts=4)
    ledger.open_house_accounts(["BTC", "USDT"], at=AT)
    for account in sim.accounts:
        ledger.open_client(account, ["BTC", "USDT"], at=AT)
        for asset, amount in (("BTC", 10**8), ("USDT", 100_000 * 10**6)):
            ledger.apply(Transfer(f"dep:{account}:{asset}", Kind.DEPOSIT,
                                  (debit(AccountKey.custody("cold", asset), amount),
                                   credit(AccountKey.available(account, asset), amount)), AT))
    feed = SimulatorFeed(sim)
    margin = LedgerMargin(ledger, FillPoster(ledger, sim.contracts), feed, clock=lambda: AT)
    reconciler = PositionReconciler(feed, margin)
    for _ in range(5):
        sim.step(20)
    assert check_positions(reconciler.collect()).ok
    rogue = AccountKey.available(sim.accounts[1], "USDT")
    ledger.apply(Transfer("rogue:1", Kind.PNL, (debit(AccountKey.company("insurance_fund", "USDT"), 5_000_000),
                                                credit(rogue, 5_000_000)), AT))
    sim.step(20)
    result = check_positions(reconciler.collect())
    assert {"ledger_pnl", "margin_balance"} <= set(result.counts_by_kind)
