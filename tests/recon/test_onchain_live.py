"""The on-chain check against the real parts: the ledger on SQLite and the embedded regtest chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from coffer.chain.regtest import RegtestChain
from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.recon import CustodyScript, HaltSwitch, Reconciler, Scheduler, bitcoin_holdings, latest_onchain
from coffer.recon.sources import OnchainSource, ledger_custody

AT = datetime(2026, 11, 27, tzinfo=UTC)
COLD = [CustodyScript("BTC", "cold", "0020" + f"{n:02x}" * 32) for n in range(1, 4)]
HOT = [CustodyScript("BTC", "hot", "5120" + "aa" * 32)]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Engine, Ledger, RegtestChain]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'coffer.db'}")
    migrate(engine)
    chain = RegtestChain.open(tmp_path / "regtest")
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=AT)
    ledger.open_client("alice", ["BTC"], at=AT)
    yield engine, ledger, chain
    chain.close()
    engine.dispose()


def credit_custody(ledger: Ledger, wallet: str, amount: int, key: str) -> None:
    """Book coins that arrived on a custody script: half to a client, half to the company."""
    ledger.apply(Transfer(f"{key}:client", Kind.DEPOSIT, (debit(AccountKey.custody(wallet, "BTC"), amount // 2),
                                                         credit(AccountKey.available("alice", "BTC"), amount // 2)), AT))
    rest = amount - amount // 2
    ledger.apply(Transfer(f"{key}:company", Kind.COMPANY_DEPOSIT, (debit(AccountKey.custody(wallet, "BTC"), rest),
                                                                   credit(AccountKey.company("operating", "BTC"), rest)),
                          AT))


def test_custody_matches_chain_then_unbooked_coins_halt(setup: tuple[Engine, Ledger, RegtestChain]) -> None:
    """Coins the ledger booked match the chain; coins on a custody script the ledger never booked halt."""
    engine, ledger, chain = setup
    for script in COLD + HOT:
        chain.mine(1, script_pubkey=bytes.fromhex(script.script))
    for script in COLD + HOT:
        _, utxos = bitcoin_holdings(chain, [script])
        credit_custody(ledger, script.wallet, sum(u.amount for u in utxos), f"dep:{script.script[-4:]}")
    source = OnchainSource(scripts=lambda: COLD + HOT, holdings={"BTC": lambda s: bitcoin_holdings(chain, s)},
                           ledger_view=lambda assets: ledger_custody(ledger, assets))
    switch = HaltSwitch(engine, quorum=2)
    reconciler = Reconciler(switch, onchain=source, engine=engine)
    now = [1000.0]
    scheduler = Scheduler(engine, reconciler.jobs(onchain_interval_s=600), node="c1", clock=lambda: now[0])
    assert ["ok"] == [r.status for r in scheduler.run_due()]
    report = latest_onchain(engine)
    assert report is not None
    assert [("BTC", "cold", 3), ("BTC", "hot", 1)] == [(w["asset"], w["wallet"], w["scripts"]) for w in report.wallets]
    assert 0 == report.wallets[0]["difference"]
    assert not switch.is_halted()
    chain.mine(1, script_pubkey=bytes.fromhex(COLD[0].script))
    now[0] += 600
    assert ["mismatch"] == [r.status for r in scheduler.run_due()]
    assert "onchain_mismatch" == switch.history()[0].cause
    assert latest_onchain(engine).wallets[0]["difference"] > 0  # type: ignore[union-attr]
