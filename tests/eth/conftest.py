"""Fixtures of the Ethereum hot-wallet tests: one ECDSA co-signer cluster (3 processes) per module,
a hardhat@2 node when asked for, and a funded dev account to pay with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic

from coffer.chain import EthereumChain
from coffer.chain.doctor import hardhat_path
from coffer.chain.ethereum import DEV_HD_PATH, DEV_MNEMONIC
from coffer.mpc.ecdsa_service.harness import EcdsaCluster, start_ecdsa_cluster
from coffer.testing import free_port

FUNDER_KEY = get_account_keys_from_mnemonic(DEV_MNEMONIC, 2, DEV_HD_PATH)[1].to_bytes()
FUNDER = Account.from_key(FUNDER_KEY).address
HARDHAT_CHAIN_ID = 31337


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcdsaCluster]:
    """Three `coffer ecdsa-cosigner` processes and the coordinator, with a 2-of-3 key "hot-eth"."""
    cluster = start_ecdsa_cluster(tmp_path_factory.mktemp("ecdsa-eth"))
    try:
        cluster.coordinator.create_key("hot-eth", 2)
        yield cluster
    finally:
        cluster.stop()


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(json.loads(response.read()).get("result"))
    except OSError:
        return False


@pytest.fixture(scope="package")
def hardhat_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real hardhat@2 node on 127.0.0.1 (`npx hardhat node` from the checkout's node_modules)."""
    project = tmp_path_factory.mktemp("hardhat-eth")
    (project / "package.json").write_text('{"name": "coffer-eth-test", "private": true}')
    (project / "hardhat.config.js").write_text(
        f"module.exports = {{ networks: {{ hardhat: {{ chainId: {HARDHAT_CHAIN_ID} }} }} }};\n")
    binary = hardhat_path()
    (project / "node_modules").symlink_to(binary.parents[1])
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(project / "hardhat.log", "w")  # noqa: SIM115 - closed in teardown
    process = subprocess.Popen([str(binary), "--config", str(project / "hardhat.config.js"), "node",
                                "--hostname", "127.0.0.1", "--port", str(port)], cwd=project, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            assert process.poll() is None, (project / "hardhat.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "hardhat node did not start within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


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


