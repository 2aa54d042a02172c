"""End-to-end FROST signing, generic over the three ciphersuites, and its refusals."""

from __future__ import annotations

import copy
import itertools
import pickle

import coincurve
import pytest

from coffer.mpc import errors, frost
from coffer.mpc.frost.keys import lagrange_coefficient
from coffer.mpc.frost.taproot import apply_tweaks
from coffer.mpc.hazmat.dealer import trusted_dealer_keygen

from .frost_helpers import SUITE_IDS, SUITES, dealer, independent_verify, round_one, seeded_rng, sign_all

MESSAGE = bytes(range(32))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_every_signer_subset_signs(suite: frost.Ciphersuite) -> None:
    """Every 3-subset (and the full set) of a 3-of-5 key makes a signature valid for us and an independent verifier."""
    key_packages, public = dealer(suite)
    subsets = [list(s) for s in itertools.combinations(range(1, 6), 3)] + [[1, 2, 3, 4, 5]]
    for index, signers in enumerate(subsets):
        package, shares = sign_all(suite, key_packages, signers, MESSAGE, seed=index)
        for share in shares.values():
            frost.verify_signature_share(suite, public, package, share)
        signature = frost.aggregate(suite, public, package, shares)
        assert suite.signature_length == len(signature)
        key = suite.signing_key(public, ())
        frost.verify_signature(suite, key, MESSAGE, signature)
        independent_verify(suite, key, MESSAGE, signature)


@pytest.mark.parametrize("suite", [frost.ED25519], ids=["ed25519"])
def test_ed25519_signs_messages_of_any_length(suite: frost.Ciphersuite) -> None:
    """Ed25519 FROST signs empty and long messages, verifiable by libsodium."""
    key_packages, public = dealer(suite, 3, 2)
    for message in (b"", b"x", bytes(1000)):
        package, shares = sign_all(suite, key_packages, [1, 3], message)
        signature = frost.aggregate(suite, public, package, shares)
        independent_verify(suite, public.group_public_key, message, signature)


def _keys_with_parity(even: bool) -> tuple[list[frost.KeyPackage], frost.PublicKeyPackage]:
    for seed in range(100):
        key_packages, public = dealer(frost.SECP256K1_TR, seed=seed)
        if frost.SECP256K1_TR.group.has_even_y(public.group_public_key) == even:
            return key_packages, public
    raise AssertionError("no key of that parity")


@pytest.mark.parametrize("even", [True, False], ids=["even-y-key", "odd-y-key"])
def test_taproot_tweaks_verify_with_libsecp256k1(even: bool) -> None:
    """BIP-32 plain and BIP-341 x-only tweaks give signatures coincurve accepts under the tweaked key."""
    suite = frost.SECP256K1_TR
    group = suite.group
    key_packages, public = _keys_with_parity(even)
    derived, _chain = frost.bip32_tweak(public.group_public_key, bytes(range(32)), 7)
    plain_key = apply_tweaks(public.group_public_key, (derived,)).key
    taproot = frost.taproot_tweak(plain_key)
    for seed, tweaks in enumerate([(), (taproot,), (derived,), (derived, taproot)]):
        package, shares = sign_all(suite, key_packages, [2, 4, 5], MESSAGE, tweaks, seed=seed)
        signature = frost.aggregate(suite, public, package, shares)
        key = suite.signing_key(public, tweaks)
        assert coincurve.PublicKeyXOnly(group.x_bytes(key)).verify(signature, MESSAGE)
    # The BIP-341 output key computed by libsecp256k1 is the key we signed for.
    internal = coincurve.PublicKeyXOnly(group.x_bytes(plain_key))
    internal.tweak_add(taproot.value)  # mutates in place
    assert internal.format() == group.x_bytes(suite.signing_key(public, (derived, taproot)))


