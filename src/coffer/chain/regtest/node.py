"""The embedded Bitcoin regtest node: blocks built and mined in Python, judged by libbitcoinkernel.

What it keeps: the kernel's chainstate and block files (kernel-N/ in the data dir), its own block
store (blocks.sqlite) for reads and for rebuilding the kernel on invalidateblock/reconsiderblock,
a UTXO index by script and a transaction index kept from the kernel's connect/disconnect events
plus undo data, and a mempool with Core's standardness. It never accepts a block the kernel did not
connect or store, and never builds on a tip the kernel does not report.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from coffer.chain.errors import BlockNotFound, BlockRejected, BroadcastRejected, ChainError, DecodeError
from coffer.chain.interface import BlockConnected, BlockDisconnected, ChainEvent
from coffer.chain.regtest import policy
from coffer.chain.regtest.index import Coin, Outpoint, UtxoIndex
from coffer.chain.regtest.kernel import Kernel, KernelEvent, set_kernel_mock_time
from coffer.chain.regtest.mempool import ChainView, Mempool, MempoolEntry
from coffer.chain.regtest.store import BlockStore, StoredHeader
from coffer.chain.regtest.wire import Tx, build_block, parse_block, parse_tx, sha256d
from coffer.invariant import invariant

__all__ = ["RegtestNode", "FutureTip", "HeaderInfo", "subsidy_sats", "HALVING_INTERVAL", "EVENTS_KEPT_MAX"]

log = structlog.get_logger("coffer.chain.regtest")

HALVING_INTERVAL = 150
INITIAL_SUBSIDY_SATS = 50 * 100_000_000
EVENTS_KEPT_MAX = 10_000
BLOCK_WEIGHT_BUDGET = 3_996_000
BLOCK_SIGOPS_BUDGET = 80_000 - 400  # room for the coinbase, as Core's miner keeps
GENERATE_BLOCKS_MAX = 10_000
FEE_HISTORY_BLOCKS = 20
TXS_CACHE_BLOCKS_MAX = 256
MAX_FUTURE_BLOCK_TIME_S = 2 * 60 * 60
TIP_WAIT_SLICE_S = 1.0  # waits wake at least this often to notice close()
# Script nobody can spend: where blocks pay when no payout script is given (anyone may find it).
DEFAULT_PAYOUT_SCRIPT = bytes.fromhex("6a")


FUTURE_TIP_MESSAGE = (
    "The block database contains a block which appears to be from the future. This may be due to your "
    "computer's date and time being set incorrectly. Only rebuild the block database if you are sure that "
    "your computer's date and time are correct.\nPlease restart with -reindex or -reindex-chainstate to recover.")


class FutureTip(ChainError):
    """The stored tip is more than two hours ahead of the (mock) clock: Core refuses to start."""


def subsidy_sats(height: int) -> int:
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else INITIAL_SUBSIDY_SATS >> halvings


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    hash: bytes
    prev: bytes
    height: int
    header: bytes
    tx_count: int
    size: int
    confirmations: int  # -1 when not on the active chain, as Core reports
    next_hash: bytes | None
    median_time: int

    @property
    def version(self) -> int:
        return int.from_bytes(self.header[0:4], "little", signed=True)

    @property
    def merkle_root(self) -> bytes:
        return self.header[36:68]

    @property
    def time(self) -> int:
        return int.from_bytes(self.header[68:72], "little")

    @property
    def bits(self) -> int:
        return int.from_bytes(self.header[72:76], "little")

    @property
    def nonce(self) -> int:
        return int.from_bytes(self.header[76:80], "little")


class RegtestNode:
    """An embedded regtest node in a data directory. Thread-safe: one lock guards all state."""

    def __init__(self, datadir: Path | str, *, clock: Callable[[], float] = time.time,
                 policy_settings: policy.PolicySettings = policy.DEFAULT_POLICY, mock_time: int = 0,
                 persist_mempool: bool = True) -> None:
        self.datadir = Path(datadir)
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._mock_time = mock_time  # Core's setmocktime: 0 means the real clock
        self.mempool_sequence = 1  # Core's mempool sequence: grows by one per entry added or removed
        self.policy = policy_settings
        self._persist_mempool = persist_mempool
        self.lock = threading.RLock()
        self._tip_changed = threading.Condition(self.lock)
        self._store = BlockStore(self.datadir / "blocks.sqlite")
        generation = int(self._store.get_meta("kernel_generation") or "0")
        self._generation = generation
        self._headers: dict[bytes, StoredHeader] = {h.hash: h for h in self._store.headers()}
        self._kernel = self._open_kernel(generation)
        self._children: dict[bytes, list[bytes]] = {}
        for header in self._headers.values():
            self._children.setdefault(header.prev, []).append(header.hash)
        self._invalid = self._store.invalid()
        self._active: list[bytes] = []
        self._index = UtxoIndex()
        self._mempool = Mempool(self.policy)
        self._fee_history: deque[tuple[int, list[int]]] = deque(maxlen=FEE_HISTORY_BLOCKS)
        self._events: deque[tuple[int, ChainEvent]] = deque(maxlen=EVENTS_KEPT_MAX)
        self._event_seq = 0
        self._subscribers: list[Callable[[ChainEvent], None]] = []
        self._txs_cache: dict[bytes, list[Tx]] = {}
        self._miner: threading.Thread | None = None
        self._miner_stop = threading.Event()
        self._extra_nonce = int(self._clock() * 1000)
        self._closed = False
        with self.lock:
            self._store_genesis()
            self._replay_missing()
            self._sync_active()
            self._check_tip_time()
            self._rebuild_index()
            self._load_mempool()

    # ---- clock -----------------------------------------------------------------------------

    def now(self) -> int:
        """Seconds since the epoch: the mock time when one is set (Core's GetTime), else the clock."""
        return self._mock_time or int(self._clock())

    def set_mock_time(self, seconds: int) -> None:
        """Core's SetMockTime: block times and mempool entry times follow it; 0 returns to the clock."""
        if seconds < 0:
            raise ValueError("mock time cannot be negative")
        with self.lock:
            self._mock_time = seconds
            set_kernel_mock_time(seconds)

    # ---- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self.stop_mining()
        with self.lock:
            if self._closed:
                return
            self._closed = True
            self._tip_changed.notify_all()
            self._save_mempool()
            self._kernel.close()
            self._store.close()

    def __enter__(self) -> RegtestNode:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _open_kernel(self, generation: int) -> Kernel:
        """The kernel on this node's clock (as bitcoind starts with -mocktime); the kernel itself refuses
        a chainstate whose tip is too far ahead of that clock, which is Core's init error."""
        set_kernel_mock_time(self._mock_time)
        try:
            return Kernel(self.datadir / f"kernel-{generation}")
        except RuntimeError:
            newest = max((int.from_bytes(h.header[68:72], "little") for h in self._headers.values()), default=0)
            if newest > self.now() + MAX_FUTURE_BLOCK_TIME_S:
                self._store.close()
                raise FutureTip(FUTURE_TIP_MESSAGE) from None
            raise

    def _check_tip_time(self) -> None:
        tip = self._headers.get(self._active[-1])
        if tip is not None and tip.height > 0 and \
                int.from_bytes(tip.header[68:72], "little") > self.now() + MAX_FUTURE_BLOCK_TIME_S:
            self._kernel.close()
            self._store.close()
            raise FutureTip(FUTURE_TIP_MESSAGE)

    def _store_genesis(self) -> None:
        genesis_hash = self._kernel.active_hash(0)
        if genesis_hash in self._headers:
            return
        self._remember_block(genesis_hash, self._kernel.read_block(genesis_hash), 0, 1)

    def _replay_missing(self) -> None:
        """After a crash the kernel may have lost blocks it had not flushed; the store has them."""
        excluded = self._excluded()
        replayed = 0
        for block_hash in list(self._headers):  # arrival order: parents before children
            if block_hash in excluded or self._kernel.knows(block_hash):
                continue
            raw = self._store.raw(block_hash)
            if raw is None:
                continue
            result = self._kernel.process(raw, block_hash)
            replayed += 1
            if result.invalid:
                self._forget_block(block_hash)
        if replayed:
            log.warning("kernel_replayed_blocks", blocks=replayed)

    def _excluded(self) -> set[bytes]:
        excluded: set[bytes] = set()
        for bad in self._invalid:
            excluded |= {bad} | self._descendants(bad)
        return excluded

    def _remember_block(self, block_hash: bytes, raw: bytes, height: int, tx_count: int) -> None:
        prev = raw[4:36]
        self._store.add(block_hash, prev, height, tx_count, raw)
        self._headers[block_hash] = StoredHeader(block_hash, prev, height, raw[:80], tx_count, len(raw))
        self._children.setdefault(prev, []).append(block_hash)

    def _save_mempool(self) -> None:
        if not self._persist_mempool:
            return
        path = self.datadir / "mempool.txt"
        lines = [entry.tx.raw.hex() for entry in self._mempool.entries.values()]
        path.write_text("\n".join(lines) + ("\n" if lines else ""))

    def _load_mempool(self) -> None:
        path = self.datadir / "mempool.txt"
        if not self._persist_mempool or not path.exists():
            return
        for line in path.read_text().split():
            with contextlib.suppress(BroadcastRejected, DecodeError):
                self._accept(parse_tx(bytes.fromhex(line)), None, test_only=False)

    # ---- chain reads -----------------------------------------------------------------------

    @property
    def height(self) -> int:
        with self.lock:
            return len(self._active) - 1

    @property
    def best_hash(self) -> bytes:
        with self.lock:
            return self._active[-1]

    def active_hash(self, height: int) -> bytes:
        with self.lock:
            if not 0 <= height < len(self._active):
                raise BlockNotFound(f"no block at height {height}")
            return self._active[height]

    def is_active(self, block_hash: bytes) -> bool:
        with self.lock:
            header = self._headers.get(block_hash)
            return header is not None and header.height < len(self._active) and \
                self._active[header.height] == block_hash

    def header(self, block_hash: bytes) -> HeaderInfo:
        with self.lock:
            stored = self._headers.get(block_hash)
            if stored is None:
                raise BlockNotFound("Block not found")
            active = self.is_active(block_hash)
            confirmations = len(self._active) - stored.height if active else -1
            next_hash = None
            if active and stored.height + 1 < len(self._active):
                next_hash = self._active[stored.height + 1]
            return HeaderInfo(stored.hash, stored.prev, stored.height, stored.header, stored.tx_count,
                              stored.size, confirmations, next_hash, self._median_time(block_hash))

    def chain_tips(self) -> list[tuple[bytes, int, int, str]]:
        """Core's getchaintips: (hash, height, branch length, status) of every block without children."""
        with self.lock:
            excluded = self._excluded()
            tips = []
            for block_hash, stored in self._headers.items():
                if any(child in self._headers for child in self._children.get(block_hash, [])):
                    continue
                cursor = stored
                while not self.is_active(cursor.hash):
                    cursor = self._headers[cursor.prev]
                branch = stored.height - cursor.height
                if branch == 0:
                    status = "active"
                elif block_hash in excluded:
                    status = "invalid"
                else:
                    status = "valid-fork" if self.spent_coins(block_hash) is not None else "valid-headers"
                tips.append((block_hash, stored.height, branch, status))
            return sorted(tips, key=lambda tip: (tip[2] != 0, -tip[1]))

    def known_blocks(self) -> list[bytes]:
        with self.lock:
            return list(self._headers)

    def is_invalid(self, block_hash: bytes) -> bool:
        with self.lock:
            return block_hash in self._invalid

    def _median_time(self, block_hash: bytes) -> int:
        times = []
        cursor: bytes | None = block_hash
        for _ in range(11):
            if cursor is None or cursor not in self._headers:
                break
            stored = self._headers[cursor]
            times.append(int.from_bytes(stored.header[68:72], "little"))
            cursor = stored.prev if stored.height > 0 else None
        times.sort()
        return times[len(times) // 2]

    def median_time_at(self, height: int) -> int:
        with self.lock:
            return self._median_time(self._active[min(height, len(self._active) - 1)])

    def raw_block(self, block_hash: bytes) -> bytes:
        with self.lock:
            raw = self._store.raw(block_hash)
        if raw is None:
            raise BlockNotFound("Block not found")
        return raw

    def block_txs(self, block_hash: bytes) -> list[Tx]:
        with self.lock:
            cached = self._txs_cache.get(block_hash)
        if cached is not None:
            return cached
        txs = parse_block(self.raw_block(block_hash))[1]
        with self.lock:
            self._cache_txs(block_hash, txs)
        return txs

    def _cache_txs(self, block_hash: bytes, txs: list[Tx]) -> None:
        if len(self._txs_cache) >= TXS_CACHE_BLOCKS_MAX:
            self._txs_cache.pop(next(iter(self._txs_cache)))
        self._txs_cache[block_hash] = txs

    def find_transaction(self, txid: bytes, block_hash: bytes | None = None) -> tuple[Tx, bytes | None]:
        """A transaction from the mempool or the active chain (or a named block); BlockNotFound/KeyError."""
        with self.lock:
            if block_hash is None:
                entry = self._mempool.entries.get(txid)
                if entry is not None:
                    return entry.tx, None
                block_hash = self._index.tx_block.get(txid)
                if block_hash is None:
                    raise KeyError(txid)
        for tx in self.block_txs(block_hash):
            if tx.txid == txid:
                return tx, block_hash
        raise KeyError(txid)

    def spent_coins(self, block_hash: bytes) -> list[list[Coin]] | None:
        """The kernel's undo data for a block that was connected: coins spent per non-coinbase tx."""
        with self.lock:
            stored = self._headers.get(block_hash)
            if stored is None or stored.height == 0:
                return None
            try:
                return self._kernel.spent_coins(block_hash)
            except (RuntimeError, KeyError):
                return None

    def tx_block(self, txid: bytes) -> bytes | None:
        with self.lock:
            return self._index.tx_block.get(txid)

    def coin(self, outpoint: Outpoint, *, include_mempool: bool = False) -> Coin | None:
        """An unspent output: confirmed; with include_mempool also mempool outputs, minus mempool spends."""
        with self.lock:
            if include_mempool:
                if outpoint in self._mempool.spent_by:
                    return None
                coin = self._index.coins.get(outpoint)
                return coin if coin is not None else self._mempool.coin(outpoint)
            return self._index.coins.get(outpoint)

    def unspent(self, script_pubkeys: Iterable[bytes]) -> list[tuple[Outpoint, Coin]]:
        with self.lock:
            return self._index.unspent(script_pubkeys)

    def disk_size(self) -> int:
        """Bytes of the node's files on disk (Core's disk_size of its chainstate, roughly)."""
        return sum(path.stat().st_size for path in self.datadir.rglob("*") if path.is_file())

    def utxo_snapshot(self) -> list[tuple[Outpoint, Coin]]:
        with self.lock:
            return list(self._index.coins.items())

    def utxo_count(self) -> int:
        with self.lock:
            return len(self._index.coins)

    # ---- mempool ---------------------------------------------------------------------------

    def mempool_entries(self) -> dict[bytes, MempoolEntry]:
        with self.lock:
            return dict(self._mempool.entries)

    def mempool_relatives(self, txid: bytes) -> tuple[list[bytes], list[bytes]]:
        with self.lock:
            return self._mempool.ancestors(txid), self._mempool.descendants(txid)

    def _view(self) -> ChainView:
        tip_mtp = self._median_time(self._active[-1])
        return ChainView(self._index.coins.get, len(self._active), tip_mtp,
                         lambda h: self._median_time(self._active[min(h, len(self._active) - 1)]),
                         self._probe_script_error)

    def _probe_script_error(self, tx: Tx, fee_sats: int) -> str | None:
        """Core's exact script error text, from the kernel: a probe block on the tip carrying the
        transaction (and its mempool ancestors) whose coinbase overpays by one satoshi. The kernel
        checks scripts before the coinbase amount, so it names the script failure, and the probe
        can never connect (it is invalid either way)."""
        entries = self._mempool.entries
        needed: set[bytes] = set()
        for parent in {txin.prev_txid for txin in tx.inputs if txin.prev_txid in entries}:
            needed |= {parent, *self._mempool.ancestors(parent)}
        txs = [entry.tx for txid, entry in entries.items() if txid in needed] + [tx]
        fees = fee_sats + sum(entries[txid].fee_sats for txid in needed)
        tip, height = self._active[-1], len(self._active)
        self._extra_nonce += 1
        raw = build_block(tip, height, self._next_time(tip), subsidy_sats(height) + fees + 1, DEFAULT_PAYOUT_SCRIPT,
                          txs, extra_nonce=self._extra_nonce)
        result = self._kernel.process(raw, sha256d(raw[:80]))
        invariant(not result.accepted and not result.events, "a script-probe block was connected")
        reason = result.reason or ""
        for prefix in ("block-script-verify-flag-failed (", "mandatory-script-verify-flag-failed ("):
            if reason.startswith(prefix):
                return "mempool-script-verify-flag-failed (" + reason[len(prefix):]
        return None

    def _accept(self, tx: Tx, max_fee_rate_sat_per_kvb: int | None, *, test_only: bool,
                bypass_limits: bool = False) -> int:
        admission = self._mempool.check(tx, self._view(), max_fee_rate_sat_per_kvb, bypass_limits=bypass_limits)
        if not test_only:
            self._mempool.add(tx, admission, self.now(), len(self._active) - 1)
            self.mempool_sequence += 1 + len(admission.replaces)
            log.debug("mempool_accept", txid=tx.txid_hex, fee_sats=admission.fee_sats, vsize=tx.vsize,
                      replaced=[t[::-1].hex() for t in admission.replaces])
        return admission.fee_sats

    def accept_transaction(self, raw_tx: bytes, *, max_fee_rate_sat_per_kvb: int | None = None,
                           test_only: bool = False) -> tuple[Tx, int]:
        """Mempool acceptance; returns (tx, fee). Raises BroadcastRejected with Core's reason."""
        try:
            tx = parse_tx(raw_tx)
        except DecodeError as exc:
            raise BroadcastRejected("TX decode failed", code=-22, details=str(exc)) from exc
        with self.lock:
            existing = self._mempool.entries.get(tx.txid)
            if existing is not None and not test_only and existing.tx.wtxid == tx.wtxid:
                return tx, existing.fee_sats  # Core answers the txid again for a known transaction
            return tx, self._accept(tx, max_fee_rate_sat_per_kvb, test_only=test_only)

    def test_accept_package(self, txs: list[Tx], *, max_fee_rate_sat_per_kvb: int | None = None
                            ) -> list[int | BroadcastRejected]:
        """testmempoolaccept of several transactions: each is judged with the earlier ones of the list
        in a scratch copy of the mempool (so a child may follow its parent); nothing is kept."""
        results: list[int | BroadcastRejected] = []
        with self.lock:
            real, self._mempool = self._mempool, self._mempool.copy()
            try:
                for tx in txs:
                    try:
                        results.append(self._accept(tx, max_fee_rate_sat_per_kvb, test_only=False))
                    except BroadcastRejected as exc:
                        results.append(exc)
            finally:
                self._mempool = real
        return results

    # ---- blocks ----------------------------------------------------------------------------

    def _next_time(self, parent: bytes) -> int:
        now = self.now()
        return max(now, self._median_time(parent) + 1)

    def _block_template(self) -> tuple[list[Tx], int]:
        txs, fees, weight, sigops = [], 0, 0, 0
        for entry in self._mempool.entries.values():
            if (weight + entry.tx.weight > BLOCK_WEIGHT_BUDGET
                    or sigops + entry.sigop_cost > BLOCK_SIGOPS_BUDGET):
                break  # insertion order is topological: stopping (not skipping) keeps parents first
            txs.append(entry.tx)
            fees += entry.fee_sats
            weight += entry.tx.weight
            sigops += entry.sigop_cost
        return txs, fees

    def build_block(self, payout_script: bytes, txs: list[Tx] | None = None, *, parent: bytes | None = None,
                    fees_sats: int | None = None, block_time: int | None = None) -> bytes:
        """Build and mine (but do not submit) a block; `txs=None` takes the mempool."""
        with self.lock:
            parent = self._active[-1] if parent is None else parent
            if parent not in self._headers:
                raise BlockNotFound("Block not found")
            if txs is None:
                txs, fees = self._block_template()
            else:
                fees = self._fees_of(txs) if fees_sats is None else fees_sats
            height = self._headers[parent].height + 1
            when = self._next_time(parent) if block_time is None else block_time
            self._extra_nonce += 1
            extra_nonce = self._extra_nonce
        return build_block(parent, height, when, subsidy_sats(height) + fees, payout_script, txs,
                           extra_nonce=extra_nonce)

    def _fees_of(self, txs: list[Tx]) -> int:
        known: dict[Outpoint, int] = {}
        fees = 0
        for tx in txs:
            value_in = 0
            for txin in tx.inputs:
                outpoint = (txin.prev_txid, txin.prev_vout)
                coin = self._index.coins.get(outpoint) or self._mempool.coin(outpoint)
                value_in += known.get(outpoint, coin.value_sats if coin else 0)
            for vout, out in enumerate(tx.outputs):
                known[(tx.txid, vout)] = out.value_sats
            fees += max(value_in - sum(o.value_sats for o in tx.outputs), 0)
        return fees

    def generate(self, count: int, payout_script: bytes = DEFAULT_PAYOUT_SCRIPT) -> list[bytes]:
        """Mine `count` blocks on the tip from the mempool; returns their hashes."""
        if not 0 <= count <= GENERATE_BLOCKS_MAX:
            raise ValueError(f"count must be 0..{GENERATE_BLOCKS_MAX}")
        hashes = []
        for _ in range(count):
            with self.lock:
                raw = self.build_block(payout_script)
                reason = self.submit_block(raw)
                if reason is not None:
                    # The mempool admitted something the kernel refused: that is our bug, not input.
                    raise BlockRejected(f"kernel refused a block built from the mempool: {reason}")
                hashes.append(sha256d(raw[:80]))
        return hashes

    def generate_block(self, payout_script: bytes, txs: list[Tx], *, submit: bool = True) -> bytes:
        """Mine one block with exactly `txs` (Core's generateblock); returns the raw block."""
        with self.lock:
            raw = self.build_block(payout_script, txs)
            if submit:
                reason = self.submit_block(raw)
                if reason is not None:
                    raise BlockRejected(reason)
            return raw

    def submit_block(self, raw: bytes) -> str | None:
        """Core's submitblock: None when accepted, else "duplicate", "inconclusive" or a reason."""
        if len(raw) < 80:
            raise DecodeError("Block decode failed")
        block_hash = sha256d(raw[:80])
        with self.lock:
            if block_hash in self._headers:
                return "duplicate"
            if block_hash in self._invalid or raw[4:36] in self._invalid:
                return "duplicate-invalid"
            try:
                txs = parse_block(raw)[1]
            except DecodeError as exc:
                raise DecodeError("Block decode failed") from exc
            result = self._kernel.process(raw, block_hash)
            for bad in self._kernel.other_invalid():
                if bad != block_hash and bad in self._headers:
                    self._forget_block(bad)
            if result.accepted:
                parent = self._headers.get(raw[4:36])
                height = parent.height + 1 if parent else 0
                self._remember_block(block_hash, raw, height, len(txs))
                self._cache_txs(block_hash, txs)
            self._apply(result.events)
            if result.invalid:
                log.info("block_rejected", block=block_hash[::-1].hex(), reason=result.reason)
                return result.reason or "invalid"
            if not result.accepted:
                return "rejected"
            return None if self.is_active(block_hash) else "inconclusive"

    def _forget_block(self, block_hash: bytes) -> None:
        stored = self._headers.pop(block_hash, None)
        if stored is not None:
            self._store.remove(block_hash)
            siblings = self._children.get(stored.prev, [])
            if block_hash in siblings:
                siblings.remove(block_hash)

    # ---- connect / disconnect --------------------------------------------------------------

    def wait_tip_changed(self, from_hash: bytes, timeout_s: float | None) -> tuple[bytes, int]:
        """Core's waitTipChanged: block until the tip is not `from_hash` (or the timeout, or close);
        returns the tip (hash, height) then."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._tip_changed:
            while self._active[-1] == from_hash and not self._closed:
                remaining = TIP_WAIT_SLICE_S if deadline is None else min(deadline - time.monotonic(), TIP_WAIT_SLICE_S)
                if remaining <= 0:
                    break
                self._tip_changed.wait(remaining)
            return self._active[-1], len(self._active) - 1

    def _sync_active(self) -> None:
        self._tip_changed.notify_all()
        height, tip_hash = self._kernel.tip()
        del self._active[height + 1:]
        while len(self._active) < height + 1:
            self._active.append(b"")
        cursor = height
        while cursor >= 0:
            block_hash = tip_hash if cursor == height else self._kernel.active_hash(cursor)
            if self._active[cursor] == block_hash:
                break
            self._active[cursor] = block_hash
            cursor -= 1

    def _apply(self, events: list[KernelEvent]) -> None:
        before = set(self._mempool.entries)
        try:
            self._apply_events(events)
        finally:
            self.mempool_sequence += len(before ^ set(self._mempool.entries))

    def _apply_events(self, events: list[KernelEvent]) -> None:
        if not events:
            self._sync_active()
            return
        returned: list[Tx] = []
        chain_events: list[ChainEvent] = []
        for event in events:
            txs = self._event_txs(event.block_hash)
            if event.kind == "disconnected":
                self._index.disconnect(txs, self._kernel.spent_coins(event.block_hash))
                returned.extend(tx for tx in txs if not tx.is_coinbase)
                chain_events.append(BlockDisconnected(event.height, event.block_hash[::-1].hex()))
            else:
                self._record_fees(event.height, txs)
                self._index.connect(event.block_hash, event.height, txs)
                self._mempool.remove_for_block(txs)
                chain_events.append(BlockConnected(event.height, event.block_hash[::-1].hex()))
        self._sync_active()
        if returned:
            self._resubmit(returned)
        self._publish(chain_events)

    def _event_txs(self, block_hash: bytes) -> list[Tx]:
        cached = self._txs_cache.get(block_hash)
        if cached is not None:
            return cached
        raw = self._store.raw(block_hash)
        if raw is None:
            raw = self._recover_block(block_hash)
        txs = parse_block(raw)[1]
        self._cache_txs(block_hash, txs)
        return txs

    def _record_fees(self, height: int, txs: list[Tx]) -> None:
        rates = []
        for tx in txs[1:]:
            value_in = 0
            for txin in tx.inputs:
                coin = self._index.coins.get((txin.prev_txid, txin.prev_vout))
                value_in += coin.value_sats if coin else 0
            fee = value_in - sum(out.value_sats for out in tx.outputs)
            rates.append(fee * 1000 // tx.vsize)
        self._fee_history.append((height, rates))

    def _resubmit(self, returned: list[Tx]) -> None:
        """After a reorg: the disconnected blocks' transactions first, then the old mempool, each
        past the fee floor and package limits as Core's MaybeUpdateMempoolForReorg does."""
        old = [entry.tx for entry in self._mempool.entries.values()]
        self._mempool = Mempool(self.policy)
        for tx in [*returned, *old]:
            with contextlib.suppress(BroadcastRejected):
                self._accept(tx, None, test_only=False, bypass_limits=True)

    def _publish(self, chain_events: list[ChainEvent]) -> None:
        for event in chain_events:
            self._event_seq += 1
            self._events.append((self._event_seq, event))
            log.debug("chain_event", kind=type(event).__name__, height=event.height, block=event.hash)
        for callback in list(self._subscribers):
            for event in chain_events:
                callback(event)

    def _rebuild_index(self) -> None:
        self._index = UtxoIndex()
        self._fee_history.clear()
        for height, block_hash in enumerate(self._active):
            raw = self._store.raw(block_hash)
            if raw is None:
                raw = self._recover_block(block_hash)
            txs = parse_block(raw)[1]
            if height > 0:
                self._record_fees(height, txs)
            self._index.connect(block_hash, height, txs)

    def _recover_block(self, block_hash: bytes) -> bytes:
        """A block the kernel holds but the store lost (a crash between the two writes)."""
        raw = self._kernel.read_block(block_hash)
        header = self._headers.get(raw[4:36])
        self._remember_block(block_hash, raw, header.height + 1 if header else 0, len(parse_block(raw)[1]))
        return raw

    # ---- events ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[ChainEvent], None]) -> None:
        """Call `callback` (under the node lock; keep it quick) for each connect/disconnect."""
        with self.lock:
            self._subscribers.append(callback)

    def events_since(self, sequence: int) -> tuple[list[ChainEvent], int]:
        """Events after `sequence` (0 for all kept) and the sequence to pass next time."""
        with self.lock:
            return [event for number, event in self._events if number > sequence], self._event_seq

    # ---- invalidate / reconsider -----------------------------------------------------------

    def invalidate_block(self, block_hash: bytes) -> None:
        with self.lock:
            if block_hash not in self._headers:
                raise BlockNotFound("Block not found")
            if self._headers[block_hash].height == 0:
                raise BlockRejected("cannot invalidate the genesis block")
            self._invalid.add(block_hash)
            self._store.set_invalid(block_hash, True)
            self._rebuild_kernel()

    def reconsider_block(self, block_hash: bytes) -> None:
        with self.lock:
            if block_hash not in self._headers:
                raise BlockNotFound("Block not found")
            cleared = {block_hash} | self._ancestors(block_hash) | self._descendants(block_hash)
            for cleared_hash in cleared & self._invalid:
                self._invalid.discard(cleared_hash)
                self._store.set_invalid(cleared_hash, False)
            self._rebuild_kernel()

    def _ancestors(self, block_hash: bytes) -> set[bytes]:
        found = set()
        cursor = self._headers[block_hash]
        while cursor.height > 0 and cursor.prev in self._headers:
            found.add(cursor.prev)
            cursor = self._headers[cursor.prev]
        return found

    def _descendants(self, block_hash: bytes) -> set[bytes]:
        found: set[bytes] = set()
        stack = [block_hash]
        while stack:
            for child in self._children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def _rebuild_kernel(self) -> None:
        """libbitcoinkernel has no invalidateblock: replay every block not marked invalid into a
        fresh chainstate and let the kernel choose the best chain among them."""
        excluded = self._excluded()
        new_generation = self._generation + 1
        new_dir = self.datadir / f"kernel-{new_generation}"
        shutil.rmtree(new_dir, ignore_errors=True)
        fresh = Kernel(new_dir)
        for block_hash in list(self._headers):  # arrival order: parents before children
            raw = None if block_hash in excluded or self._headers[block_hash].height == 0 else \
                self._store.raw(block_hash)
            if raw is not None:
                fresh.process(raw, block_hash)
        old_active = list(self._active)
        old_kernel, old_dir = self._kernel, self._kernel.directory
        self._kernel, self._generation = fresh, new_generation
        self._store.set_meta("kernel_generation", str(new_generation))
        old_kernel.close()
        shutil.rmtree(old_dir, ignore_errors=True)
        self._sync_active()
        self._after_rebuild(old_active)

    def _after_rebuild(self, old_active: list[bytes]) -> None:
        before = set(self._mempool.entries)
        try:
            self._replace_after_rebuild(old_active)
        finally:
            self.mempool_sequence += len(before ^ set(self._mempool.entries))

    def _replace_after_rebuild(self, old_active: list[bytes]) -> None:
        fork = 0
        while fork < min(len(old_active), len(self._active)) and old_active[fork] == self._active[fork]:
            fork += 1
        returned: list[Tx] = []
        events: list[ChainEvent] = []
        for height in range(len(old_active) - 1, fork - 1, -1):
            returned[:0] = [tx for tx in self.block_txs(old_active[height]) if not tx.is_coinbase]
            events.append(BlockDisconnected(height, old_active[height][::-1].hex()))
        events.extend(BlockConnected(h, self._active[h][::-1].hex()) for h in range(fork, len(self._active)))
        self._rebuild_index()
        old_mempool = [entry.tx for entry in self._mempool.entries.values()]
        self._mempool = Mempool(self.policy)
        confirmed = self._index.tx_block
        for tx in [*returned, *old_mempool]:
            if tx.txid not in confirmed:
                with contextlib.suppress(BroadcastRejected):
                    self._accept(tx, None, test_only=False, bypass_limits=True)
        self._publish(events)

    # ---- fees ------------------------------------------------------------------------------

    def estimate_fee_rate(self, target_blocks: int) -> int | None:
        """sat/kvB from the fee rates in recent blocks; None when there is no data (as Core says)."""
        with self.lock:
            rates = [rate for _height, block_rates in self._fee_history for rate in block_rates]
        if not rates:
            return None
        rates.sort()
        quantile = 0.5 if target_blocks >= 6 else (0.75 if target_blocks >= 2 else 0.9)
        chosen = rates[min(int(len(rates) * quantile), len(rates) - 1)]
        return max(chosen, self.policy.min_relay_fee_sat_per_kvb)

    # ---- mining timer ----------------------------------------------------------------------

    def start_mining(self, interval_s: float, payout_script: bytes = DEFAULT_PAYOUT_SCRIPT) -> None:
        """Mine one block every `interval_s` seconds in a background thread until stop_mining()."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.stop_mining()
        self._miner_stop = threading.Event()
        stop = self._miner_stop

        def run() -> None:
            while not stop.wait(interval_s):
                try:
                    self.generate(1, payout_script)
                except Exception:  # noqa: BLE001 - a timer must outlive one failed block
                    log.exception("timer_mining_failed")

        self._miner = threading.Thread(target=run, name="regtest-miner", daemon=True)
        self._miner.start()

    def stop_mining(self) -> None:
        if self._miner is not None:
            self._miner_stop.set()
            self._miner.join(timeout=10)
            self._miner = None
