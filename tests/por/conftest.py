"""A complete published snapshot on the embedded regtest chain, served over Core's JSON-RPC."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from coincurve import PrivateKey
from embit.script import Script
from nacl.signing import SigningKey

from coffer.btc import bip322_sign, taproot
from coffer.btc import script as btc_script
from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
from coffer.por.publish import BitmexReservesOptions, SnapshotResult, publish_snapshot
from coffer.por.reserves import ControlProof, KeyProof, ReserveEntry, build_reserves_document
from coffer.por.verify import reserves_challenge, rpc_client

CHAIN = "regtest"


def _address(script_pubkey: bytes) -> str:
    from embit.networks import NETWORKS

    return Script(script_pubkey).address(NETWORKS["regtest"])


def multisig_script(pubkeys: list[bytes], threshold: int) -> bytes:
    body = b"".join(b"\x21" + key for key in pubkeys)
    return bytes([0x50 + threshold]) + body + bytes([0x50 + len(pubkeys), 0xAE])


@dataclass
class Published:
    result: SnapshotResult
    directory: Path
    proofs_dir: Path
    log_path: Path
    group_key: bytes
    signing_key: SigningKey
    nonces: dict[int, bytes]
    balances: dict[int, int]
    rpc_url: str
    node: RegtestNode


def random_bytes(seed: int):  # type: ignore[no-untyped-def]
    generator = random.Random(seed)
    return generator.randbytes


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """Cold 2-of-3 P2WSH, a hot Taproot key and a P2WPKH address funded on regtest; 40 clients."""
    base = tmp_path_factory.mktemp("por")
    node = RegtestNode(base / "node")
    server = RpcServer(RpcDispatcher(node), rpcuser="u", rpcpassword="p").start()
    try:
        signers = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]
        pubkeys = sorted(key.public_key.format() for key in signers)
        witness_script = multisig_script(pubkeys, 2)
        hot_secret = bytes([9]) * 32
        hot_internal = PrivateKey(hot_secret).public_key.format()[1:]
        hot_output = taproot.output_key(hot_internal)
        float_secret = bytes([7]) * 32
        float_pub = PrivateKey(float_secret).public_key.format()
        scripts = {"cold": btc_script.p2wsh_script(witness_script), "hot": btc_script.p2tr_script(hot_output),
                   "deposit": btc_script.p2wpkh_script(float_pub)}
        for kind in ("cold", "cold", "hot", "deposit"):
            node.generate(1, scripts[kind])
        node.generate(1)
        height, block_hash = node.height, node.best_hash[::-1].hex()
        rpc = rpc_client(f"http://u:p@127.0.0.1:{server.port}/")
        challenge = reserves_challenge("BTC", CHAIN, height, block_hash)
        descriptors = {"cold": f"wsh(multi(2,{','.join(k.hex() for k in pubkeys)}))", "hot": f"tr({hot_internal.hex()})",
                       "deposit": f"wpkh({float_pub.hex()})"}
        proofs = {
            "cold": ControlProof("cold quorum 1+2", bip322_sign.sign_p2wsh_multisig(
                witness_script, [s.secret for s in signers[:2]], challenge)),
            "hot": ControlProof("hot key (FROST group)", bip322_sign.sign_p2tr(hot_secret, challenge)),
            "deposit": ControlProof("deposit key", bip322_sign.sign_p2wpkh(float_secret, challenge, full=True)),
        }
        entries = []
        for kind, script in scripts.items():
            address = _address(script)
            found = rpc("scantxoutset", ["start", [f"addr({address})"]])
            from coffer.por.verify import _btc_to_sats

            entries.append(ReserveEntry(address, _btc_to_sats(found["total_amount"]), kind, descriptors[kind],
                                        (proofs[kind],)))
        key_proofs = [KeyProof(f"signer {i}", _address(btc_script.p2wpkh_script(s.public_key.format())),
                               bip322_sign.sign_p2wpkh(s.secret, challenge)) for i, s in enumerate(signers)]
        document = build_reserves_document("BTC", CHAIN, height, block_hash, entries,
                                           descriptors=[descriptors["cold"]], key_proofs=key_proofs)
        rng = random_bytes(7)
        nonces = {account: rng(32) for account in range(1000, 1040)}
        balances = {account: (account * 7919) % 50_000_000 for account in nonces}
        balances[1005] = 0
        signing_key = SigningKey(bytes([5]) * 32)
        directory, proofs_dir, log_path = base / "snapshot", base / "private", base / "public" / "log.jsonl"

        def sign(message: bytes) -> bytes:
            return bytes(signing_key.sign(message).signature)

        result = publish_snapshot(
            directory, chain=CHAIN, height=height, block_hash=block_hash,
            liabilities={"BTC": sorted(balances.items())}, nonces=nonces, reserves={"BTC": document}, sign=sign,
            public_key=bytes(signing_key.verify_key), log_path=log_path, proofs_dir=proofs_dir,
            bitmex=BitmexReservesOptions(2, 3, tuple(k.hex() for k in pubkeys) + (hot_internal.hex(), float_pub.hex())),
            rng=os.urandom)
        yield Published(result, directory, proofs_dir, log_path, bytes(signing_key.verify_key), signing_key, nonces,
                        balances, f"http://u:p@127.0.0.1:{server.port}/", node)
    finally:
        server.close()
        node.close()