def test_taproot_nonce_parities_are_all_exercised() -> None:
    """Across sessions both parities of R occur and every signature verifies (nonce negation works)."""
    suite = frost.SECP256K1_TR
    key_packages, public = dealer(suite, 3, 2)
    parities = set()
    for seed in range(8):
        package, shares = sign_all(suite, key_packages, [1, 2], MESSAGE, seed=seed)
        session = suite.session(public, package.commitments, MESSAGE, ())
        parities.add(session.nonce_factor == 1)
        frost.aggregate(suite, public, package, shares)
    assert {True, False} == parities


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_bad_share_names_its_sender(suite: frost.Ciphersuite) -> None:
    """A corrupted share is refused by share verification and by aggregation, naming only its sender."""
    key_packages, public = dealer(suite)
    package, shares = sign_all(suite, key_packages, [1, 3, 5], MESSAGE)
    order = suite.group.order
    shares[3] = frost.SignatureShare(3, (shares[3].value + 1) % order)
    with pytest.raises(errors.InvalidSignatureShare) as raised:
        frost.verify_signature_share(suite, public, package, shares[3])
    assert (3,) == raised.value.culprits
    frost.verify_signature_share(suite, public, package, shares[1])
    with pytest.raises(errors.InvalidSignatureShare) as raised:
        frost.aggregate(suite, public, package, shares)
    assert (3,) == raised.value.culprits
    shares[5] = frost.SignatureShare(5, shares[1].value)
    with pytest.raises(errors.InvalidSignatureShare) as raised:
        frost.aggregate(suite, public, package, shares)
    assert (3, 5) == raised.value.culprits


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_nonces_cannot_be_used_twice(suite: frost.Ciphersuite) -> None:
    """A second sign with the same nonces raises NonceReuse; nonces cannot be copied or pickled."""
    key_packages, _public = dealer(suite, 3, 2)
    nonces, package = round_one(suite, key_packages, [1, 2], MESSAGE)
    frost.sign(suite, key_packages[0], nonces[1], package, message=MESSAGE)
    assert nonces[1].used
    with pytest.raises(errors.NonceReuse):
        frost.sign(suite, key_packages[0], nonces[1], package, message=MESSAGE)
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError):
            duplicate(nonces[2])
    assert "redacted" in repr(nonces[2])
    with pytest.raises(TypeError):
        frost.SigningNonces(object(), suite.name, 1, 1, nonces[2].commitments)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_refused_signing_still_burns_the_nonces(suite: frost.Ciphersuite) -> None:
    """A sign call refused for a bad package has consumed the nonces all the same."""
    key_packages, _public = dealer(suite, 3, 2)
    nonces, package = round_one(suite, key_packages, [1, 2], MESSAGE)
    with pytest.raises(errors.InvalidMessage):
        frost.sign(suite, key_packages[0], nonces[1], package, message=b"another message")
    with pytest.raises(errors.NonceReuse):
        frost.sign(suite, key_packages[0], nonces[1], package, message=MESSAGE)


