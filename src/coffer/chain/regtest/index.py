"""UTXO index by script and transaction index of the active chain, kept from connect/disconnect.

Connect adds the block's outputs and removes what it spends; disconnect removes its outputs and
restores what it spent from the kernel's undo data. Pure data structure: no kernel calls here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coffer.chain.regtest.wire import Tx
from coffer.invariant import invariant

__all__ = ["Coin", "UtxoIndex", "Outpoint"]

Outpoint = tuple[bytes, int]  # (txid in internal byte order, output index)


@dataclass(frozen=True, slots=True)
class Coin:
    value_sats: int
    script_pubkey: bytes
    height: int
    coinbase: bool


class UtxoIndex:
    def __init__(self) -> None:
        self.coins: dict[Outpoint, Coin] = {}
        self.by_script: dict[bytes, set[Outpoint]] = {}
        self.tx_block: dict[bytes, bytes] = {}  # txid -> hash of the active-chain block holding it

    def _add(self, outpoint: Outpoint, coin: Coin) -> None:
        self.coins[outpoint] = coin
        self.by_script.setdefault(coin.script_pubkey, set()).add(outpoint)

    def _remove(self, outpoint: Outpoint) -> Coin | None:
        coin = self.coins.pop(outpoint, None)
        if coin is not None:
            holders = self.by_script[coin.script_pubkey]
            holders.discard(outpoint)
            if not holders:
                del self.by_script[coin.script_pubkey]
        return coin

    def connect(self, block_hash: bytes, height: int, txs: list[Tx]) -> None:
        if height == 0:
            return  # Core never adds the genesis coinbase to the UTXO set or the transaction index
        for tx in txs:
            if not tx.is_coinbase:
                for txin in tx.inputs:
                    spent = self._remove((txin.prev_txid, txin.prev_vout))
                    invariant(spent is not None, "connected block spends a coin the index does not hold")
            for vout, out in enumerate(tx.outputs):
                if out.script_pubkey[:1] == b"\x6a":
                    continue  # provably unspendable: never in the UTXO set
                self._add((tx.txid, vout), Coin(out.value_sats, out.script_pubkey, height, tx.is_coinbase))
            self.tx_block[tx.txid] = block_hash

    def disconnect(self, txs: list[Tx], spent: list[list[Coin]]) -> None:
        """Undo a block: `spent[i]` are the coins spent by the i-th non-coinbase transaction."""
        invariant(len(spent) == len(txs) - 1, "undo data does not match the block")
        for tx in reversed(txs):
            for vout in range(len(tx.outputs)):
                self._remove((tx.txid, vout))
            self.tx_block.pop(tx.txid, None)
        for tx, coins in zip(txs[1:], spent, strict=True):
            invariant(len(coins) == len(tx.inputs), "undo data does not match the transaction")
            for txin, coin in zip(tx.inputs, coins, strict=True):
                self._add((txin.prev_txid, txin.prev_vout), coin)

    def unspent(self, scripts: Iterable[bytes]) -> list[tuple[Outpoint, Coin]]:
        found = []
        for spk in set(scripts):
            for outpoint in self.by_script.get(spk, ()):
                found.append((outpoint, self.coins[outpoint]))
        found.sort(key=lambda item: (item[1].height, item[0]))
        return found
