"""BitcoinRpcChain (the production backend) against `coffer regtest`: in-process server and a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.chain import (
    BitcoinChain,
    BlockConnected,
    BlockDisconnected,
    BlockWatcher,
    BroadcastRejected,
    DescriptorRange,
    TransactionNotFound,
)
from coffer.chain.bitcoin_rpc import BitcoinCoreRpc, BitcoinRpcChain
from coffer.chain.descriptors import script_to_address
from coffer.chain.errors import BlockNotFound, RpcError
from coffer.chain.regtest import RegtestChain, RegtestNode, RpcDispatcher, RpcServer
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import FEE_SATS, key, p2wpkh_script, spend_p2wpkh, vsize
from tests.chain.rpchelp import free_port

MINER_ADDRESS = script_to_address(MINER_SCRIPT) or ""
RECEIVER = key(81)


@pytest.fixture
def rpc_chain(node: RegtestNode) -> Iterator[tuple[RegtestNode, BitcoinRpcChain]]:
    server = RpcServer(RpcDispatcher(node), port=0).start()
    chain = BitcoinRpcChain(BitcoinCoreRpc(server.url, cookie_file=node.datadir / ".cookie"))
    try:
        yield node, chain
    finally:
        chain.close()
        server.close()


def _pay(node: RegtestNode, chain: BitcoinChain, spk: bytes) -> str:
    coin = mature_coins(node)[0]
    return chain.broadcast(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, spk)]))


def test_both_backends_satisfy_the_interface(rpc_chain: tuple[RegtestNode, BitcoinRpcChain]) -> None:
    """RegtestChain and BitcoinRpcChain are BitcoinChains and agree on tip, blocks and UTXOs."""
    node, remote = rpc_chain
    local = RegtestChain(node)
    assert isinstance(local, BitcoinChain) and isinstance(remote, BitcoinChain)
    assert local.tip() == remote.tip()
    tip = remote.tip()
    assert local.block(tip.hash) == remote.block(tip.hash)
    assert local.raw_block(tip.hash) == remote.raw_block(tip.hash)
    assert sorted(local.unspent([MINER_SCRIPT]), key=lambda u: (u.txid, u.vout)) == \
        sorted(remote.unspent([MINER_SCRIPT]), key=lambda u: (u.txid, u.vout))
    assert local.block_hash(3) == remote.block_hash(3)


def test_broadcast_confirm_and_status(rpc_chain: tuple[RegtestNode, BitcoinRpcChain]) -> None:
    """A broadcast payment is in the mempool (0 confirmations), then confirmed with block and height."""
    node, chain = rpc_chain
    receiver = p2wpkh_script(RECEIVER)
    txid = _pay(node, chain, receiver)
    assert 0 == chain.tx_status(txid).confirmations and chain.tx_status(txid).in_mempool
    [block_hash] = chain.mine(1, address=MINER_ADDRESS)
    status = chain.tx_status(txid)
    assert (1, block_hash, node.height) == (status.confirmations, status.block_hash, status.block_height)
    [utxo] = chain.unspent([receiver])
    assert (txid, 0, receiver, node.height, False) == (utxo.txid, utxo.vout, utxo.script_pubkey, utxo.height,
                                                       utxo.coinbase)
    with pytest.raises(TransactionNotFound):
        chain.tx_status("ab" * 32)
    assert 0 == chain.confirmations("ab" * 32)
    with pytest.raises(BlockNotFound):
        chain.block_hash(node.height + 5)


def test_broadcast_rejection_carries_core_reason(rpc_chain: tuple[RegtestNode, BitcoinRpcChain]) -> None:
    """A rejected broadcast raises BroadcastRejected with Core's reason, details and code."""
    node, chain = rpc_chain
    coin = mature_coins(node)[0]
    low = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 5, MINER_SCRIPT)])
    with pytest.raises(BroadcastRejected) as caught:
        chain.broadcast(low)
    assert ("min relay fee not met", f"5 < {vsize(low) * 100 // 1000}", -26) == (
        caught.value.reason, caught.value.details, caught.value.code)


