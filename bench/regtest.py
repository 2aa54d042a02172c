"""Embedded regtest node benchmark.

1. Transactions per second accepted into blocks: pre-signed P2WPKH spends go through mempool
   acceptance (Core's policy + libbitcoinkernel script checks), block building, mining and the
   kernel's full block validation. Baseline in the same run: raw pbk `process_block` of empty
   pre-mined blocks per second (the kernel alone, no Python node around it).
2. `getblock` JSON-RPC calls per second over HTTP keep-alive (verbosity 1, a block with
   transactions), beside a trivial `ping` call per second on the same connection as the baseline
   (alternating short windows, median of each).

Last line: regtest_tx_per_s=<N> rpc_calls_per_s=<M>
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pbk
from embit import ec, script
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer, subsidy_sats
from coffer.chain.regtest.wire import build_block, sha256d
from coffer.log import configure_logging
from verdict import at_least, verdict

KEY = ec.PrivateKey(b"\x11" * 32)
SPK = script.p2wpkh(KEY.get_public_key()).data
FEE_SATS = 1_000
WINDOWS = 5
TARGET_TX_PER_S = at_least("regtest node transactions accepted into blocks >= 1,000/s", 1000)  # set by #19
TARGET_RPC_PER_S = at_least("regtest node getblock calls >= 1,000/s", 1000)  # set by #19


def _sign_one(txid: bytes, vout: int, value: int, outputs: list[tuple[int, bytes]]) -> bytes:
    tx = Transaction(vin=[TransactionInput(txid[::-1], vout)],
                     vout=[TransactionOutput(v, Script(s)) for v, s in outputs])
    digest = tx.sighash_segwit(0, script.p2pkh(KEY.get_public_key()), value)
    tx.vin[0].witness = Witness([KEY.sign(digest).serialize() + bytes([SIGHASH.ALL]), KEY.get_public_key().sec()])
    return bytes(tx.serialize())


def prepare(node: RegtestNode, count: int) -> list[bytes]:
    """Fan a coinbase out into `count` coins, then pre-sign one spend of each."""
    node.generate(101, SPK)
    (outpoint, coin) = min(node.unspent([SPK]), key=lambda item: item[1].height)
    per_output = (coin.value_sats - 100_000) // count
    fan = _sign_one(outpoint[0], outpoint[1], coin.value_sats, [(per_output, SPK)] * count)
    tx, _fee = node.accept_transaction(fan)
    node.generate(1, SPK)
    return [_sign_one(tx.txid, i, per_output, [(per_output - FEE_SATS, SPK)]) for i in range(count)]


def bench_node(count: int, per_block: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, RegtestNode(Path(tmp) / "node") as node:
        spends = prepare(node, count)
        start = time.perf_counter()
        for offset in range(0, count, per_block):
            for raw in spends[offset:offset + per_block]:
                node.accept_transaction(raw)
            node.generate(1, SPK)
        elapsed = time.perf_counter() - start
        assert not node.mempool_entries()
        return count / elapsed, elapsed


def bench_kernel_baseline(blocks: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        context = pbk.make_context(pbk.ChainType.REGTEST)
        options = pbk.ChainstateManagerOptions(context, tmp, tmp + "/blocks")
        manager = pbk.ChainstateManager(options)
        chain = manager.get_active_chain()
        prev = bytes(chain.block_tree_entries[0].block_hash)
        raws = []
        for height in range(1, blocks + 1):
            raw = build_block(prev, height, 1_296_688_602 + height, subsidy_sats(height), SPK, [])
            raws.append(raw)
            prev = sha256d(raw[:80])
        start = time.perf_counter()
        for raw in raws:
            manager.process_block(pbk.Block(raw))
        elapsed = time.perf_counter() - start
        assert blocks == manager.get_active_chain().height
        manager.__exit__(None, None, None)
        return blocks / elapsed


def _rate(connection: http.client.HTTPConnection, auth: str, method: str, params: list[object], seconds: float) -> float:
    body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}).encode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        connection.request("POST", "/", body, headers)
        reply = connection.getresponse().read()
        calls += 1
    assert b'"error": null' in reply
    return calls / (time.perf_counter() - start)


def bench_rpc(seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, RegtestNode(Path(tmp) / "node") as node:
        spends = prepare(node, 50)
        for raw in spends:
            node.accept_transaction(raw)
        [block_hash] = node.generate(1, SPK)
        node.generate(1, SPK)
        server = RpcServer(RpcDispatcher(node), port=0, rpcuser="bench", rpcpassword="bench").start()
        try:
            auth = "Basic " + base64.b64encode(b"bench:bench").decode()
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            pings, getblocks = [], []
            for _ in range(WINDOWS):  # alternate short windows: a shared machine's load hits both alike
                pings.append(_rate(connection, auth, "ping", [], seconds / WINDOWS))
                getblocks.append(_rate(connection, auth, "getblock", [block_hash[::-1].hex(), 1], seconds / WINDOWS))
            connection.close()
            return statistics.median(getblocks), statistics.median(pings)
        finally:
            server.close()


def main() -> int:
    configure_logging("WARNING")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=2000)
    parser.add_argument("--per-block", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3.0, help="RPC measuring time per method")
    args = parser.parse_args()
    kernel_blocks = bench_kernel_baseline(1000)
    tx_rate, elapsed = bench_node(args.txs, args.per_block)
    getblock, ping = bench_rpc(args.seconds)
    print(f"baseline: raw pbk process_block of empty blocks: {kernel_blocks:,.0f} blocks/s")
    print(f"embedded node: {args.txs} P2WPKH spends accepted and mined in blocks of {args.per_block}: "
          f"{tx_rate:,.0f} tx/s ({elapsed:.2f} s)")
    print(f"baseline: RPC ping over HTTP keep-alive: {ping:,.0f} calls/s")
    print(f"RPC getblock (verbosity 1, 51 txs) over HTTP keep-alive: {getblock:,.0f} calls/s")
    code = verdict([(TARGET_TX_PER_S, tx_rate), (TARGET_RPC_PER_S, getblock)])
    print(f"regtest_tx_per_s={tx_rate:.0f} rpc_calls_per_s={getblock:.0f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
