"""Ethereum reserves: Keccak-256, EIP-191 proofs of control, balances at the snapshot block, gwei trees."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak
from nacl.signing import SigningKey
from web3 import EthereumTesterProvider, Web3

from coffer.por import eth
from coffer.por.errors import ReservesError
from coffer.por.publish import publish_snapshot
from coffer.por.reserves import ControlProof, ReserveEntry, build_reserves_document
from coffer.por.verify import (
    VerificationFailed,
    eth_verify,
    keccak256,
    reserves_challenge,
    verify_eth_reserves_rpc,
    verify_snapshot,
)

SECRET = bytes([0x42]) * 32


def test_keccak256_matches_reference() -> None:
    """The verifier's own Keccak-256 equals eth-hash on lengths around the 136-byte rate."""
    generator = random.Random(4)
    for length in [0, 1, 55, 134, 135, 136, 137, 271, 272, 1000]:
        data = generator.randbytes(length)
        assert keccak(data) == keccak256(data)


def test_eth_account_signature_verifies() -> None:
    """A personal_sign signature made by eth-account verifies; Coffer's own is recovered by eth-account."""
    message = b"Coffer proof of reserves\n"
    signed = Account.sign_message(encode_defunct(message), private_key=SECRET)
    eth_verify(Account.from_key(SECRET).address, message, signed.signature.hex())
    ours = eth.sign_personal(SECRET, message)
    assert Account.from_key(SECRET).address == Account.recover_message(encode_defunct(message), signature=ours)


@pytest.mark.parametrize("change", ["message", "address", "high-s", "length"])
def test_eth_signature_tampering_fails(change: str) -> None:
    """Another message or address, a high-s twin or a truncated signature is refused."""
    message = b"challenge"
    address = eth.address_of_secret(SECRET)
    signature = eth.sign_personal(SECRET, message)
    if change == "message":
        message = b"challengf"
    elif change == "address":
        address = eth.address_of_secret(bytes([1]) * 32)
    elif change == "high-s":
        raw = bytes.fromhex(signature[2:])
        order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        high = order - int.from_bytes(raw[32:64], "big")
        signature = "0x" + (raw[:32] + high.to_bytes(32, "big") + bytes([raw[64] ^ 1])).hex()
    else:
        signature = signature[:-2]
    with pytest.raises(VerificationFailed):
        eth_verify(address, message, signature)


def test_assemble_refuses_wrong_signature() -> None:
    """An (r, s, v) from the co-signers that does not recover to the address is refused."""
    with pytest.raises(ReservesError):
        eth.assemble(eth.address_of_secret(SECRET), b"m", 5, 7, 0)


def _funded_chain() -> tuple[Web3, str, int]:
    w3 = Web3(EthereumTesterProvider())
    address = Web3.to_checksum_address(eth.address_of_secret(SECRET))
    amount = 30 * 10**18 + 123  # above 2**64 wei: the tree must count gwei
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": amount})
    return w3, address, amount


def _rpc(w3: Web3):  # type: ignore[no-untyped-def]
    """A JSON-RPC node in front of the in-process chain (hex quantities in and out, as on the wire)."""
    def call(method: str, params: list[Any]) -> Any:
        if method == "eth_getBlockByNumber":
            return {"hash": "0x" + w3.eth.get_block(int(params[0], 16))["hash"].hex().removeprefix("0x")}
        if method == "eth_getBalance":
            return hex(w3.eth.get_balance(params[0], block_identifier=int(params[1], 16)))
        raise AssertionError(method)
    return call


def test_eth_reserves_snapshot_verifies(tmp_path: Path) -> None:
    """ETH reserves above 2**64 wei, proven by signature and checked at their block; liabilities in gwei."""
    w3, address, amount = _funded_chain()
    block = w3.eth.get_block("latest")
    number, block_hash = block["number"], block["hash"].hex().removeprefix("0x")
    challenge = reserves_challenge("ETH", "ethereum", number, block_hash)
    entry = ReserveEntry(address, amount, "hot", None, (ControlProof("hot ECDSA key", eth.sign_personal(SECRET, challenge)),))
    document = build_reserves_document("ETH", "ethereum", number, block_hash, [entry])
    assert amount == verify_eth_reserves_rpc(document, _rpc(w3))
    key = SigningKey(bytes([8]) * 32)
    nonces = {1: os.urandom(32), 2: os.urandom(32)}
    result = publish_snapshot(tmp_path / "snap", chain="regtest", height=100, block_hash="ab" * 32,
                              liabilities={"ETH": [(1, 10 * 10**9), (2, 20 * 10**9)]}, nonces=nonces,
                              reserves={"ETH": document}, sign=lambda m: bytes(key.sign(m).signature),
                              public_key=bytes(key.verify_key), log_path=tmp_path / "log.jsonl")
    assert amount // 10**9 == result.statements["ETH"]["reserves_total"]
    lines = verify_snapshot(tmp_path / "snap", bytes(key.verify_key), eth_rpc=_rpc(w3))
    assert any("node confirms" in line for line in lines)
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": 1})
    assert amount == verify_eth_reserves_rpc(document, _rpc(w3))  # read at the snapshot block, not the tip
    document["entries"][0]["balance"] += 1
    with pytest.raises(VerificationFailed, match="on chain"):
        verify_eth_reserves_rpc(document, _rpc(w3))
