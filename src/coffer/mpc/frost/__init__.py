"""FROST threshold Schnorr signatures (RFC 9591 and BIP-340/Taproot per the BIP-FROST signing draft).

The safe API, written once over a ciphersuite:

    nonces, commitments = commit(suite, key_package)            # round 1, per signer
    package = SigningPackage.create(all_commitments, message, tweaks)   # coordinator
    share = sign(suite, key_package, nonces, package, message=message, tweaks=tweaks)  # round 2, consumes nonces
    verify_signature_share(suite, public, package, share)       # aggregator, names the culprit
    signature = aggregate(suite, public, package, shares_by_id)  # verified before it is returned
    verify_signature(suite, suite.signing_key(public, tweaks), message, signature)

Ciphersuites: ED25519 (FROST(Ed25519, SHA-512): RFC 8032 signatures), SECP256K1 (FROST(secp256k1,
SHA-256): 65-byte signatures), SECP256K1_TR (BIP-340 signatures, with BIP-32 / BIP-341 tweaks).
Keys are plain Shamir shares in a `KeyPackage` (identifier, secret scalar, `PublicKeyPackage`),
as a DKG outputs them. Nonces are hedged and single-use; nothing here is deterministic.
"""

from __future__ import annotations

from typing import Final

from coffer.mpc.frost.aggregate import aggregate, verify_signature_share
from coffer.mpc.frost.ciphersuite import (
    ED25519_SHA512,
    SECP256K1_SHA256,
    Ciphersuite,
    Ed25519Sha512,
    Secp256k1Sha256,
    Tweak,
)
from coffer.mpc.frost.keys import PARTICIPANTS_MAX, KeyPackage, PublicKeyPackage
from coffer.mpc.frost.round1 import SigningCommitments, SigningNonces, commit
from coffer.mpc.frost.round2 import MESSAGE_BYTES_MAX, SignatureShare, SigningPackage, sign
from coffer.mpc.frost.taproot import (
    SECP256K1_TR,
    Secp256k1Taproot,
    bip32_tweak,
    taproot_output_key,
    taproot_tweak,
)
from coffer.mpc.frost.verify import verify_signature
from coffer.mpc.hazmat.group import Element

__all__ = [
    "ED25519",
    "SECP256K1",
    "SECP256K1_TR",
    "SUITES",
    "Ciphersuite",
    "Ed25519Sha512",
    "Secp256k1Sha256",
    "Secp256k1Taproot",
    "KeyPackage",
    "PublicKeyPackage",
    "SigningNonces",
    "SigningCommitments",
    "SigningPackage",
    "SignatureShare",
    "Tweak",
    "Element",
    "PARTICIPANTS_MAX",
    "MESSAGE_BYTES_MAX",
    "commit",
    "sign",
    "aggregate",
    "verify_signature_share",
    "verify_signature",
    "taproot_tweak",
    "taproot_output_key",
    "bip32_tweak",
]

ED25519: Final = ED25519_SHA512
SECP256K1: Final = SECP256K1_SHA256
SUITES: Final[dict[str, Ciphersuite]] = {
    suite.name: suite for suite in (ED25519_SHA512, SECP256K1_SHA256, SECP256K1_TR)}
