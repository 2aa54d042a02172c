"""Opening chain backends from the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffer.chain import BitcoinChain, EthereumChain
from coffer.chain.factory import open_bitcoin_chain, open_ethereum_chain
from coffer.chain.regtest import RegtestChain, RpcDispatcher, RpcServer
from coffer.config import load_config
from coffer.errors import ConfigError


def test_embedded_backends_from_default_config(tmp_path: Path) -> None:
    """The default configuration opens the embedded regtest node and the embedded EVM."""
    config = load_config(tmp_path, environ={})
    bitcoin = open_bitcoin_chain(config)
    assert isinstance(bitcoin, RegtestChain) and isinstance(bitcoin, BitcoinChain)
    assert 0 == bitcoin.tip().height
    bitcoin.close()
    assert isinstance(open_ethereum_chain(config), EthereumChain)


def test_rpc_backend_from_config(tmp_path: Path) -> None:
    """backend = rpc with a cookie file talks to a `coffer regtest` server."""
    node_chain = open_bitcoin_chain(load_config(tmp_path, environ={}))
    assert isinstance(node_chain, RegtestChain)
    server = RpcServer(RpcDispatcher(node_chain.node), port=0).start()
    try:
        environ = {"COFFER_BITCOIN_BACKEND": "rpc", "COFFER_BITCOIN_RPC_URL": server.url,
                   "COFFER_BITCOIN_RPC_COOKIE_FILE": str(node_chain.node.datadir / ".cookie")}
        remote = open_bitcoin_chain(load_config(tmp_path, environ=environ))
        assert node_chain.tip() == remote.tip()
    finally:
        server.close()
        node_chain.close()
    with pytest.raises(ConfigError):
        open_bitcoin_chain(load_config(tmp_path, environ={"COFFER_BITCOIN_BACKEND": "electrum"}))
