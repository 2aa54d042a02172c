"""The embedded node's mempool: Core's acceptance checks in Core's order, with Core's reasons.

Consensus script checks use libbitcoinkernel's interpreter (ScriptPubkey.verify with every
consensus flag); standardness is `policy`. The mempool never holds a transaction whose inputs are
unknown, immature or already spent by another mempool transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pbk

from coffer.chain.errors import BroadcastRejected
from coffer.chain.regtest import policy
from coffer.chain.regtest.index import Coin, Outpoint
from coffer.chain.regtest.kernel import verify_input
from coffer.chain.regtest.wire import Tx

__all__ = ["Mempool", "MempoolEntry", "ChainView", "Admission", "COINBASE_MATURITY", "MEMPOOL_TXS_MAX",
           "REPLACEMENTS_MAX", "INCREMENTAL_RELAY_FEE_SAT_PER_KVB"]

COINBASE_MATURITY = 100
MEMPOOL_TXS_MAX = 50_000
MEMPOOL_HEIGHT = 0x7FFFFFFF
REPLACEMENTS_MAX = 100
INCREMENTAL_RELAY_FEE_SAT_PER_KVB = policy.INCREMENTAL_RELAY_FEE_SAT_PER_KVB
_SEQUENCE_FINAL = 0xFFFFFFFF
_SEQUENCE_RBF_MAX = 0xFFFFFFFD  # BIP125: an input with nSequence <= this signals replaceability
_LOCKTIME_THRESHOLD = 500_000_000
_SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass(frozen=True, slots=True)
class MempoolEntry:
    tx: Tx
    fee_sats: int
    time: int
    height: int  # chain height when it entered
    parents: frozenset[bytes]
    sigop_cost: int = 0

    @property
    def vsize(self) -> int:
        return self.tx.vsize


@dataclass(frozen=True, slots=True)
class Admission:
    """What acceptance found: the fee, the mempool parents, and the transactions it replaces (BIP125)."""

    fee_sats: int
    parents: frozenset[bytes]
    replaces: frozenset[bytes]
    sigop_cost: int


@dataclass(frozen=True, slots=True)
class ChainView:
    """What acceptance needs from the chain: coins, the next height, and median times past."""

    coin: Callable[[Outpoint], Coin | None]
    next_height: int
    median_time_past: int  # of the tip
    median_time_at: Callable[[int], int]  # median time past of the block at a height
    # Asks the kernel itself for Core's script error text of a failing transaction (tx, fee).
    script_error: Callable[[Tx, int], str | None] | None = None


def _script_error(spent_script: bytes) -> str:
    # libbitcoinkernel reports only pass/fail; Core's text for the usual failure of each type.
    if policy.script_type(spent_script) == "witness_v1_taproot":
        return "Invalid Schnorr signature"
    return "Script evaluated without error but finished with a false/empty top stack element"


def _btc(sats: int) -> str:
    return f"{sats // 100_000_000}.{sats % 100_000_000:08d}"


def _btc_kvb(sat_per_kvb: int) -> str:
    return f"{_btc(sat_per_kvb)} BTC/kvB"


def _high_s(signature: bytes) -> bool:
    if len(signature) < 9 or signature[0] != 0x30 or signature[2] != 0x02:
        return False
    r_len = signature[3]
    s_pos = 4 + r_len
    if s_pos + 2 > len(signature) or signature[s_pos] != 0x02:
        return False
    s_len = signature[s_pos + 1]
    s_value = int.from_bytes(signature[s_pos + 2:s_pos + 2 + s_len], "big")
    return s_value > _SECP256K1_HALF_ORDER


class Mempool:
    def __init__(self, settings: policy.PolicySettings = policy.DEFAULT_POLICY) -> None:
        self.settings = settings
        self.entries: dict[bytes, MempoolEntry] = {}  # insertion order is a valid block order
        self.spent_by: dict[Outpoint, bytes] = {}
        self.by_wtxid: dict[bytes, bytes] = {}

    def copy(self) -> Mempool:
        """A scratch copy (entries are immutable, so copying the maps suffices)."""
        scratch = Mempool(self.settings)
        scratch.entries = dict(self.entries)
        scratch.spent_by = dict(self.spent_by)
        scratch.by_wtxid = dict(self.by_wtxid)
        return scratch

    def __contains__(self, txid: bytes) -> bool:
        return txid in self.entries

    def coin(self, outpoint: Outpoint) -> Coin | None:
        entry = self.entries.get(outpoint[0])
        if entry is None or outpoint[1] >= len(entry.tx.outputs):
            return None
        out = entry.tx.outputs[outpoint[1]]
        return Coin(out.value_sats, out.script_pubkey, MEMPOOL_HEIGHT, False)

    def check(self, tx: Tx, view: ChainView, max_fee_rate_sat_per_kvb: int | None, *,
              bypass_limits: bool = False) -> Admission:
        """Core's MemPoolAccept checks; raises BroadcastRejected. `bypass_limits` is Core's flag for
        transactions returning from disconnected blocks: no fee floor, no package or size limits."""
        reason = policy.check_transaction(tx)
        if reason is not None:
            raise BroadcastRejected(reason)
        reason = policy.check_standard(tx, self.settings) if self.settings.require_standard else None
        reason = reason or policy.check_size(tx)
        if reason is not None:
            raise BroadcastRejected(reason)
        if not self._is_final(tx, view):
            raise BroadcastRejected("non-final")
        if tx.txid in self.entries:
            raise BroadcastRejected("txn-already-in-mempool")
        conflicts = {self.spent_by[(i.prev_txid, i.prev_vout)] for i in tx.inputs
                     if (i.prev_txid, i.prev_vout) in self.spent_by}
        coins, parents = self._input_coins(tx, view)
        fee = self._check_inputs(tx, coins, view)
        self._check_relative_locks(tx, coins, view)
        if self.settings.require_standard and not policy.witness_standard(tx, [c.script_pubkey for c in coins]):
            raise BroadcastRejected("bad-witness-nonstandard")
        sigops = policy.sigop_cost(tx, [coin.script_pubkey for coin in coins])
        if sigops > policy.MAX_STANDARD_TX_SIGOPS_COST:
            raise BroadcastRejected("bad-txns-too-many-sigops", details=str(sigops))
        if not bypass_limits:
            self._check_fee(tx, fee)
        if fee and self.settings.require_standard and policy.dust_outputs(tx, self.settings):
            raise BroadcastRejected("dust", details="tx with dust output must be 0-fee")
        replaced = self._check_replacement(tx, fee, conflicts, parents) if conflicts else frozenset()
        if not bypass_limits:
            self._check_cluster(tx, parents, replaced)
        self._check_scripts(tx, coins, fee, view)
        if not bypass_limits and len(self.entries) - len(replaced) >= MEMPOOL_TXS_MAX:
            raise BroadcastRejected("mempool full")
        # Core's RPCs check the caller's maxfeerate after a test acceptance: every policy reason first.
        if max_fee_rate_sat_per_kvb and fee > policy.fee_for_vsize(max_fee_rate_sat_per_kvb, tx.vsize):
            raise BroadcastRejected("max-fee-exceeded", code=-25)
        return Admission(fee, parents, frozenset(conflicts), sigops)

    def cluster(self, txid: bytes) -> set[bytes]:
        """Every mempool transaction connected to `txid` through parents and children (Core's cluster)."""
        found, stack = {txid}, [txid]
        while stack:
            current = self.entries[stack.pop()]
            relatives = [p for p in current.parents if p in self.entries]
            relatives += [child for vout in range(len(current.tx.outputs))
                          if (child := self.spent_by.get((current.tx.txid, vout))) is not None]
            for relative in relatives:
                if relative not in found:
                    found.add(relative)
                    stack.append(relative)
        return found

    def _check_cluster(self, tx: Tx, parents: frozenset[bytes], replaced: frozenset[bytes]) -> None:
        """Core's cluster limits (-limitclustercount 64, -limitclustersize 101 kvB)."""
        joined: set[bytes] = set()
        for parent in parents:
            if parent not in joined:
                joined |= self.cluster(parent)
        joined -= replaced
        vsize = tx.vsize + sum(self.entries[txid].vsize for txid in joined)
        if len(joined) + 1 > self.settings.cluster_count_max or vsize > self.settings.cluster_vsize_max:
            raise BroadcastRejected("too-large-cluster")

    def _check_replacement(self, tx: Tx, fee: int, conflicts: set[bytes], parents: frozenset[bytes]) -> frozenset[bytes]:
        """BIP125 rules as Core applies them; returns every transaction that would be evicted."""
        evicted = set(conflicts)
        for conflict in conflicts:
            evicted.update(self.descendants(conflict))
        txid_hex = tx.txid_hex
        if parents & evicted:
            raise BroadcastRejected("bad-txns-spends-conflicting-tx",
                                    details=f"{txid_hex} spends conflicting transaction")
        if len(evicted) > REPLACEMENTS_MAX:
            raise BroadcastRejected("too many potential replacements",
                                    details=f"rejecting replacement {txid_hex}; too many potential replacements "
                                            f"({len(evicted)} > {REPLACEMENTS_MAX})")
        original_parents = {txin.prev_txid for c in conflicts for txin in self.entries[c].tx.inputs}
        if any(parent not in original_parents for parent in parents):
            raise BroadcastRejected("replacement-adds-unconfirmed",
                                    details=f"replacement {txid_hex} adds unconfirmed input")
        new_rate = fee * 1000 // tx.vsize
        for conflict in conflicts:
            entry = self.entries[conflict]
            old_rate = entry.fee_sats * 1000 // entry.vsize
            if new_rate <= old_rate:
                raise BroadcastRejected("insufficient fee", details=f"rejecting replacement {txid_hex}; new feerate "
                                        f"{_btc_kvb(new_rate)} <= old feerate {_btc_kvb(old_rate)}")
        old_fees = sum(self.entries[e].fee_sats for e in evicted)
        if fee < old_fees:
            raise BroadcastRejected("insufficient fee", details=f"rejecting replacement {txid_hex}, less fees than "
                                    f"conflicting txs; {_btc(fee)} < {_btc(old_fees)}")
        relay = policy.fee_for_vsize(self.settings.incremental_relay_fee_sat_per_kvb, tx.vsize)
        if fee - old_fees < relay:
            raise BroadcastRejected("insufficient fee", details=f"rejecting replacement {txid_hex}, not enough "
                                    f"additional fees to relay; {_btc(fee - old_fees)} < {_btc(relay)}")
        return frozenset(evicted)

    def _input_coins(self, tx: Tx, view: ChainView) -> tuple[list[Coin], frozenset[bytes]]:
        coins: list[Coin] = []
        parents = set()
        for txin in tx.inputs:
            outpoint = (txin.prev_txid, txin.prev_vout)
            coin = view.coin(outpoint)
            if coin is None:
                coin = self.coin(outpoint)
                if coin is not None:
                    parents.add(txin.prev_txid)
            if coin is None:
                if all(view.coin((tx.txid, i)) is not None for i in range(len(tx.outputs))):
                    raise BroadcastRejected("txn-already-known", code=-27)
                raise BroadcastRejected("bad-txns-inputs-missingorspent", code=-25)
            coins.append(coin)
        return coins, frozenset(parents)

    def _check_inputs(self, tx: Tx, coins: list[Coin], view: ChainView) -> int:
        value_in = 0
        for coin in coins:
            depth = view.next_height - coin.height
            if coin.coinbase and depth < COINBASE_MATURITY:
                raise BroadcastRejected("bad-txns-premature-spend-of-coinbase",
                                        details=f"tried to spend coinbase at depth {depth}")
            value_in += coin.value_sats
            if value_in > policy.MAX_MONEY_SATS:
                raise BroadcastRejected("bad-txns-inputvalues-outofrange")
        value_out = sum(out.value_sats for out in tx.outputs)
        if value_in < value_out:
            raise BroadcastRejected("bad-txns-in-belowout", details=f"value in ({value_in}) < value out ({value_out})")
        return value_in - value_out

    def _check_fee(self, tx: Tx, fee: int) -> None:
        minimum = policy.fee_for_vsize(self.settings.min_relay_fee_sat_per_kvb, tx.vsize)
        if fee < minimum:
            raise BroadcastRejected("min relay fee not met", details=f"{fee} < {minimum}")

    def _check_scripts(self, tx: Tx, coins: list[Coin], fee: int, view: ChainView) -> None:
        for txin, coin in zip(tx.inputs, coins, strict=True):
            if self.settings.require_standard and policy.upgradable_witness(coin.script_pubkey, txin.script_sig):
                raise BroadcastRejected(
                    "mempool-script-verify-flag-failed (Witness version reserved for soft-fork upgrades)")
            kind = policy.script_type(coin.script_pubkey)
            if kind in ("witness_v0_keyhash", "witness_v0_scripthash") and any(
                    _high_s(item) for item in txin.witness[:-1] if item):
                raise BroadcastRejected(
                    "mempool-script-verify-flag-failed (Non-canonical signature: S value is unnecessarily high)")
        kernel_tx = pbk.Transaction(tx.raw)
        spent = [pbk.TransactionOutput(pbk.ScriptPubkey(c.script_pubkey), c.value_sats) for c in coins]
        precomputed = pbk.script.PrecomputedTransactionData(kernel_tx, spent)
        for index, coin in enumerate(coins):
            if not verify_input(coin.script_pubkey, coin.value_sats, kernel_tx, precomputed, index):
                exact = view.script_error(tx, fee) if view.script_error is not None else None
                raise BroadcastRejected(
                    exact or f"mempool-script-verify-flag-failed ({_script_error(coin.script_pubkey)})")

    @staticmethod
    def _is_final(tx: Tx, view: ChainView) -> bool:
        if tx.locktime == 0:
            return True
        limit = view.next_height if tx.locktime < _LOCKTIME_THRESHOLD else view.median_time_past
        if tx.locktime < limit:
            return True
        return all(txin.sequence == _SEQUENCE_FINAL for txin in tx.inputs)

    @staticmethod
    def _check_relative_locks(tx: Tx, coins: list[Coin], view: ChainView) -> None:
        """BIP68 for the next block; a mempool parent counts as confirmed in that block."""
        if tx.version < 2:
            return
        for txin, coin in zip(tx.inputs, coins, strict=True):
            if txin.sequence & (1 << 31):
                continue
            height = min(coin.height, view.next_height)
            value = txin.sequence & 0xFFFF
            if txin.sequence & (1 << 22):
                start = view.median_time_at(max(height - 1, 0))
                if start + (value << 9) - 1 >= view.median_time_past:
                    raise BroadcastRejected("non-BIP68-final")
            elif height + value - 1 >= view.next_height:
                raise BroadcastRejected("non-BIP68-final")

    def add(self, tx: Tx, admission: Admission, now: int, height: int) -> None:
        for replaced in admission.replaces:
            self.remove(replaced)
        self.entries[tx.txid] = MempoolEntry(tx, admission.fee_sats, now, height, admission.parents,
                                             admission.sigop_cost)
        self.by_wtxid[tx.wtxid] = tx.txid
        for txin in tx.inputs:
            self.spent_by[(txin.prev_txid, txin.prev_vout)] = tx.txid

    def remove(self, txid: bytes) -> None:
        """Remove a transaction and, depth first, everything in the mempool that spends it."""
        entry = self.entries.pop(txid, None)
        if entry is None:
            return
        self.by_wtxid.pop(entry.tx.wtxid, None)
        for txin in entry.tx.inputs:
            self.spent_by.pop((txin.prev_txid, txin.prev_vout), None)
        for vout in range(len(entry.tx.outputs)):
            child = self.spent_by.get((txid, vout))
            if child is not None:
                self.remove(child)

    def remove_for_block(self, txs: list[Tx]) -> None:
        """A block connected: drop its transactions (keeping their children) and all conflicts."""
        for tx in txs:
            entry = self.entries.pop(tx.txid, None)
            if entry is not None:
                self.by_wtxid.pop(entry.tx.wtxid, None)
                for txin in entry.tx.inputs:
                    self.spent_by.pop((txin.prev_txid, txin.prev_vout), None)
        for tx in txs:
            if tx.is_coinbase:
                continue
            for txin in tx.inputs:
                conflict = self.spent_by.get((txin.prev_txid, txin.prev_vout))
                if conflict is not None:
                    self.remove(conflict)

    def descendants(self, txid: bytes) -> list[bytes]:
        entry = self.entries.get(txid)
        if entry is None:
            return []
        found: list[bytes] = []
        for vout in range(len(entry.tx.outputs)):
            child = self.spent_by.get((txid, vout))
            if child is not None and child not in found:
                found.append(child)
                found.extend(d for d in self.descendants(child) if d not in found)
        return found

    def ancestors(self, txid: bytes) -> list[bytes]:
        entry = self.entries.get(txid)
        if entry is None:
            return []
        found: list[bytes] = []
        for parent in entry.parents:
            if parent in self.entries and parent not in found:
                found.append(parent)
                found.extend(a for a in self.ancestors(parent) if a not in found)
        return found
