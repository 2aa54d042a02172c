"""Fixtures for the chain tests: an embedded regtest node with mature coins for a test key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
from tests.chain.helpers import key, p2wpkh_script
from tests.chain.rpchelp import AUTH, RawRpc

MINER_KEY = key(7)
MINER_SCRIPT = p2wpkh_script(MINER_KEY)


@pytest.fixture(scope="session")
def _template_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """110 blocks paying MINER_SCRIPT, mined once per session and copied for each test."""
    directory = tmp_path_factory.mktemp("chain-template") / "regtest"
    with RegtestNode(directory) as fresh:
        fresh.generate(110, MINER_SCRIPT)
    return directory


@pytest.fixture
def node(tmp_path: Path, _template_chain: Path) -> Iterator[RegtestNode]:
    """A node of its own with 110 blocks paying MINER_SCRIPT: ten mature coinbase coins."""
    shutil.copytree(_template_chain, tmp_path / "regtest")
    with RegtestNode(tmp_path / "regtest") as fresh:
        assert 110 == fresh.height
        yield fresh


@pytest.fixture
def served(node: RegtestNode) -> Iterator[tuple[RegtestNode, RpcServer, RawRpc]]:
    """The node's RPC server on a free loopback port with user/password AUTH, and a raw client."""
    server = RpcServer(RpcDispatcher(node), port=0, rpcuser=AUTH[0], rpcpassword=AUTH[1]).start()
    try:
        yield node, server, RawRpc(server.url, AUTH)
    finally:
        server.close()


def mature_coins(node: RegtestNode, count: int = 1) -> list:
    from tests.chain.helpers import prevout

    coins = [(op, coin) for op, coin in node.unspent([MINER_SCRIPT]) if node.height + 1 - coin.height >= 100]
    return [prevout(op, coin) for op, coin in coins[:count]]
