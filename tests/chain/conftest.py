"""Fixtures for the chain tests: an embedded regtest node with mature coins for a test key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.chain.regtest import RegtestNode
from tests.chain.helpers import key, p2wpkh_script

MINER_KEY = key(7)
MINER_SCRIPT = p2wpkh_script(MINER_KEY)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RegtestNode]:
    """A fresh node with 110 blocks paying MINER_SCRIPT: ten mature coinbase coins."""
    with RegtestNode(tmp_path / "regtest") as fresh:
        fresh.generate(110, MINER_SCRIPT)
        yield fresh


def mature_coins(node: RegtestNode, count: int = 1) -> list:
    from tests.chain.helpers import prevout

    coins = [(op, coin) for op, coin in node.unspent([MINER_SCRIPT]) if node.height + 1 - coin.height >= 100]
    return [prevout(op, coin) for op, coin in coins[:count]]
