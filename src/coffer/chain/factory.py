"""Open the configured chain backends from a Coffer configuration ([bitcoin] and [ethereum])."""

from __future__ import annotations

from coffer.chain.interface import BitcoinChain, EthereumChain
from coffer.config import Config
from coffer.errors import ConfigError

__all__ = ["open_bitcoin_chain", "open_ethereum_chain", "EMBEDDED_BITCOIN_DIR"]

EMBEDDED_BITCOIN_DIR = "chain/bitcoin-regtest"


def open_bitcoin_chain(config: Config) -> BitcoinChain:
    """embedded: a RegtestChain in HOME/chain/bitcoin-regtest (one process at a time);
    rpc: Bitcoin Core (or `coffer regtest`) at bitcoin.rpc_url with bitcoin.rpc_cookie_file."""
    backend = config.bitcoin.backend
    if backend == "embedded":
        if config.bitcoin.network != "regtest":
            raise ConfigError("the embedded backend is regtest only", key="bitcoin.network")
        from coffer.chain.regtest import RegtestChain, RegtestNode

        return RegtestChain(RegtestNode(config.path(EMBEDDED_BITCOIN_DIR)))
    if backend == "rpc":
        from coffer.chain.bitcoin_rpc import BitcoinCoreRpc, BitcoinRpcChain

        cookie = config.bitcoin.rpc_cookie_file
        if not cookie:
            raise ConfigError("rpc backend needs rpc_cookie_file", key="bitcoin.rpc_cookie_file")
        rpc = BitcoinCoreRpc(config.bitcoin.rpc_url, cookie_file=config.path(cookie))
        return BitcoinRpcChain(rpc)
    raise ConfigError(f"unknown backend {backend!r} (embedded or rpc)", key="bitcoin.backend")


def open_ethereum_chain(config: Config) -> EthereumChain:
    """embedded: an in-process py-evm chain with the dev mnemonic's accounts; rpc: any JSON-RPC node."""
    backend = config.ethereum.backend
    from coffer.chain.ethereum import EmbeddedEthereum, JsonRpcEthereum

    if backend == "embedded":
        return EmbeddedEthereum()
    if backend == "rpc":
        return JsonRpcEthereum(config.ethereum.rpc_url)
    raise ConfigError(f"unknown backend {backend!r} (embedded or rpc)", key="ethereum.backend")
