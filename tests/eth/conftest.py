"""Fixtures of the Ethereum hot-wallet tests: one ECDSA co-signer cluster (3 processes) per module,
a hardhat@2 node when asked for, and a funded dev account to pay with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic

from coffer.chain import EthereumChain
from coffer.chain.ethereum import DEV_HD_PATH, DEV_MNEMONIC
from coffer.mpc.ecdsa_service.harness import EcdsaCluster, start_ecdsa_cluster
from coffer.testing.hardhat import hardhat_node

FUNDER_KEY = get_account_keys_from_mnemonic(DEV_MNEMONIC, 2, DEV_HD_PATH)[1].to_bytes()
FUNDER = Account.from_key(FUNDER_KEY).address
HARDHAT_CHAIN_ID = 31337


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcdsaCluster]:
    """Three `coffer cosigner --engine ecdsa` processes and the coordinator, with a 2-of-3 key "hot-eth"."""
    cluster = start_ecdsa_cluster(tmp_path_factory.mktemp("ecdsa-eth"))
    try:
        cluster.coordinator.create_key("hot-eth", 2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def hardhat_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real hardhat@2 node on 127.0.0.1 (`npx hardhat node` from the checkout's node_modules)."""
    node, url = hardhat_node(tmp_path_factory.mktemp("hardhat-eth"), chain_id=HARDHAT_CHAIN_ID)
    with node:
        yield url


def fund(chain: EthereumChain, address: str, value_wei: int) -> str:
    """A dev account pays `address` (mined); returns the tx hash."""
    fees = chain.fee_estimate()
    signed = Account.sign_transaction({
        "type": 2, "chainId": chain.chain_id(), "nonce": chain.nonce(FUNDER), "to": address, "value": value_wei,
        "gas": 21_000, "maxFeePerGas": fees.max_fee_wei, "maxPriorityFeePerGas": fees.max_priority_fee_wei},
        FUNDER_KEY)
    tx_hash = chain.send_raw_transaction(bytes(signed.raw_transaction))
    if chain.receipt(tx_hash) is None:
        chain.mine(1)
    receipt = chain.receipt(tx_hash)
    assert receipt is not None and 1 == receipt.status
    return tx_hash


