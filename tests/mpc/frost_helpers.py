"""Shared helpers for the FROST tests: vector loading, fixed randomness, independent verifiers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import coincurve
import nacl.signing

from coffer.mpc import frost
from coffer.mpc.hazmat.group import Element

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load_json(relative: str) -> Any:
    return json.loads((VECTORS / relative).read_text())


def fixed_rng(chunks: list[bytes]) -> Callable[[int], bytes]:
    """A randomness source that returns the given chunks in order (for vectors)."""
    iterator: Iterator[bytes] = iter(chunks)

    def rng(length: int) -> bytes:
        chunk = next(iterator)
        assert length == len(chunk)
        return chunk

    return rng


def independent_verify(suite: frost.Ciphersuite, public_key: Element, message: bytes, signature: bytes) -> None:
    """Verify with a library other than ours: PyNaCl for Ed25519, coincurve for BIP-340."""
    if suite is frost.ED25519:
        nacl.signing.VerifyKey(public_key.encoding).verify(message, signature)
    elif suite is frost.SECP256K1_TR:
        assert coincurve.PublicKeyXOnly(public_key.encoding[1:]).verify(signature, message)
    else:
        # FROST(secp256k1, SHA-256) has no independent implementation at hand; check the
        # Schnorr equation with coincurve's arithmetic instead of ours.
        commitment = coincurve.PublicKey(signature[:33])
        response = signature[33:]
        challenge = frost.SECP256K1.compute_challenge(
            frost.SECP256K1.group.deserialize_element(signature[:33]), public_key, message)
        left = coincurve.PublicKey.from_secret(response)
        right = coincurve.PublicKey.combine_keys([
            commitment, coincurve.PublicKey(public_key.encoding).multiply(challenge.to_bytes(32, "big"))])
        assert left.format() == right.format()


SUITES = [frost.ED25519, frost.SECP256K1, frost.SECP256K1_TR]
SUITE_IDS = ["ed25519", "secp256k1", "secp256k1-tr"]


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    """Reproducible randomness for tests (never for production)."""
    import random

    generator = random.Random(seed)
    return generator.randbytes


def dealer(suite: frost.Ciphersuite, max_signers: int = 5, min_signers: int = 3,
           seed: int = 1) -> tuple[list[frost.KeyPackage], frost.PublicKeyPackage]:
    from coffer.mpc.hazmat.dealer import trusted_dealer_keygen

    return trusted_dealer_keygen(suite.group, max_signers, min_signers, rng=seeded_rng(seed))


def round_one(suite: frost.Ciphersuite, key_packages: list[frost.KeyPackage], signers: list[int],
              message: bytes, tweaks: tuple[frost.Tweak, ...] = (), seed: int = 2
              ) -> tuple[dict[int, frost.SigningNonces], frost.SigningPackage]:
    rng = seeded_rng(seed)
    nonces = {}
    commitments = []
    for identifier in signers:
        nonce, commitment = frost.commit(suite, key_packages[identifier - 1], rng=rng)
        nonces[identifier] = nonce
        commitments.append(commitment)
    return nonces, frost.SigningPackage.create(commitments, message, tweaks)


def sign_all(suite: frost.Ciphersuite, key_packages: list[frost.KeyPackage], signers: list[int],
             message: bytes, tweaks: tuple[frost.Tweak, ...] = (), seed: int = 2
             ) -> tuple[frost.SigningPackage, dict[int, frost.SignatureShare]]:
    nonces, package = round_one(suite, key_packages, signers, message, tweaks, seed)
    shares = {identifier: frost.sign(suite, key_packages[identifier - 1], nonces[identifier], package,
                                     message=message, tweaks=tweaks)
              for identifier in signers}
    return package, shares
