"""Threshold keys sign the proof: FROST Ed25519 signs statements and the log, FROST Taproot proves the hot key."""

from __future__ import annotations

import random
from pathlib import Path

from coffer.btc import bip322_sign
from coffer.btc import script as btc_script
from coffer.mpc import frost
from coffer.mpc.hazmat.dealer import trusted_dealer_keygen
from coffer.por.statement import PublicLog, sign_statement, solvency_statement
from coffer.por.verify import PublishedRoot, bip322_verify, reserves_challenge, verify_statement
from tests.por.kernel_bip322 import kernel_verify


def _threshold_signer(suite: frost.Ciphersuite, keys: list[frost.KeyPackage], public: frost.PublicKeyPackage,
                      signers: list[int], tweaks: tuple[frost.Tweak, ...] = ()):  # type: ignore[no-untyped-def]
    """sign(message) -> signature, made by `signers` co-signers in two rounds; no key is ever whole."""
    def sign(message: bytes) -> bytes:
        nonces, commitments = {}, []
        for identifier in signers:
            nonce, commitment = frost.commit(suite, keys[identifier - 1])
            nonces[identifier] = nonce
            commitments.append(commitment)
        package = frost.SigningPackage.create(commitments, message, tweaks)
        shares = {identifier: frost.sign(suite, keys[identifier - 1], nonces[identifier], package, message=message,
                                         tweaks=tweaks) for identifier in signers}
        return frost.aggregate(suite, public, package, shares)
    return sign


def test_frost_ed25519_group_key_signs_statement_and_log(tmp_path: Path) -> None:
    """Two of three co-signers sign the statement and the log entry; PyNaCl verifies under the group key."""
    suite = frost.ED25519
    keys, public = trusted_dealer_keygen(suite.group, 3, 2, rng=random.Random(3).randbytes)
    group_key = suite.group.serialize_element(public.group_public_key)
    sign = _threshold_signer(suite, keys, public, [1, 3])
    statement = solvency_statement("regtest", "cd" * 32, PublishedRoot("BTC", 7, b"\x02" * 32, 10, 4),
                                   {"asset": "BTC", "height": 7, "total": 11, "entries": []})
    verify_statement(statement, sign_statement(statement, sign), group_key)
    log = PublicLog(tmp_path / "log.jsonl", group_key)
    log.append(statement, sign)
    log.append(statement, _threshold_signer(suite, keys, public, [2, 3]))
    assert 2 == len(log.entries())


def test_frost_taproot_hot_key_proves_control() -> None:
    """The hot wallet's Taproot output key signs the challenge jointly; the kernel and the verifier accept it."""
    suite = frost.SECP256K1_TR
    keys, public = trusted_dealer_keygen(suite.group, 3, 2, rng=random.Random(4).randbytes)
    output_key, tweaks = frost.taproot_output_key(public)
    challenge = reserves_challenge("BTC", "regtest", 12, "ef" * 32)
    signature = _threshold_signer(suite, keys, public, [1, 2], tweaks)(bip322_sign.p2tr_sighash(output_key, challenge))
    proof = bip322_sign.assemble_p2tr(output_key, challenge, signature)
    from embit.networks import NETWORKS
    from embit.script import Script

    address = Script(btc_script.p2tr_script(output_key)).address(NETWORKS["regtest"])
    kernel_verify(address, challenge, proof)
    assert "simple" == bip322_verify(address, challenge, proof)


def test_threshold_ecdsa_hot_address_proves_control() -> None:
    """Two DKLs23 co-signers sign the challenge for the Ethereum hot address; the verifier accepts it."""
    from coffer.mpc.ecdsa.dealer import deal_key
    from coffer.mpc.ecdsa.hd import ethereum_address
    from coffer.mpc.ecdsa.local import pair_all, sign_locally
    from coffer.por import eth
    from coffer.por.verify import eth_verify

    rng = random.Random(6).randbytes
    _, shares = deal_key(b"eth-hot", 2, 3, rng)
    signers = {share.identifier: share for share in shares if share.identifier in (1, 3)}
    address = ethereum_address(shares[0].public_key)
    challenge = reserves_challenge("ETH", "ethereum", 99, "12" * 32)
    signature = sign_locally(signers, pair_all(sorted(signers), b"eth-hot", rng), eth.personal_digest(challenge))[1]
    encoded = eth.assemble(address, challenge, signature.r, signature.s, signature.recovery_id)
    eth_verify(address, challenge, encoded)
