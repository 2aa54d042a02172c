"""Core's RPC methods the test framework and common clients need: shapes and error codes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from coffer.chain.descriptors import script_to_address
from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
from tests.chain.conftest import MINER_SCRIPT
from tests.chain.rpchelp import RawRpc

AUTH = ("alice", "correct horse")
MINER_ADDRESS = script_to_address(MINER_SCRIPT)


@pytest.fixture
def served(node: RegtestNode) -> Iterator[tuple[RegtestNode, RpcServer, RawRpc]]:
    server = RpcServer(RpcDispatcher(node), port=0, rpcuser=AUTH[0], rpcpassword=AUTH[1]).start()
    try:
        yield node, server, RawRpc(server.url, AUTH)
    finally:
        server.close()


def test_setmocktime_sets_block_times(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """After setmocktime T (above the median time past) the next block's time is T; 0 restores the clock."""
    node, _server, rpc = served
    mock = rpc("getblockheader", rpc("getbestblockhash"))["time"] + 1000
    assert rpc("setmocktime", mock) is None
    block_hash = rpc("generatetoaddress", 1, MINER_ADDRESS)[0]
    assert mock == rpc("getblockheader", block_hash)["time"]
    assert rpc("setmocktime", 0) is None
    assert mock != node.now()


@pytest.mark.parametrize("value", [-1, 9_223_372_037])
def test_setmocktime_range(served: tuple[RegtestNode, RpcServer, RawRpc], value: int) -> None:
    """A negative or too large mock time is -8 with Core's range text."""
    _node, _server, rpc = served
    assert (-8, f"Mocktime must be in the range [0, 9223372036], not {value}.") == rpc.error("setmocktime", value)


def test_syncwithvalidationinterfacequeue_is_null(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """syncwithvalidationinterfacequeue answers null (the node's notifications are synchronous)."""
    assert served[2]("syncwithvalidationinterfacequeue") is None


def test_stop_with_hidden_wait_argument(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """stop accepts Core's hidden wait (ms), answers "Bitcoin Core stopping", then the server stops."""
    _node, server, rpc = served
    assert "Bitcoin Core stopping" == rpc("stop", 10)
    assert server.stopped.wait(30)


def test_waitforblockheight_returns_on_new_block(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """waitforblockheight returns the tip once it reaches the height; on timeout it returns the tip as is."""
    node, _server, rpc = served
    assert {"hash": node.best_hash[::-1].hex(), "height": 110} == rpc("waitforblockheight", 111, 50)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(rpc("waitforblockheight", 111)))
    waiter.start()
    mined = rpc("generatetoaddress", 1, MINER_ADDRESS)[0]
    waiter.join(60)
    assert [{"hash": mined, "height": 111}] == results


def test_waitfornewblock_negative_timeout(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """waitfornewblock with a negative timeout is -1 "Negative timeout"."""
    assert (-1, "Negative timeout") == served[2].error("waitfornewblock", -1)
