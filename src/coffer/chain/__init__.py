"""Chain backends behind one small interface.

Bitcoin (`BitcoinChain`): `RegtestChain` over the embedded regtest node judged by libbitcoinkernel
(`coffer.chain.regtest`), and `BitcoinRpcChain` over Bitcoin Core's JSON-RPC
(`coffer.chain.bitcoin_rpc`). Ethereum (`EthereumChain`): `EmbeddedEthereum` (py-evm) and
`JsonRpcEthereum` (`coffer.chain.ethereum`). `BlockWatcher` turns any BitcoinChain into a
poll-able stream of BlockConnected / BlockDisconnected events. `open_bitcoin_chain(config)` and
`open_ethereum_chain(config)` (`coffer.chain.factory`) open what the configuration names.
"""

from coffer.chain.doctor import doctor_checks
from coffer.chain.errors import (
    BlockNotFound,
    BlockRejected,
    BroadcastRejected,
    ChainError,
    ChainUnavailable,
    DecodeError,
    RpcError,
    TransactionNotFound,
)
from coffer.chain.events import BlockWatcher
from coffer.chain.interface import (
    BitcoinChain,
    BlockConnected,
    BlockDisconnected,
    BlockInfo,
    BlockRef,
    ChainEvent,
    DescriptorRange,
    EthereumChain,
    EthFeeEstimate,
    EthReceipt,
    FeeEstimate,
    TxStatus,
    Utxo,
)

__all__ = [
    "BitcoinChain", "EthereumChain", "BlockRef", "BlockInfo", "Utxo", "TxStatus", "FeeEstimate", "DescriptorRange",
    "BlockConnected", "BlockDisconnected", "ChainEvent", "EthReceipt", "EthFeeEstimate", "BlockWatcher",
    "ChainError", "DecodeError", "BlockNotFound", "TransactionNotFound", "BroadcastRejected", "BlockRejected",
    "RpcError", "ChainUnavailable", "doctor_checks",
]
