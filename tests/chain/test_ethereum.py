"""Ethereum backends: embedded py-evm and a real hardhat@2 dev node over JSON-RPC, same transfers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import coincurve
import pytest
from eth_account import Account
from eth_tester.backends.pyevm.main import get_account_keys_from_mnemonic

from coffer.chain import BroadcastRejected, EthereumChain
from coffer.chain.doctor import hardhat_path
from coffer.chain.ethereum import (
    DEV_HD_PATH,
    DEV_MNEMONIC,
    SECP256K1_ORDER,
    Eip1559Tx,
    EmbeddedEthereum,
    JsonRpcEthereum,
)
from coffer.testing.hardhat import hardhat_node

SENDER_KEY = get_account_keys_from_mnemonic(DEV_MNEMONIC, 1, DEV_HD_PATH)[0].to_bytes()
SENDER = Account.from_key(SENDER_KEY).address
RECEIVER = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
VALUE_WEI = 123_456_789_000_000
HARDHAT_CHAIN_ID = 31337


@pytest.fixture(scope="module")
def hardhat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real hardhat@2 node on 127.0.0.1 from the checkout's node_modules (installed by make)."""
    node, url = hardhat_node(tmp_path_factory.mktemp("hardhat"), chain_id=HARDHAT_CHAIN_ID)
    with node:
        yield url


@pytest.fixture(params=["embedded", "jsonrpc"])
def eth(request: pytest.FixtureRequest) -> EthereumChain:
    if request.param == "embedded":
        return EmbeddedEthereum()
    return JsonRpcEthereum(request.getfixturevalue("hardhat"))


def _tx(chain: EthereumChain, nonce: int | None = None) -> Eip1559Tx:
    fees = chain.fee_estimate()
    return Eip1559Tx(chain_id=chain.chain_id(), nonce=chain.nonce(SENDER) if nonce is None else nonce,
                     max_priority_fee_wei=fees.max_priority_fee_wei, max_fee_wei=fees.max_fee_wei, gas=21_000,
                     to=bytes.fromhex(RECEIVER[2:]), value_wei=VALUE_WEI)


def _transfer(chain: EthereumChain, raw: bytes) -> None:
    before_sender, before_receiver = chain.balance_wei(SENDER), chain.balance_wei(RECEIVER)
    tx_hash = chain.send_raw_transaction(raw)
    receipt = chain.receipt(tx_hash)
    if receipt is None:
        chain.mine(1)
        receipt = chain.receipt(tx_hash)
    assert receipt is not None and 1 == receipt.status
    assert before_receiver + VALUE_WEI == chain.balance_wei(RECEIVER)
    assert before_sender - VALUE_WEI - receipt.fee_wei == chain.balance_wei(SENDER)
    confirmations = chain.confirmations(tx_hash)
    chain.mine(2)
    assert confirmations + 2 == chain.confirmations(tx_hash)


def test_same_transfer_through_both_backends(eth: EthereumChain) -> None:
    """An eth-account-signed EIP-1559 transfer moves value + fee exactly on each backend."""
    tx = _tx(eth)
    signed = Account.sign_transaction({
        "type": 2, "chainId": tx.chain_id, "nonce": tx.nonce, "maxPriorityFeePerGas": tx.max_priority_fee_wei,
        "maxFeePerGas": tx.max_fee_wei, "gas": tx.gas, "to": RECEIVER, "value": tx.value_wei, "data": b""},
        SENDER_KEY)
    _transfer(eth, bytes(signed.raw_transaction))
    assert tx.nonce + 1 == eth.nonce(SENDER)


def test_transaction_signed_outside_eth_account_is_accepted(eth: EthereumChain) -> None:
    """coincurve sign_recoverable over keccak(0x02||rlp(fields)) with raw r, s, v (low-S) is mined."""
    tx = _tx(eth)
    signature = coincurve.PrivateKey(SENDER_KEY).sign_recoverable(tx.signing_hash(), hasher=None)
    r, s, y_parity = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    raw = tx.raw(y_parity, r, s)
    assert raw == tx.raw(1 - y_parity, r, SECP256K1_ORDER - s)  # a high S is normalised to the same bytes
    _transfer(eth, raw)


def test_chain_facts_and_rejections(eth: EthereumChain) -> None:
    """Chain id, base fee and fee estimate are sane; a reused nonce is refused; unknown receipts are None."""
    assert eth.chain_id() in (HARDHAT_CHAIN_ID, 131277322940537)
    estimate = eth.fee_estimate()
    assert estimate.base_fee_wei == eth.base_fee_wei() > 0
    assert estimate.max_fee_wei == 2 * estimate.base_fee_wei + estimate.max_priority_fee_wei
    number = eth.block_number()
    eth.mine(1)
    assert number + 1 == eth.block_number()
    assert eth.receipt("0x" + "12" * 32) is None
    stale = _tx(eth, nonce=max(eth.nonce(SENDER) - 1, 0))
    if stale.nonce == eth.nonce(SENDER):
        _transfer(eth, _sign(stale))
        stale = _tx(eth, nonce=stale.nonce)
    with pytest.raises(BroadcastRejected):
        eth.send_raw_transaction(_sign(stale))


def _sign(tx: Eip1559Tx) -> bytes:
    signature = coincurve.PrivateKey(SENDER_KEY).sign_recoverable(tx.signing_hash(), hasher=None)
    return tx.raw(signature[64], int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"))


def test_doctor_reports_kernel_and_dev_node() -> None:
    """doctor_checks finds the kernel library, py-evm and the installed hardhat@2."""
    from coffer.chain import doctor_checks

    results = {name: (ok, detail) for name, ok, detail in doctor_checks()}
    assert all(ok for ok, _detail in results.values()), results
    assert Path(hardhat_path()).exists()
