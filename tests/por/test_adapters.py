"""Adapters: balances from the chain interfaces at one tip, feeding the reserves document."""

from __future__ import annotations

from pathlib import Path

from embit.networks import NETWORKS
from embit.script import Script

from coffer.btc import script as btc_script
from coffer.chain.ethereum import EmbeddedEthereum
from coffer.chain.regtest import RegtestChain, RegtestNode, subsidy_sats
from coffer.por.adapters import bitcoin_balances_at_tip, ethereum_balances


def test_bitcoin_balances_at_tip(tmp_path: Path) -> None:
    """Each custody address's confirmed balance and the tip they were read at."""
    node = RegtestNode(tmp_path / "node")
    try:
        script = btc_script.p2wpkh_script(bytes.fromhex("02" + "11" * 32))
        other = btc_script.p2wpkh_script(bytes.fromhex("03" + "22" * 32))
        node.generate(2, script)
        address, empty = (Script(s).address(NETWORKS["regtest"]) for s in (script, other))
        tip, balances = bitcoin_balances_at_tip(RegtestChain(node), [address, empty])
        assert (2, node.best_hash[::-1].hex()) == (tip.height, tip.hash)
        assert {address: subsidy_sats(1) + subsidy_sats(2), empty: 0} == balances
    finally:
        node.close()


def test_ethereum_balances() -> None:
    """Balances in wei at one block number of the embedded chain."""
    chain = EmbeddedEthereum(accounts=2)
    addresses = list(chain.w3.eth.accounts[:2])
    number, balances = ethereum_balances(chain, addresses)
    assert chain.block_number() == number
    assert all(balance > 2**64 for balance in balances.values())


def test_derivatives_equity_is_floored_at_zero() -> None:
    """Balance plus unrealised PnL at mark per account; an account under water owes nothing, not less."""
    from coffer.exchange.model import Contract, ContractKind, PositionSnapshot
    from coffer.por.adapters import floor_equity, unrealised_pnl_by_account

    contracts = {"XBTUSD": Contract("XBTUSD", ContractKind.LINEAR, "BTC", 1, 50),
                 "ETHUSD": Contract("ETHUSD", ContractKind.LINEAR, "ETH", 1, 50)}
    positions = [PositionSnapshot("alice", "XBTUSD", 10, 1_000), PositionSnapshot("bob", "XBTUSD", -10, -1_000),
                 PositionSnapshot("alice", "ETHUSD", 5, 5)]
    pnl = unrealised_pnl_by_account(positions, contracts, {"XBTUSD": 150, "ETHUSD": 1},
                                    {"alice": 7, "bob": 8}, "BTC")
    assert {7: 500, 8: -500} == pnl
    assert [(7, 600), (8, 0)] == [(item.account_number, item.amount)
                                  for item in floor_equity([(7, 100), (8, 100)], pnl)]
