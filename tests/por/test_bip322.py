"""BIP-322: every published vector through Bitcoin Core's consensus code and through Coffer's verifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from embit import ec
from embit.script import address_to_scriptpubkey

from coffer.btc import bip322, bip322_sign, taproot
from coffer.btc.errors import Bip322Invalid
from coffer.por.verify import UnsupportedScript, VerificationFailed, bip322_verify
from tests.por.kernel_bip322 import KernelRejected, kernel_verify

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "bip322"
COFFER_TYPES = ("p2wpkh", "p2tr", "p2wsh-multisig-2of2", "p2wsh-multisig-3of3")


def _load(kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for name in ("basic-test-vectors.json", "generated-test-vectors.json"):
        items += json.loads((VECTORS / name).read_text(encoding="utf-8")).get(kind, [])
    return items


def _valid() -> list[tuple[str, dict[str, Any], str]]:
    return [(kind, item, signature) for kind in ("simple", "full", "proof_of_funds")
            for item in _load(kind) for signature in item["bip322_signatures"]]


@pytest.mark.parametrize("item", _load("tx_hashes"), ids=lambda item: item["message"][:12] or "empty")
def test_message_hash_and_virtual_transactions(item: dict[str, Any]) -> None:
    """message_hash, to_spend and to_sign ids match the published values."""
    message = item["message"].encode()
    to_spend = bip322.to_spend(address_to_scriptpubkey(item["address"]).data, message)
    assert item["message_hash"] == bip322.message_hash(message).hex()
    assert item["to_spend_tx_hash"] == to_spend.txid().hex()
    assert item["to_sign_tx_hash"] == bip322.to_sign(to_spend.txid(), []).txid().hex()


@pytest.mark.parametrize(("kind", "item", "signature"), _valid(), ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_valid_vector_accepted_by_kernel(kind: str, item: dict[str, Any], signature: str) -> None:
    """Bitcoin Core's script interpreter accepts every input of every valid vector's to_sign."""
    kernel_verify(item["address"], item["message"].encode(), signature)


@pytest.mark.parametrize(("kind", "item", "signature"), _valid(), ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_valid_vector_coffer_verifier(kind: str, item: dict[str, Any], signature: str) -> None:
    """Coffer's verifier accepts the vectors of its three script types and names any other as unsupported."""
    if kind != "proof_of_funds" and item["type"] in COFFER_TYPES:
        assert kind == bip322_verify(item["address"], item["message"].encode(), signature)
    else:
        with pytest.raises(UnsupportedScript):
            bip322_verify(item["address"], item["message"].encode(), signature)


@pytest.mark.parametrize("item", _load("error"), ids=lambda item: item["description"][:40])
def test_error_vector_rejected_by_both(item: dict[str, Any]) -> None:
    """Every error vector fails in the kernel and in Coffer's verifier, with the published reason."""
    with pytest.raises(KernelRejected):
        kernel_verify(item["address"], item["message"].encode(), item["signature"])
    with pytest.raises(VerificationFailed) as failure:
        bip322_verify(item["address"], item["message"].encode(), item["signature"])
    assert item["error_substr"] in str(failure.value) or isinstance(failure.value, UnsupportedScript)


def _keys(item: dict[str, Any]) -> list[bytes]:
    return [ec.PrivateKey.from_wif(wif).secret for wif in item["private_keys"]]


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("item", [i for i in _load("simple") if i["type"] in COFFER_TYPES],
                         ids=lambda item: item["type"])
def test_coffer_signature_verifies_in_kernel(item: dict[str, Any], full: bool) -> None:
    """Signatures Coffer makes (simple and full) pass both the kernel and Coffer's verifier."""
    message, keys = item["message"].encode(), _keys(item)
    if item["type"] == "p2wpkh":
        signature = bip322_sign.sign_p2wpkh(keys[0], message, full=full)
        if not full:
            assert signature in item["bip322_signatures"]  # RFC 6979 nonces: byte-identical
    elif item["type"] == "p2tr":
        signature = bip322_sign.sign_p2tr(keys[0], message, full=full)
    else:
        signature = bip322_sign.sign_p2wsh_multisig(bytes.fromhex(item["witness_script"]), keys, message, full=full)
    kernel_verify(item["address"], message, signature)
    assert ("full" if full else "simple") == bip322_verify(item["address"], message, signature)
    with pytest.raises(KernelRejected):
        kernel_verify(item["address"], message + b"!", signature)
    with pytest.raises(VerificationFailed):
        bip322_verify(item["address"], message + b"!", signature)


def test_multisig_needs_threshold_signatures() -> None:
    """Assembling a multisig proof with fewer signatures than the threshold is refused."""
    item = next(i for i in _load("simple") if i["type"] == "p2wsh-multisig-3of3")
    with pytest.raises(Bip322Invalid):
        bip322_sign.sign_p2wsh_multisig(bytes.fromhex(item["witness_script"]), _keys(item)[:2], b"m")


def test_taproot_signature_from_outside_is_checked() -> None:
    """A Taproot signature made elsewhere (e.g. by FROST) is checked before it is encoded."""
    output_key = taproot.output_key(ec.PrivateKey(b"\x01" * 32).get_public_key().xonly())
    with pytest.raises(Bip322Invalid):
        bip322_sign.assemble_p2tr(output_key, b"m", b"\x00" * 64)
