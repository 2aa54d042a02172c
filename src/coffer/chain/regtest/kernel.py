"""A thin wrapper over libbitcoinkernel (py-bitcoinkernel, module `pbk`) for one chainstate.

The kernel's verdict decides: `process` reports what the kernel said (block_checked state, whether
the block is now in the block index, whether the tip moved) and the kernel's own log line with the
reject reason. Nothing here judges a block itself. The package is experimental: it stays behind
this module.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pbk

from coffer.chain.regtest.index import Coin

__all__ = ["Kernel", "KernelEvent", "ProcessResult", "kernel_version", "set_kernel_mock_time", "KERNEL_LOG_LINES_MAX"]

KERNEL_LOG_LINES_MAX = 200
_CHECKED = re.compile(r"BlockChecked: block hash=(?P<hash>[0-9a-f]{64}) state=(?P<state>[^\n]+)")
_FAILED = re.compile(r"(?:ConnectBlock|AcceptBlock|CheckBlock|ContextualCheckBlock|ProcessNewBlock)\S*:?\s*"
                     r"(?:(?P<hash>[0-9a-f]{64}) )?failed,? (?P<reason>[^\n]+)")


class _LogCapture:
    """libbitcoinkernel's log is process-wide: one connection, a bounded ring of recent lines."""

    def __init__(self) -> None:
        self.lines: deque[tuple[int, str]] = deque(maxlen=KERNEL_LOG_LINES_MAX)
        self.count = 0
        self.lock = threading.Lock()
        self.connection: pbk.LoggingConnection | None = None

    def start(self) -> None:
        with self.lock:
            if self.connection is None:
                self.connection = pbk.LoggingConnection(self._on_line)
                pbk.enable_log_category(pbk.LogCategory.VALIDATION)

    def _on_line(self, line: str) -> None:
        self.count += 1
        self.lines.append((self.count, line))

    def since(self, mark: int) -> list[str]:
        return [line for number, line in list(self.lines) if number > mark]


_LOG = _LogCapture()


def set_kernel_mock_time(seconds: int) -> None:
    """Core's SetMockTime inside libbitcoinkernel (process-wide), so the kernel's own clock checks
    (a block more than two hours in the future is time-too-new) follow `setmocktime` as in Core."""
    import ctypes

    from pbk.capi.library import BITCOINKERNEL_LIB

    setter = BITCOINKERNEL_LIB._Z11SetMockTimel  # void SetMockTime(int64_t), exported by the library
    setter.argtypes = [ctypes.c_int64]
    setter.restype = None
    setter(ctypes.c_int64(seconds))


def kernel_version() -> str:
    from importlib.metadata import version

    return f"py-bitcoinkernel {version('py-bitcoinkernel')}"


@dataclass(slots=True)
class KernelEvent:
    kind: str  # "connected" | "disconnected"
    block_hash: bytes
    height: int


@dataclass(slots=True)
class ProcessResult:
    accepted: bool  # the kernel holds the block in its index and did not find it invalid
    invalid: bool
    reason: str | None
    events: list[KernelEvent] = field(default_factory=list)