def _nonces_for(suite: frost.Ciphersuite, key_package: frost.KeyPackage) -> frost.SigningNonces:
    return frost.commit(suite, key_package, rng=seeded_rng(key_package.identifier))[0]


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_signer_refuses_inconsistent_packages(suite: frost.Ciphersuite) -> None:
    """Fewer than t signers, a signer outside the set, or its own commitment altered are refused."""
    key_packages, _public = dealer(suite)
    nonces, package = round_one(suite, key_packages, [1, 2], MESSAGE)
    with pytest.raises(errors.InsufficientSigners):
        frost.sign(suite, key_packages[0], nonces[1], package, message=MESSAGE)
    nonces, package = round_one(suite, key_packages, [1, 2, 3], MESSAGE, seed=5)
    with pytest.raises(errors.InvalidIdentifier):
        frost.sign(suite, key_packages[3], _nonces_for(suite, key_packages[3]), package, message=MESSAGE)
    nonces, package = round_one(suite, key_packages, [1, 2, 3], MESSAGE, seed=6)
    other_nonces, other_package = round_one(suite, key_packages, [1, 2, 3], MESSAGE, seed=9)
    mixed = frost.SigningPackage.create(
        [other_package.commitment(1), package.commitment(2), package.commitment(3)], MESSAGE)
    with pytest.raises(errors.InvalidMessage) as raised:
        frost.sign(suite, key_packages[0], nonces[1], mixed, message=MESSAGE)
    assert raised.value.sender is None
    del other_nonces


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_duplicate_identifiers_are_refused(suite: frost.Ciphersuite) -> None:
    """A commitment list naming a signer twice is refused when built and when aggregated."""
    key_packages, public = dealer(suite)
    _nonces, package = round_one(suite, key_packages, [1, 2, 3], MESSAGE)
    with pytest.raises(errors.DuplicateIdentifier) as raised:
        frost.SigningPackage.create([*package.commitments, package.commitment(2)], MESSAGE)
    assert 2 == raised.value.identifier
    with pytest.raises(errors.DuplicateIdentifier):
        lagrange_coefficient(suite.group, [1, 2, 2], 1)
    del public


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_aggregation_refuses_missing_and_foreign_shares(suite: frost.Ciphersuite) -> None:
    """A missing share, a share from outside the set and a too-small set are refused before summing."""
    key_packages, public = dealer(suite)
    package, shares = sign_all(suite, key_packages, [1, 2, 3], MESSAGE)
    partial = {identifier: shares[identifier] for identifier in (1, 2)}
    with pytest.raises(errors.InsufficientSigners):
        frost.aggregate(suite, public, package, partial)
    foreign = {**shares, 4: frost.SignatureShare(4, 1)}
    with pytest.raises(errors.InvalidIdentifier):
        frost.aggregate(suite, public, package, foreign)
    with pytest.raises(errors.InvalidSignatureShare) as raised:
        frost.verify_signature_share(suite, public, package, frost.SignatureShare(4, 1))
    assert (4,) == raised.value.culprits


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_signature_for_another_message_or_key_fails(suite: frost.Ciphersuite) -> None:
    """A valid signature does not verify for another message or another key."""
    key_packages, public = dealer(suite, 3, 2)
    package, shares = sign_all(suite, key_packages, [1, 2], MESSAGE)
    signature = frost.aggregate(suite, public, package, shares)
    key = suite.signing_key(public, ())
    with pytest.raises(errors.InvalidSignature):
        frost.verify_signature(suite, key, MESSAGE[:-1] + b"\xff", signature)
    _other_packages, other_public = trusted_dealer_keygen(suite.group, 3, 2, rng=seeded_rng(77))
    with pytest.raises(errors.InvalidSignature):
        frost.verify_signature(suite, suite.signing_key(other_public, ()), MESSAGE, signature)


def test_rfc_suites_refuse_tweaks() -> None:
    """Tweaks exist only for the Taproot ciphersuite."""
    key_packages, public = dealer(frost.ED25519, 3, 2)
    tweak = frost.Tweak(bytes(31) + b"\x01", False)
    with pytest.raises(errors.InvalidParameters):
        frost.ED25519.signing_key(public, (tweak,))
    del key_packages


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_non_contiguous_identifiers_sign(suite: frost.Ciphersuite) -> None:
    """A key whose holders keep identifiers {1, 2, 4, 5, 9} (as after re-sharing without 3) signs."""
    from coffer.mpc.hazmat.dealer import evaluate_polynomial

    group = suite.group
    rng = seeded_rng(5)
    coefficients = [group.random_scalar(rng) for _ in range(3)]
    shares = {i: evaluate_polynomial(group, coefficients, i) for i in (1, 2, 4, 5, 9)}
    public = frost.PublicKeyPackage.from_encoded(
        group, 3, group.serialize_element(group.base_mul(coefficients[0])),
        {i: group.serialize_element(group.base_mul(value)) for i, value in shares.items()})
    assert (1, 2, 4, 5, 9) == public.identifiers
    packages = {i: frost.KeyPackage(i, value, public) for i, value in shares.items()}
    rng = seeded_rng(6)
    nonces, commitments = {}, []
    for identifier in (2, 5, 9):
        nonces[identifier], commitment = frost.commit(suite, packages[identifier], rng=rng)
        commitments.append(commitment)
    package = frost.SigningPackage.create(commitments, MESSAGE)
    signature_shares = {i: frost.sign(suite, packages[i], nonces[i], package, message=MESSAGE) for i in (2, 5, 9)}
    signature = frost.aggregate(suite, public, package, signature_shares)
    independent_verify(suite, suite.signing_key(public, ()), MESSAGE, signature)
    assert public == frost.PublicKeyPackage.from_bytes(public.to_bytes())
    with pytest.raises(errors.InvalidIdentifier):
        frost.KeyPackage(3, shares[1], public)


