"""Heavier runs (still quick): concurrent RPC clients while the timer mines, and a deep reorg."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from coffer.chain.bitcoin_rpc import BitcoinCoreRpc, BitcoinRpcChain
from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
from coffer.chain.regtest.wire import sha256d
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import FEE_SATS, key, p2wpkh_script, spend_p2wpkh


def test_concurrent_clients_while_timer_mines(tmp_path: Path) -> None:
    """Four RPC clients read and broadcast while the timer mines; every payment confirms; the index survives restart."""
    datadir = tmp_path / "busy"
    with RegtestNode(datadir) as node:
        node.generate(160, MINER_SCRIPT)
        spends = [spend_p2wpkh(c, MINER_KEY, [(c.value_sats - FEE_SATS, p2wpkh_script(key(200 + i)))])
                  for i, c in enumerate(mature_coins(node, 40))]
        server = RpcServer(RpcDispatcher(node), port=0, rpcuser="u", rpcpassword="p").start()
        node.start_mining(0.02, MINER_SCRIPT)
        errors: list[BaseException] = []
        txids: list[str] = []

        def client(share: list[bytes]) -> None:
            chain = BitcoinRpcChain(BitcoinCoreRpc(server.url, user="u", password="p"))
            try:
                for raw in share:
                    txids.append(chain.broadcast(raw))
                    tip = chain.tip()
                    chain.block(chain.block_hash(random.randint(0, tip.height)))
                    chain.rpc.call("getblock", tip.hash, 2)
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)
            finally:
                chain.close()

        threads = [threading.Thread(target=client, args=(spends[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        node.stop_mining()
        node.generate(1, MINER_SCRIPT)
        server.close()
        assert [] == errors
        assert 40 == len(txids)
        assert all(node.tx_block(bytes.fromhex(t)[::-1]) is not None for t in txids)
        scripts = [MINER_SCRIPT] + [p2wpkh_script(key(200 + i)) for i in range(40)]
        before = sorted(node.unspent(scripts))
    with RegtestNode(datadir) as reopened:
        assert before == sorted(reopened.unspent(scripts))


def test_deep_reorg_of_fifty_blocks(tmp_path: Path) -> None:
    """A 51-block fork replaces 50 blocks holding payments; they return to the mempool, then confirm again."""
    with RegtestNode(tmp_path / "deep") as node:
        node.generate(150, MINER_SCRIPT)
        fork_point = node.best_hash
        paid = []
        for coin in mature_coins(node, 10):
            tx, _fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS,
                                                                               p2wpkh_script(key(300)))]))
            paid.append(tx.txid)
        node.generate(50, MINER_SCRIPT)
        parent = fork_point
        for _ in range(51):
            raw = node.build_block(p2wpkh_script(key(301)), [], parent=parent)
            node.submit_block(raw)
            parent = sha256d(raw[:80])
        assert parent == node.best_hash
        assert set(paid) <= set(node.mempool_entries())
        assert [] == node.unspent([p2wpkh_script(key(300))])
        node.generate(1, MINER_SCRIPT)
        assert 10 == len(node.unspent([p2wpkh_script(key(300))]))
