"""The one small chain interface every other part of Coffer uses.

Bitcoin: `BitcoinChain` (embedded regtest node or Bitcoin Core over JSON-RPC).
Ethereum: `EthereumChain` (embedded py-evm or any JSON-RPC node).
Values are frozen dataclasses; amounts are integers of minor units with the unit in the name.
Hashes and txids are hex strings in the display (RPC) byte order. This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "BlockRef", "BlockInfo", "Utxo", "TxStatus", "FeeEstimate", "BlockConnected", "BlockDisconnected",
    "ChainEvent", "BitcoinChain", "EthReceipt", "EthFeeEstimate", "EthereumChain", "DescriptorRange",
]


@dataclass(frozen=True, slots=True)
class BlockRef:
    height: int
    hash: str


@dataclass(frozen=True, slots=True)
class BlockInfo:
    hash: str
    height: int
    prev_hash: str | None  # None for genesis
    time: int
    median_time: int
    confirmations: int  # 0 or -1 style values never appear: a block off the active chain raises
    txids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Utxo:
    txid: str
    vout: int
    amount_sats: int
    script_pubkey: bytes
    height: int  # block height of the output
    coinbase: bool


@dataclass(frozen=True, slots=True)
class TxStatus:
    txid: str
    confirmations: int  # 0 while in the mempool
    block_hash: str | None
    block_height: int | None

    @property
    def in_mempool(self) -> bool:
        return self.confirmations == 0


@dataclass(frozen=True, slots=True)
class FeeEstimate:
    """A fee rate in satoshis per 1000 virtual bytes (Core's BTC/kvB times 1e8)."""

    sat_per_kvb: int
    target_blocks: int
    fallback: bool  # True when the node had no data and the configured fallback rate is returned

    @property
    def sat_per_vb_ceil(self) -> int:
        return -(-self.sat_per_kvb // 1000)


@dataclass(frozen=True, slots=True)
class DescriptorRange:
    """A descriptor, and for a ranged one (`/*`) the inclusive index range to derive."""

    descriptor: str
    range_start: int = 0
    range_end: int = 1000


@dataclass(frozen=True, slots=True)
class BlockConnected:
    height: int
    hash: str


@dataclass(frozen=True, slots=True)
class BlockDisconnected:
    height: int
    hash: str


ChainEvent = BlockConnected | BlockDisconnected


@runtime_checkable
class BitcoinChain(Protocol):
    """What Coffer needs from a Bitcoin node. Implementations: RegtestChain, BitcoinRpcChain."""

    def tip(self) -> BlockRef: ...

    def block_hash(self, height: int) -> str:
        """Hash of the active-chain block at `height`; BlockNotFound above the tip."""
        ...

    def block(self, block_hash: str) -> BlockInfo: ...

    def raw_block(self, block_hash: str) -> bytes: ...

    def tx_status(self, txid: str) -> TxStatus:
        """Where a transaction is; TransactionNotFound if neither in the mempool nor confirmed."""
        ...

    def confirmations(self, txid: str) -> int:
        """Confirmations of `txid`: 0 in the mempool or unknown, n >= 1 when in the active chain."""
        ...

    def unspent(self, script_pubkeys: Iterable[bytes]) -> list[Utxo]:
        """Confirmed unspent outputs paying any of the scripts."""
        ...

    def unspent_for_descriptors(self, descriptors: Sequence[DescriptorRange]) -> list[Utxo]: ...

    def broadcast(self, raw_tx: bytes) -> str:
        """Submit a transaction; returns its txid; BroadcastRejected carries Core's reason."""
        ...

    def estimate_fee(self, target_blocks: int) -> FeeEstimate: ...


@dataclass(frozen=True, slots=True)
class EthReceipt:
    tx_hash: str
    block_number: int
    block_hash: str
    status: int  # 1 success, 0 reverted
    gas_used: int
    effective_gas_price_wei: int

    @property
    def fee_wei(self) -> int:
        return self.gas_used * self.effective_gas_price_wei


@dataclass(frozen=True, slots=True)
class EthFeeEstimate:
    base_fee_wei: int
    max_priority_fee_wei: int
    max_fee_wei: int  # 2 * base fee + priority fee, the usual headroom for a few full blocks


@runtime_checkable
class EthereumChain(Protocol):
    """What Coffer needs from an Ethereum node. Implementations: EmbeddedEthereum, JsonRpcEthereum."""

    def chain_id(self) -> int: ...

    def block_number(self) -> int: ...

    def balance_wei(self, address: str) -> int: ...

    def nonce(self, address: str) -> int:
        """The next nonce for `address`, counting pending transactions."""
        ...

    def send_raw_transaction(self, raw_tx: bytes) -> str: ...

    def receipt(self, tx_hash: str) -> EthReceipt | None: ...

    def confirmations(self, tx_hash: str) -> int: ...

    def base_fee_wei(self) -> int: ...

    def fee_estimate(self) -> EthFeeEstimate: ...

    def mine(self, blocks: int = 1) -> None:
        """Mine blocks (embedded chain or a dev node only)."""
        ...