def test_taproot_key_path_output_key() -> None:
    """taproot_output_key gives libsecp256k1's BIP-341 output key, and signing with its tweaks verifies under it."""
    suite = frost.SECP256K1_TR
    key_packages, public = _keys_with_parity(False)
    output_key, tweaks = frost.taproot_output_key(public)
    internal = coincurve.PublicKeyXOnly(suite.group.x_bytes(public.group_public_key))
    internal.tweak_add(frost.taproot_tweak(public.group_public_key).value)
    assert internal.format() == output_key
    package, shares = sign_all(suite, key_packages, [1, 2, 3], MESSAGE, tweaks)
    signature = frost.aggregate(suite, public, package, shares)
    assert coincurve.PublicKeyXOnly(output_key).verify(signature, MESSAGE)


def test_key_material_of_another_group_is_refused() -> None:
    """An Ed25519 key package used with a secp256k1 ciphersuite is a typed error, not a crash."""
    key_packages, public = dealer(frost.ED25519, 3, 2)
    with pytest.raises(errors.InvalidParameters):
        frost.commit(frost.SECP256K1, key_packages[0])
    with pytest.raises(errors.InvalidSignature):
        frost.verify_signature(frost.SECP256K1_TR, public.group_public_key, MESSAGE, bytes(64))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_nonces_are_hedged(suite: frost.Ciphersuite) -> None:
    """Nonces mix fresh randomness with the secret: a stuck RNG still gives each share its own nonces."""
    key_packages, _public = dealer(suite, 3, 2)

    def stuck(length: int) -> bytes:
        return bytes(length)

    first = frost.commit(suite, key_packages[0], rng=stuck)[1]
    second = frost.commit(suite, key_packages[1], rng=stuck)[1]
    assert first.hiding != second.hiding
    fresh = [frost.commit(suite, key_packages[0])[1] for _ in range(2)]
    assert fresh[0].hiding != fresh[1].hiding
    assert fresh[0].binding != fresh[1].binding


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_stuck_rng_still_gives_each_message_its_own_nonces(suite: frost.Ciphersuite) -> None:
    """With a repeating RNG, the message and session id mixed into the nonce keep two sessions apart."""
    key_packages, _public = dealer(suite, 3, 2)

    def stuck(length: int) -> bytes:
        return bytes(length)

    one = frost.commit(suite, key_packages[0], rng=stuck, extra=b"session-1" + b"message-a")[1]
    other = frost.commit(suite, key_packages[0], rng=stuck, extra=b"session-2" + b"message-a")[1]
    again = frost.commit(suite, key_packages[0], rng=stuck, extra=b"session-1" + b"message-a")[1]
    assert one.hiding != other.hiding
    assert one.binding != other.binding
    assert one.hiding == again.hiding  # the same input: the RNG is the only other source


def test_used_nonces_are_wiped() -> None:
    """After signing, the nonce bytes held by SigningNonces are zero."""
    suite = frost.SECP256K1_TR
    key_packages, _public = dealer(suite, 3, 2)
    nonces, package = round_one(suite, key_packages, [1, 2], MESSAGE)
    frost.sign(suite, key_packages[0], nonces[1], package, message=MESSAGE)
    assert bytes(64) == bytes(nonces[1]._secret)