def test_descriptor_utxos_and_fee_estimate(rpc_chain: tuple[RegtestNode, BitcoinRpcChain]) -> None:
    """unspent_for_descriptors scans a descriptor range; estimate_fee falls back, then follows blocks."""
    node, chain = rpc_chain
    assert chain.estimate_fee(6).fallback
    txid = _pay(node, chain, p2wpkh_script(RECEIVER))
    chain.mine(1, address=MINER_ADDRESS)
    pubkey = RECEIVER.get_public_key().sec().hex()
    [utxo] = chain.unspent_for_descriptors([DescriptorRange(f"wpkh({pubkey})")])
    assert txid == utxo.txid
    estimate = chain.estimate_fee(2)
    assert (False, FEE_SATS * 1000 // 110) == (estimate.fallback, estimate.sat_per_kvb)


def test_watcher_over_rpc_sees_reorg(rpc_chain: tuple[RegtestNode, BitcoinRpcChain]) -> None:
    """BlockWatcher over JSON-RPC reports disconnects then connects for an invalidate + longer fork."""
    node, chain = rpc_chain
    watcher = BlockWatcher(chain)
    chain.mine(2, address=MINER_ADDRESS)
    assert [BlockConnected(node.height - 1, chain.block_hash(node.height - 1)),
            BlockConnected(node.height, chain.block_hash(node.height))] == watcher.poll()
    old_tip = chain.tip()
    chain.rpc.call("invalidateblock", old_tip.hash)
    chain.mine(2, address=script_to_address(p2wpkh_script(key(82))) or "")
    events = watcher.poll()
    assert [BlockDisconnected(old_tip.height, old_tip.hash)] == events[:1]
    assert [BlockConnected(h, chain.block_hash(h)) for h in (old_tip.height, old_tip.height + 1)] == events[1:]
    assert [] == watcher.poll()


def test_batch_calls(rpc_chain: tuple[RegtestNode, BitcoinRpcChain]) -> None:
    """BitcoinCoreRpc.batch returns results in order and raises the first error."""
    node, chain = rpc_chain
    assert [node.height, node.best_hash[::-1].hex()] == chain.rpc.batch([("getblockcount", []),
                                                                         ("getbestblockhash", [])])
    with pytest.raises(RpcError) as caught:
        chain.rpc.batch([("getblockcount", []), ("getblockhash", [10**6])])
    assert -8 == caught.value.code


def _start_process(datadir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from coffer.cli import main; main()", "regtest", "--datadir", str(datadir),
               "--rpcport", str(port), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("regtest ready"):
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"coffer regtest did not start (exit {process.poll()})")


def test_real_coffer_regtest_process(tmp_path: Path) -> None:
    """`coffer regtest` as its own process: cookie auth, mining, payment, RPC stop, restart with the same tip."""
    datadir, port = tmp_path / "node", free_port()
    process = _start_process(datadir, port)
    try:
        _wait_ready(process)
        chain = BitcoinRpcChain(BitcoinCoreRpc(f"http://127.0.0.1:{port}/", cookie_file=datadir / ".cookie"))
        chain.mine(101, address=MINER_ADDRESS)
        [coin] = [u for u in chain.unspent([MINER_SCRIPT]) if u.height == 1]
        from tests.chain.helpers import Prevout

        prev = Prevout(bytes.fromhex(coin.txid)[::-1], coin.vout, coin.amount_sats, coin.script_pubkey)
        txid = chain.broadcast(spend_p2wpkh(prev, MINER_KEY, [(coin.amount_sats - FEE_SATS, p2wpkh_script(RECEIVER))]))
        chain.mine(1, address=MINER_ADDRESS)
        tip = chain.tip()
        assert 1 == chain.confirmations(txid)
        assert "Bitcoin Core stopping" == chain.rpc.call("stop")
        chain.close()
        assert 0 == process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    process = _start_process(datadir, port, "--rpcuser", "ops", "--rpcpassword", "s3cret")
    try:
        _wait_ready(process)
        again = BitcoinRpcChain(BitcoinCoreRpc(f"http://127.0.0.1:{port}/", user="ops", password="s3cret"))
        assert tip == again.tip()
        assert [txid] == [u.txid for u in again.unspent([p2wpkh_script(RECEIVER)])]
        again.close()
        process.send_signal(signal.SIGTERM)
        assert 0 == process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_client_rereads_cookie_after_node_restart(node: RegtestNode) -> None:
    """After the server restarts with a new cookie, the client reads the cookie again and carries on."""
    first = RpcServer(RpcDispatcher(node), port=0).start()
    port = first.port
    rpc = BitcoinCoreRpc(first.url, cookie_file=node.datadir / ".cookie")
    assert node.height == rpc.call("getblockcount")
    first.close()
    second = RpcServer(RpcDispatcher(node), port=port).start()
    try:
        assert node.height == rpc.call("getblockcount")
    finally:
        rpc.close()
        second.close()
