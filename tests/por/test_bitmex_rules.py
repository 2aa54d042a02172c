"""The published BitMEX reserves file passes every rule of BitMEX's validator against a `coffer regtest` process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from coincurve import PrivateKey
from embit.bip32 import HDKey
from embit.networks import NETWORKS
from nacl.signing import SigningKey

from coffer.btc import bip322_sign, taproot
from coffer.btc import script as btc_script
from coffer.chain.descriptors import descriptor_scripts, script_to_address
from coffer.chain.regtest import RegtestNode
from coffer.cold.descriptor import BIP48_PATH, ColdWallet, KeyOrigin
from coffer.por.bitmex import reserves_yaml
from coffer.por.errors import BitmexFormatError
from coffer.por.publish import BitmexReservesOptions, publish_snapshot
from coffer.por.reserves import ControlProof, ReserveEntry, build_reserves_document
from coffer.por.verify import VerificationFailed, reserves_challenge, verify_reserves_document
from coffer.testing import ServiceProcess
from coffer.testing.processes import free_port
from tests.por.bitmex_rules import RuleBroken, check_reserves, rpc_2_0

# (branch, index) of each coinbase paid to the cold wallet before the snapshot: index 1 twice, a gap at 2
FUNDED = ((0, 0), (0, 1), (0, 1), (0, 3), (1, 0))
BLOCKS_AFTER_SNAPSHOT = 2


@dataclass(frozen=True)
class ColdSnapshot:
    yaml_text: str
    document: dict[str, Any]
    wallet: ColdWallet
    height: int
    block_hash: str
    rpc_url: str


def _cold_wallet() -> tuple[ColdWallet, list[HDKey]]:
    roots = [HDKey.from_seed(bytes([i + 11]) * 32, version=NETWORKS["regtest"]["xprv"]) for i in range(3)]
    path = BIP48_PATH["regtest"]
    keys = tuple(KeyOrigin(root.my_fingerprint.hex(), path, root.derive(f"m/{path}").to_public().to_base58())
                 for root in roots)
    return ColdWallet(2, keys), roots


def _cold_entries(node: RegtestNode, wallet: ColdWallet, roots: list[HDKey], challenge: bytes) -> list[ReserveEntry]:
    entries = []
    for branch, index in sorted(set(FUNDED)):
        script = wallet.script_pubkey(branch, index)
        secrets = [root.derive(f"m/{BIP48_PATH['regtest']}/{branch}/{index}").key.secret for root in roots[:2]]
        proof = bip322_sign.sign_p2wsh_multisig(wallet.witness_script(branch, index), secrets, challenge)
        balance = sum(coin.value_sats for _outpoint, coin in node.unspent([script]))
        entries.append(ReserveEntry(wallet.address(branch, index), balance, "cold", wallet.address_descriptor(branch, index),
                                    (ControlProof("cold quorum 1+2", proof),)))
    return entries


@pytest.fixture(scope="module")
def cold_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ColdSnapshot]:
    """A 2-of-3 xpub cold wallet and a hot Taproot key funded on regtest, published; the chain then grows
    past the snapshot and is served by a `coffer regtest` process."""
    base = tmp_path_factory.mktemp("bitmex")
    wallet, roots = _cold_wallet()
    hot_secret = bytes([9]) * 32
    hot_internal = PrivateKey(hot_secret).public_key.format()[1:]
    hot_script = btc_script.p2tr_script(taproot.output_key(hot_internal))
    node = RegtestNode(base / "chain")
    try:
        for branch, index in FUNDED:
            node.generate(1, wallet.script_pubkey(branch, index))
        node.generate(1, hot_script)
        height, block_hash = node.height, node.best_hash[::-1].hex()
        challenge = reserves_challenge("BTC", "regtest", height, block_hash)
        entries = _cold_entries(node, wallet, roots, challenge) + [ReserveEntry(
            str(script_to_address(hot_script)), sum(c.value_sats for _o, c in node.unspent([hot_script])), "hot",
            f"tr({hot_internal.hex()})", (ControlProof("hot key", bip322_sign.sign_p2tr(hot_secret, challenge)),))]
        document = build_reserves_document("BTC", "regtest", height, block_hash, entries,
                                           descriptors=[wallet.descriptor(0), wallet.descriptor(1)])
        signing_key = SigningKey(bytes([5]) * 32)
        options = BitmexReservesOptions(2, 3, (*(k.xpub for k in wallet.keys), hot_internal.hex()))
        publish_snapshot(base / "snapshot", chain="regtest", height=height, block_hash=block_hash,
                         liabilities={"BTC": [(1000, 5)]}, nonces={1000: bytes(32)}, reserves={"BTC": document},
                         sign=lambda message: bytes(signing_key.sign(message).signature),
                         public_key=bytes(signing_key.verify_key), log_path=base / "log.jsonl", bitmex=options)
        node.generate(BLOCKS_AFTER_SNAPSHOT, wallet.script_pubkey(0, 0))  # the tip holds more than the snapshot
    finally:
        node.close()
    port = free_port()
    service = ServiceProcess.python("regtest", ["regtest", "--datadir", str(base / "chain"), "--rpcport", str(port),
                                                "--rpcuser", "u", "--rpcpassword", "p"], workdir=base, port=port).start()
    try:
        yield ColdSnapshot((base / "snapshot" / "reserves-BTC.yaml").read_text(), document, wallet, height, block_hash,
                           f"http://u:p@127.0.0.1:{port}/")
    finally:
        service.stop()


def test_each_entry_carries_its_own_descriptor(cold_snapshot: ColdSnapshot) -> None:
    """Every cold entry's descriptor is not ranged, names its own index and derives exactly its address's script."""
    data = yaml.safe_load(cold_snapshot.yaml_text)
    cold = [entry for entry in data["address"] if entry["addr_type"] == "multisig_wsh"]
    assert [cold_snapshot.wallet.address_descriptor(b, i) for b, i in sorted(set(FUNDED))] == [e["script"] for e in cold]
    for entry in data["address"]:
        assert "*" not in entry["script"]
        [(script, _desc)] = descriptor_scripts(entry["script"])
        assert entry["addr"] == script_to_address(script)


def test_published_file_passes_every_bitmex_rule(cold_snapshot: ColdSnapshot) -> None:
    """No duplicates, an xpub in each descriptor, each balance equal to scantxoutset at the snapshot block."""
    rpc = rpc_2_0(cold_snapshot.rpc_url)
    checked = check_reserves(cold_snapshot.yaml_text, rpc)
    expected = {entry["address"]: entry["balance"] for entry in cold_snapshot.document["entries"]}
    assert (cold_snapshot.height, cold_snapshot.block_hash) == (checked.height, checked.block_hash)
    assert expected == dict(checked.balances)
    assert (cold_snapshot.document["total"], cold_snapshot.document["total"]) == (checked.claimed_sats,
                                                                                  checked.proven_sats)
    assert cold_snapshot.height + BLOCKS_AFTER_SNAPSHOT == rpc("getblockcount", [])  # brought back to its tip


def _pair(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return data["address"][0], data["address"][1]


MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "duplicate address": ("duplicate_address", lambda d: _pair(d)[1].update(addr=_pair(d)[0]["addr"])),
    "duplicate script": ("duplicate_script", lambda d: _pair(d)[1].update(script=_pair(d)[0]["script"])),
    "no xpub": ("xpub_missing", lambda d: d.update(xpub=d["xpub"][-1:])),  # only the hot key left
    "total": ("total", lambda d: d.update(total=d["total"] + 1)),
    "other chain": ("chain", lambda d: d.update(chain="test")),
    "future height": ("height", lambda d: d.update(height=d["height"] + BLOCKS_AFTER_SNAPSHOT + 1)),
    "later height": ("balance", lambda d: d.update(height=d["height"] + 1)),
    "balance moved": ("balance", lambda d: [_pair(d)[0].update(balance=_pair(d)[0]["balance"] + 1),
                                            _pair(d)[1].update(balance=_pair(d)[1]["balance"] - 1)]),
    "claim too high": ("balance", lambda d: [_pair(d)[0].update(balance=_pair(d)[0]["balance"] + 1),
                                             d.update(total=d["total"] + 1)]),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_rule_refuses_its_breach(cold_snapshot: ColdSnapshot, name: str) -> None:
    """A file changed to break one rule is refused by that rule, and the node ends at its tip."""
    rule, change = MUTATIONS[name]
    data = yaml.safe_load(cold_snapshot.yaml_text)
    change(data)
    rpc = rpc_2_0(cold_snapshot.rpc_url)
    with pytest.raises(RuleBroken) as refused:
        check_reserves(yaml.safe_dump(data), rpc)
    assert rule == refused.value.rule
    assert cold_snapshot.height + BLOCKS_AFTER_SNAPSHOT == rpc("getblockcount", [])


def _ranged(document: dict[str, Any], wallet: ColdWallet) -> dict[str, Any]:
    """The old format: every cold entry carries the wallet's ranged receive descriptor."""
    ranged = json.loads(json.dumps(document))
    for entry in ranged["entries"]:
        if entry["kind"] == "cold":
            entry["descriptor"] = wallet.descriptor(0)
    return ranged


