"""RFC 9591 Appendix E vectors, every intermediate value, for FROST(Ed25519) and FROST(secp256k1)."""

from __future__ import annotations

from typing import Any

import pytest

from coffer.mpc import frost
from coffer.mpc.frost.ciphersuite import Rfc9591Ciphersuite, encode_group_commitment_list
from coffer.mpc.frost.round2 import SigningPackage
from coffer.mpc.hazmat.dealer import key_packages_from_coefficients, recover_secret, vss_commit, vss_verify

from .frost_helpers import fixed_rng, independent_verify, load_json

CASES = [
    pytest.param(frost.ED25519, "rfc9591/frost-ed25519-sha512.json", id="ed25519"),
    pytest.param(frost.SECP256K1, "rfc9591/frost-secp256k1-sha256.json", id="secp256k1"),
]


def _setup(suite: Rfc9591Ciphersuite, vector: dict[str, Any]) -> tuple[list[frost.KeyPackage], frost.PublicKeyPackage]:
    group = suite.group
    inputs = vector["inputs"]
    coefficients = [group.deserialize_scalar(bytes.fromhex(inputs["group_secret_key"]))] + [
        group.deserialize_scalar(bytes.fromhex(value)) for value in inputs["share_polynomial_coefficients"]]
    return key_packages_from_coefficients(group, coefficients, int(vector["config"]["MAX_PARTICIPANTS"]))


@pytest.mark.parametrize(("suite", "path"), CASES)
def test_dealer_shares_match_vector(suite: Rfc9591Ciphersuite, path: str) -> None:
    """The dealer's shares, group key and VSS commitment match the vector's key setup."""
    vector = load_json(path)
    group = suite.group
    key_packages, public = _setup(suite, vector)
    inputs = vector["inputs"]
    assert inputs["group_public_key"] == group.serialize_element(public.group_public_key).hex()
    for expected, package in zip(inputs["participant_shares"], key_packages, strict=True):
        assert expected["identifier"] == package.identifier
        assert expected["participant_share"] == group.serialize_scalar(package.secret_share).hex()
    secret = group.deserialize_scalar(bytes.fromhex(inputs["group_secret_key"]))
    coefficients = [secret] + [group.deserialize_scalar(bytes.fromhex(value))
                               for value in inputs["share_polynomial_coefficients"]]
    commitment = vss_commit(group, coefficients)
    for package in key_packages:
        assert vss_verify(group, package.identifier, package.secret_share, commitment)
    pairs = [(package.identifier, package.secret_share) for package in key_packages[:2]]
    assert secret == recover_secret(group, pairs)


@pytest.mark.parametrize(("suite", "path"), CASES)
def test_signing_matches_every_intermediate_value(suite: Rfc9591Ciphersuite, path: str) -> None:
    """Nonces, commitments, binding factor inputs and factors, shares and signature match."""
    vector = load_json(path)
    group = suite.group
    key_packages, public = _setup(suite, vector)
    message = bytes.fromhex(vector["inputs"]["message"])
    nonces_by_id = {}
    commitments = []
    for output in vector["round_one_outputs"]["outputs"]:
        package = key_packages[output["identifier"] - 1]
        hiding_random = bytes.fromhex(output["hiding_nonce_randomness"])
        binding_random = bytes.fromhex(output["binding_nonce_randomness"])
        assert output["hiding_nonce"] == group.serialize_scalar(
            suite.nonce_generate(package.secret_share, hiding_random)).hex()
        assert output["binding_nonce"] == group.serialize_scalar(
            suite.nonce_generate(package.secret_share, binding_random)).hex()
        nonces, commitment = frost.commit(suite, package, rng=fixed_rng([hiding_random, binding_random]))
        assert output["hiding_nonce_commitment"] == group.serialize_element(commitment.hiding).hex()
        assert output["binding_nonce_commitment"] == group.serialize_element(commitment.binding).hex()
        nonces_by_id[package.identifier] = nonces
        commitments.append(commitment)
    signing_package = SigningPackage.create(commitments, message)
    prefix = suite.binding_factor_prefix(public.group_public_key, signing_package.commitments, message)
    factors = suite.binding_factors(public.group_public_key, signing_package.commitments, message)
    for output in vector["round_one_outputs"]["outputs"]:
        identifier = output["identifier"]
        assert output["binding_factor_input"] == (prefix + group.serialize_scalar(identifier)).hex()
        assert output["binding_factor"] == group.serialize_scalar(factors[identifier]).hex()
    assert encode_group_commitment_list(group, signing_package.commitments)
    shares = {}
    for output in vector["round_two_outputs"]["outputs"]:
        identifier = output["identifier"]
        share = frost.sign(suite, key_packages[identifier - 1], nonces_by_id[identifier], signing_package,
                           message=message)
        assert output["sig_share"] == share.to_bytes(group).hex()
        frost.verify_signature_share(suite, public, signing_package, share)
        shares[identifier] = share
    signature = frost.aggregate(suite, public, signing_package, shares)
    assert vector["final_output"]["sig"] == signature.hex()
    frost.verify_signature(suite, public.group_public_key, message, signature)
    independent_verify(suite, public.group_public_key, message, signature)
