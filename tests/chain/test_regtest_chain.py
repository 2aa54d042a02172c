"""Blocks, reorgs, invalidation, persistence and mining of the embedded node; the kernel decides."""

from __future__ import annotations

import threading
from pathlib import Path

from coffer.chain import BlockConnected, BlockDisconnected, BlockWatcher
from coffer.chain.regtest import RegtestChain, RegtestNode, subsidy_sats
from coffer.chain.regtest.wire import build_block, parse_tx, sha256d
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import FEE_SATS, flip_signature_byte, key, p2wpkh_script, spend_p2wpkh

RECEIVER_SCRIPT = p2wpkh_script(key(91))


def test_block_paying_too_much_is_rejected_by_the_kernel(node: RegtestNode) -> None:
    """A coinbase claiming more than subsidy + fees is refused by libbitcoinkernel (bad-cb-amount)."""
    tip = node.best_hash
    height = node.height + 1
    raw = build_block(tip, height, node.median_time_at(node.height) + 1, subsidy_sats(height) + 1, MINER_SCRIPT, [])
    assert "bad-cb-amount" == node.submit_block(raw)
    assert tip == node.best_hash


def test_block_with_bad_signature_is_rejected_by_the_kernel(node: RegtestNode) -> None:
    """A block carrying a transaction with a corrupted signature (bypassing the mempool) is refused."""
    coin = mature_coins(node)[0]
    raw_tx = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)])
    bad = parse_tx(flip_signature_byte(raw_tx, parse_tx(raw_tx).inputs[0].witness[0]))
    tip = node.best_hash
    block = node.build_block(MINER_SCRIPT, [bad], fees_sats=FEE_SATS)
    reason = node.submit_block(block)
    assert reason is not None and "script-verify-flag-failed" in reason
    assert tip == node.best_hash
    assert not node.is_active(sha256d(block[:80]))


def test_block_with_double_spend_is_rejected_by_the_kernel(node: RegtestNode) -> None:
    """Two transactions in one block spending the same coin: the kernel refuses the block."""
    coin = mature_coins(node)[0]
    one = parse_tx(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]))
    two = parse_tx(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, RECEIVER_SCRIPT)]))
    tip = node.best_hash
    assert "bad-txns-inputs-missingorspent" == node.submit_block(
        node.build_block(MINER_SCRIPT, [one, two], fees_sats=2 * FEE_SATS))
    assert tip == node.best_hash


def test_three_block_reorg_removes_confirmations_and_index_follows(node: RegtestNode) -> None:
    """A longer fork replacing the 3 blocks that confirmed a payment unconfirms it; the index follows."""
    chain = RegtestChain(node)
    watcher = BlockWatcher(chain)
    fork_point = node.best_hash
    coin = mature_coins(node)[0]
    tx, _fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS,
                                                                        RECEIVER_SCRIPT)]))
    node.generate(3, MINER_SCRIPT)
    assert 3 == chain.confirmations(tx.txid_hex)
    assert 1 == len(chain.unspent([RECEIVER_SCRIPT]))
    old_blocks = [node.active_hash(node.height - i) for i in (2, 1, 0)]
    watcher.poll()
    parent = fork_point
    for _ in range(4):
        raw = node.build_block(p2wpkh_script(key(92)), [], parent=parent)
        node.submit_block(raw)
        parent = sha256d(raw[:80])
    assert parent == node.best_hash
    assert 0 == chain.confirmations(tx.txid_hex)
    assert tx.txid in node.mempool_entries()
    assert [] == chain.unspent([RECEIVER_SCRIPT])
    assert any(op == (coin.txid, coin.vout) for op, _c in node.unspent([MINER_SCRIPT]))
    events = watcher.poll()
    assert [BlockDisconnected(node.height - 1 - i, old_blocks[2 - i][::-1].hex()) for i in range(3)] == events[:3]
    assert [BlockConnected(h, node.active_hash(h)[::-1].hex()) for h in range(node.height - 3, node.height + 1)] \
        == events[3:]
    node.generate(1, MINER_SCRIPT)
    assert 1 == chain.confirmations(tx.txid_hex)


def test_invalidate_and_reconsider_block(node: RegtestNode) -> None:
    """invalidateblock rolls the tip back and returns transactions to the mempool; reconsiderblock restores."""
    coin = mature_coins(node)[0]
    tx, _fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS,
                                                                        RECEIVER_SCRIPT)]))
    node.generate(3, MINER_SCRIPT)
    tip, height = node.best_hash, node.height
    target = node.active_hash(height - 2)
    events: list[object] = []
    node.subscribe(events.append)
    node.invalidate_block(target)
    assert height - 3 == node.height
    assert tx.txid in node.mempool_entries()
    assert [] == node.unspent([RECEIVER_SCRIPT])
    assert 3 == sum(isinstance(e, BlockDisconnected) for e in events)
    node.reconsider_block(target)
    assert (tip, height) == (node.best_hash, node.height)
    assert tx.txid not in node.mempool_entries()
    assert 1 == len(node.unspent([RECEIVER_SCRIPT]))