def test_ranged_descriptor_per_address_is_refused_everywhere(cold_snapshot: ColdSnapshot) -> None:
    """The shared ranged descriptor BitMEX's tool refuses as duplicate scripts: our writer and coffer-verify refuse it."""
    ranged = _ranged(cold_snapshot.document, cold_snapshot.wallet)
    data = yaml.safe_load(cold_snapshot.yaml_text)
    for entry, item in zip(data["address"], ranged["entries"], strict=True):
        entry["script"] = item["descriptor"]
    with pytest.raises(RuleBroken) as refused:
        check_reserves(yaml.safe_dump(data), rpc_2_0(cold_snapshot.rpc_url))
    assert "duplicate_script" == refused.value.rule
    with pytest.raises(BitmexFormatError, match="ranged descriptor"):
        reserves_yaml(ranged, threshold=2, signer_count=3, key_strings=data["xpub"])
    with pytest.raises(VerificationFailed, match="not ranged"):
        verify_reserves_document(ranged)


def test_verifier_refuses_a_descriptor_of_another_address(cold_snapshot: ColdSnapshot) -> None:
    """coffer-verify refuses an entry whose descriptor derives another address's script."""
    swapped = json.loads(json.dumps(cold_snapshot.document))
    swapped["entries"][0]["descriptor"] = cold_snapshot.wallet.address_descriptor(0, 2)
    with pytest.raises(VerificationFailed, match="does not derive the address's script"):
        verify_reserves_document(swapped)


def test_verifier_refuses_a_wrong_descriptor_checksum(cold_snapshot: ColdSnapshot) -> None:
    """coffer-verify refuses a descriptor whose checksum does not match."""
    changed = json.loads(json.dumps(cold_snapshot.document))
    body, _sep, given = changed["entries"][0]["descriptor"].partition("#")
    changed["entries"][0]["descriptor"] = f"{body}#{'q' if given[0] != 'q' else 'p'}{given[1:]}"
    with pytest.raises(VerificationFailed, match="checksum"):
        verify_reserves_document(changed)
