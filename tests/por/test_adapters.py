"""Adapters: balances from the chain interfaces at one tip, feeding the reserves document."""

from __future__ import annotations

from pathlib import Path

from embit.networks import NETWORKS
from embit.script import Script

from coffer.chain.ethereum import EmbeddedEthereum
from coffer.chain.regtest import RegtestChain, RegtestNode, subsidy_sats
from coffer.por import bip322
from coffer.por.adapters import bitcoin_balances_at_tip, ethereum_balances


def test_bitcoin_balances_at_tip(tmp_path: Path) -> None:
    """Each custody address's confirmed balance and the tip they were read at."""
    node = RegtestNode(tmp_path / "node")
    try:
        script = bip322.p2wpkh_script(bytes.fromhex("02" + "11" * 32))
        other = bip322.p2wpkh_script(bytes.fromhex("03" + "22" * 32))
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