def test_restart_keeps_tip_index_and_mempool(tmp_path: Path) -> None:
    """Closing and reopening the data directory gives the same tip, UTXO index, invalidation and mempool."""
    datadir = tmp_path / "chain"
    with RegtestNode(datadir) as first:
        first.generate(105, MINER_SCRIPT)
        coin = mature_coins(first)[0]
        first.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, RECEIVER_SCRIPT)]))
        first.generate(1, MINER_SCRIPT)
        first.generate(2, MINER_SCRIPT)
        first.invalidate_block(first.best_hash)
        second = mature_coins(first)[0]
        pending, _fee = first.accept_transaction(spend_p2wpkh(second, MINER_KEY, [(second.value_sats - FEE_SATS,
                                                                                    MINER_SCRIPT)]))
        state = (first.height, first.best_hash, sorted(first.unspent([MINER_SCRIPT, RECEIVER_SCRIPT])))
    with RegtestNode(datadir) as again:
        assert state == (again.height, again.best_hash, sorted(again.unspent([MINER_SCRIPT, RECEIVER_SCRIPT])))
        assert pending.txid in again.mempool_entries()
        assert 1 == len([h for h in again.known_blocks() if again.is_invalid(h)])


def test_subsidy_halves_every_150_blocks(tmp_path: Path) -> None:
    """The coinbase at height 150 pays 25 BTC, accepted by the kernel's regtest rules."""
    with RegtestNode(tmp_path / "halving") as fresh:
        fresh.generate(151, MINER_SCRIPT)
        values = {coin.height: coin.value_sats for _op, coin in fresh.unspent([MINER_SCRIPT])}
        assert (50 * 10**8, 25 * 10**8) == (values[149], values[150])


def test_frozen_clock_still_gives_increasing_median_time(tmp_path: Path) -> None:
    """With the clock stopped, block times stay above the median of the last 11 and the kernel accepts them."""
    with RegtestNode(tmp_path / "frozen", clock=lambda: 1_700_000_000) as fresh:
        fresh.generate(40, MINER_SCRIPT)
        assert 40 == fresh.height
        times = [fresh.header(fresh.active_hash(h)).time for h in range(1, 41)]
        assert times == sorted(times)


def test_timer_mines_blocks(tmp_path: Path) -> None:
    """start_mining produces blocks on its own until stopped."""
    with RegtestNode(tmp_path / "timer") as fresh:
        grown = threading.Event()
        fresh.subscribe(lambda event: grown.set() if event.height >= 3 else None)
        fresh.start_mining(0.05, MINER_SCRIPT)
        assert grown.wait(20)
        fresh.stop_mining()
        height = fresh.height
        assert height >= 3
        assert height == fresh.height


def test_estimate_fee_uses_recent_blocks(node: RegtestNode) -> None:
    """With no transactions the estimate falls back; after fee-paying blocks it reflects their rates."""
    chain = RegtestChain(node)
    assert chain.estimate_fee(6).fallback
    for coin in mature_coins(node, 3):
        node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 5_000, MINER_SCRIPT)]))
    node.generate(1, MINER_SCRIPT)
    estimate = chain.estimate_fee(6)
    assert not estimate.fallback
    assert 5_000 * 1000 // 110 == estimate.sat_per_kvb


def test_restart_after_kill_keeps_tip(tmp_path: Path) -> None:
    """A node killed with SIGKILL (kernel state unflushed) reopens at the same tip from its block store."""
    import subprocess
    import sys

    datadir = tmp_path / "killed"
    code = (
        "import os, signal\n"
        "from coffer.chain.regtest import RegtestNode\n"
        f"node = RegtestNode({str(datadir)!r})\n"
        f"node.generate(120, bytes.fromhex({MINER_SCRIPT.hex()!r}))\n"
        "print(node.best_hash[::-1].hex(), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert -9 == child.returncode
    tip = child.stdout.strip().splitlines()[-1]
    with RegtestNode(datadir) as reopened:
        assert (120, tip) == (reopened.height, reopened.best_hash[::-1].hex())
        assert 120 == len(reopened.unspent([MINER_SCRIPT]))


def test_faucet_pays_exact_amounts(tmp_path: Path) -> None:
    """RegtestChain.fund pays an exact amount to any script and confirms it."""
    with RegtestNode(tmp_path / "faucet") as fresh:
        chain = RegtestChain(fresh)
        txid = chain.fund(RECEIVER_SCRIPT, 123_456)
        [utxo] = chain.unspent([RECEIVER_SCRIPT])
        assert (txid, 123_456, 1) == (utxo.txid, utxo.amount_sats, chain.confirmations(txid))
        second = chain.fund(RECEIVER_SCRIPT, 7_000, confirm=False)
        assert 0 == chain.tx_status(second).confirmations


def test_block_on_unknown_parent_or_old_time_is_rejected(node: RegtestNode) -> None:
    """The kernel's reasons come through: prev-blk-not-found, time-too-old."""
    orphan = build_block(b"\x11" * 32, 5, node.header(node.best_hash).time + 1, subsidy_sats(5), MINER_SCRIPT, [])
    assert "prev-blk-not-found" == node.submit_block(orphan)
    stale = build_block(node.best_hash, node.height + 1, 1_296_688_000, subsidy_sats(node.height + 1), MINER_SCRIPT, [])
    assert "time-too-old" == node.submit_block(stale)
    assert 110 == node.height