class Kernel:
    """One ChainstateManager on a directory, with validation callbacks recorded per call."""

    def __init__(self, directory: Path) -> None:
        _LOG.start()
        self.directory = directory
        self._events: list[KernelEvent] = []
        self._checked: dict[bytes, pbk.ValidationMode] = {}
        self._callbacks = pbk.ValidationInterfaceCallbacks(
            block_checked=self._on_checked, block_connected=self._on_connected,
            block_disconnected=self._on_disconnected)
        self._context = pbk.make_context(pbk.ChainType.REGTEST, validation_callbacks=self._callbacks)
        directory.mkdir(parents=True, exist_ok=True)
        options = pbk.ChainstateManagerOptions(self._context, str(directory), str(directory / "blocks"))
        # No script-check threads: scripts are then checked inside ConnectBlock's loop, before the
        # coinbase amount, which the mempool's script-error probe (node._probe_script_error) relies on.
        options.set_worker_threads_num(0)
        self._cm: pbk.ChainstateManager | None = pbk.ChainstateManager(options)

    def _on_checked(self, _user: object, block: pbk.Block, state: pbk.BlockValidationState) -> None:
        self._checked[bytes(block.block_hash)] = state.validation_mode

    def _on_connected(self, _user: object, block: pbk.Block, entry: pbk.BlockTreeEntry) -> None:
        # The block itself is not serialised here (slow); the node reads it from its own store.
        self._events.append(KernelEvent("connected", bytes(entry.block_hash), entry.height))

    def _on_disconnected(self, _user: object, block: pbk.Block, entry: pbk.BlockTreeEntry) -> None:
        self._events.append(KernelEvent("disconnected", bytes(entry.block_hash), entry.height))

    @property
    def cm(self) -> pbk.ChainstateManager:
        if self._cm is None:
            raise RuntimeError("kernel closed")
        return self._cm

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None

    def tip(self) -> tuple[int, bytes]:
        chain = self.cm.get_active_chain()
        height = chain.height
        return height, bytes(chain.block_tree_entries[height].block_hash)

    def active_hash(self, height: int) -> bytes:
        return bytes(self.cm.get_active_chain().block_tree_entries[height].block_hash)

    def read_block(self, block_hash: bytes) -> bytes:
        cm = self.cm
        return bytes(cm.blocks[cm.block_tree_entries[pbk.BlockHash(block_hash)]])

    def knows(self, block_hash: bytes) -> bool:
        return pbk.BlockHash(block_hash) in self.cm.block_tree_entries

    def process(self, raw: bytes, block_hash: bytes) -> ProcessResult:
        """Hand a block to the kernel and report its verdict; never raises for an invalid block."""
        self._events = []
        self._checked = {}
        mark = _LOG.count
        try:
            block = pbk.Block(raw)
        except (RuntimeError, ValueError):
            return ProcessResult(False, True, "block decode failed")
        try:
            self.cm.process_block(block)
            raised = False
        except pbk.ProcessBlockException:
            raised = True
        mode = self._checked.get(block_hash)
        invalid = raised or mode == pbk.ValidationMode.INVALID
        known = self.knows(block_hash)
        reason = _reason(block_hash, _LOG.since(mark)) if invalid else None
        events, self._events = self._events, []
        return ProcessResult(known and not invalid, invalid, reason, events)

    def other_invalid(self) -> list[bytes]:
        """Hashes the kernel found invalid in the last call other than the block submitted."""
        return [h for h, mode in self._checked.items() if mode == pbk.ValidationMode.INVALID]

    def spent_coins(self, block_hash: bytes) -> list[list[Coin]]:
        """Undo data of a block: the coins each non-coinbase transaction spent."""
        entry = self.cm.block_tree_entries[pbk.BlockHash(block_hash)]
        undo = self.cm.block_spent_outputs[entry]
        result = []
        for tx_spent in undo.transactions:
            coins = []
            for coin in tx_spent.coins:
                output = coin.output
                coins.append(Coin(output.amount, bytes(output.script_pubkey), coin.confirmation_height,
                                  coin.is_coinbase))
            result.append(coins)
        return result


def _state_reason(state: str) -> str:
    """Core's reject reason from a logged state "reason, debug" or "reason (detail, maybe nested)"."""
    token = re.match(r"[a-z0-9\-]+", state)
    if token is None:
        return state.strip() or "invalid"
    end = token.end()
    if state[end:end + 2] == " (":
        depth = 0
        for position in range(end + 1, len(state)):
            depth += {"(": 1, ")": -1}.get(state[position], 0)
            if depth == 0:
                return state[:position + 1]
    return state[:end]


def _reason(block_hash: bytes, lines: list[str]) -> str:
    display = block_hash[::-1].hex()
    fallback = None
    for line in lines:
        checked = _CHECKED.search(line)
        if checked is not None and checked.group("hash") == display:
            return _state_reason(checked.group("state"))
        match = _FAILED.search(line)
        if match is None:
            continue
        if match.group("hash") in (None, display):
            fallback = fallback or _state_reason(match.group("reason"))
    return fallback or "invalid"


def verify_input(spent_script: bytes, amount_sats: int, tx: pbk.Transaction,
                 precomputed: pbk.script.PrecomputedTransactionData, index: int) -> bool:
    """libbitcoinkernel's script interpreter with every consensus flag; False when the script fails."""
    try:
        return bool(pbk.ScriptPubkey(spent_script).verify(amount_sats, tx, precomputed, index,
                                                          pbk.ScriptVerificationFlags.ALL))
    except pbk.ScriptVerifyException:
        return False
