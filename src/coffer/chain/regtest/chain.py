"""`RegtestChain`: the embedded regtest node behind the BitcoinChain interface (in-process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from coffer.chain.descriptors import address_to_script, descriptor_scripts
from coffer.chain.errors import BlockNotFound, TransactionNotFound
from coffer.chain.interface import (
    BlockInfo,
    BlockRef,
    ChainEvent,
    DescriptorRange,
    FeeEstimate,
    TxStatus,
    Utxo,
)
from coffer.chain.regtest.faucet import Faucet
from coffer.chain.regtest.index import Coin, Outpoint
from coffer.chain.regtest.node import DEFAULT_PAYOUT_SCRIPT, RegtestNode

__all__ = ["RegtestChain", "FALLBACK_FEE_SAT_PER_KVB"]

FALLBACK_FEE_SAT_PER_KVB = 2000


def _h(display_hex: str) -> bytes:
    try:
        raw = bytes.fromhex(display_hex)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise BlockNotFound(f"not a 32-byte hash: {display_hex[:80]!r}")
    return raw[::-1]


def _utxo(outpoint: Outpoint, coin: Coin) -> Utxo:
    return Utxo(outpoint[0][::-1].hex(), outpoint[1], coin.value_sats, coin.script_pubkey, coin.height,
                coin.coinbase)


class RegtestChain:
    """BitcoinChain over an embedded RegtestNode, plus the controls only a regtest chain has."""

    def __init__(self, node: RegtestNode, *, fallback_fee_sat_per_kvb: int = FALLBACK_FEE_SAT_PER_KVB) -> None:
        self.node = node
        self._fallback = fallback_fee_sat_per_kvb

    @classmethod
    def open(cls, datadir: Path | str) -> RegtestChain:
        return cls(RegtestNode(Path(datadir)))

    def close(self) -> None:
        self.node.close()

    # ---- BitcoinChain ------------------------------------------------------------------------

    def tip(self) -> BlockRef:
        with self.node.lock:
            return BlockRef(self.node.height, self.node.best_hash[::-1].hex())

    def block_hash(self, height: int) -> str:
        return self.node.active_hash(height)[::-1].hex()

    def block(self, block_hash: str) -> BlockInfo:
        header = self.node.header(_h(block_hash))
        if header.confirmations < 1:
            raise BlockNotFound(f"block {block_hash} is not on the active chain")
        txids = tuple(tx.txid_hex for tx in self.node.block_txs(header.hash))
        prev = header.prev[::-1].hex() if header.height > 0 else None
        return BlockInfo(block_hash, header.height, prev, header.time, header.median_time, header.confirmations,
                         txids)

    def raw_block(self, block_hash: str) -> bytes:
        return self.node.raw_block(_h(block_hash))

    def tx_status(self, txid: str) -> TxStatus:
        try:
            txid_bytes = _h(txid)
        except BlockNotFound as exc:
            raise TransactionNotFound(str(exc)) from None
        with self.node.lock:
            if txid_bytes in self.node.mempool_entries():
                return TxStatus(txid, 0, None, None)
            block_hash = self.node.tx_block(txid_bytes)
            if block_hash is None:
                raise TransactionNotFound(f"transaction {txid} not found")
            header = self.node.header(block_hash)
            return TxStatus(txid, header.confirmations, block_hash[::-1].hex(), header.height)

    def confirmations(self, txid: str) -> int:
        try:
            return self.tx_status(txid).confirmations
        except TransactionNotFound:
            return 0

    def unspent(self, script_pubkeys: Iterable[bytes]) -> list[Utxo]:
        return [_utxo(outpoint, coin) for outpoint, coin in self.node.unspent(script_pubkeys)]

    def unspent_for_descriptors(self, descriptors: Sequence[DescriptorRange]) -> list[Utxo]:
        scripts: set[bytes] = set()
        for item in descriptors:
            scripts.update(spk for spk, _d in descriptor_scripts(item.descriptor, item.range_start, item.range_end))
        return self.unspent(scripts)

    def broadcast(self, raw_tx: bytes) -> str:
        tx, _fee = self.node.accept_transaction(raw_tx)
        return tx.txid_hex

    def estimate_fee(self, target_blocks: int) -> FeeEstimate:
        rate = self.node.estimate_fee_rate(target_blocks)
        if rate is None:
            return FeeEstimate(self._fallback, target_blocks, True)
        return FeeEstimate(rate, target_blocks, False)

    # ---- regtest controls --------------------------------------------------------------------

    def mine(self, blocks: int = 1, *, address: str | None = None, script_pubkey: bytes | None = None) -> list[str]:
        """Mine blocks from the mempool paying `address` (or a script); returns their hashes."""
        spk = address_to_script(address) if address is not None else (script_pubkey or DEFAULT_PAYOUT_SCRIPT)
        return [h[::-1].hex() for h in self.node.generate(blocks, spk)]

    def fund(self, script_pubkey: bytes, amount_sats: int, *, confirm: bool = True) -> str:
        """Pay `amount_sats` to a script from the regtest faucet (mined as needed); returns the txid."""
        return Faucet(self.node).send([(script_pubkey, amount_sats)], confirm=confirm)

    def subscribe(self, callback: Callable[[ChainEvent], None]) -> None:
        self.node.subscribe(callback)
