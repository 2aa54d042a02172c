"""Strict parsing of every FROST wire type: round trips, refusals naming the sender, one-byte changes."""

from __future__ import annotations

from functools import cache

import nacl.bindings as sodium
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.mpc import errors, frost
from coffer.mpc.hazmat.group import ED25519 as ED25519_GROUP

from .frost_helpers import SUITE_IDS, SUITES, dealer, independent_verify, round_one, sign_all

MESSAGE = b"withdrawal 42: 0.5 BTC to bc1p..."
TORSION = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _keys(suite: frost.Ciphersuite) -> tuple[list[frost.KeyPackage], frost.PublicKeyPackage]:
    return dealer(suite, 4, 3, seed=11)


def _tweaks(suite: frost.Ciphersuite) -> tuple[frost.Tweak, ...]:
    if suite is frost.SECP256K1_TR:
        return (frost.Tweak(bytes(31) + b"\x05", False), frost.Tweak(b"\x07" * 32, True))
    return ()


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_every_wire_type_round_trips(suite: frost.Ciphersuite) -> None:
    """parse(serialize(x)) == x for commitments, shares, signing packages and key packages."""
    group = suite.group
    key_packages, public = _keys(suite)
    package, shares = sign_all(suite, key_packages, [1, 2, 4], MESSAGE, _tweaks(suite))
    for commitment in package.commitments:
        data = commitment.to_bytes(group)
        assert commitment == frost.SigningCommitments.from_bytes(group, commitment.identifier, data)
    for share in shares.values():
        assert share == frost.SignatureShare.from_bytes(group, share.identifier, share.to_bytes(group))
    assert package == frost.SigningPackage.from_bytes(suite, package.to_bytes(suite))
    assert public == frost.PublicKeyPackage.from_bytes(public.to_bytes())
    for key_package in key_packages:
        assert key_package == frost.KeyPackage.from_bytes(key_package.to_bytes())


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_malformed_commitments_name_the_sender(suite: frost.Ciphersuite) -> None:
    """Wrong length, identity and off-curve commitments are refused, naming the sender."""
    group = suite.group
    key_packages, _public = _keys(suite)
    _nonces, package = round_one(suite, key_packages, [1, 2, 3], MESSAGE)
    good = package.commitment(2).to_bytes(group)
    size = group.element_length
    identity = group.identity().encoding.ljust(size, b"\x00")
    off_curve = (b"\x02" + (5).to_bytes(32, "big")) if size == 33 else (2).to_bytes(32, "little")
    for bad in (good[:-1], good + b"\x00", identity + good[size:], good[:size] + off_curve, bytes(2 * size)):
        with pytest.raises(errors.InvalidNonceCommitment) as raised:
            frost.SigningCommitments.from_bytes(group, 2, bad)
        assert 2 == raised.value.sender


def test_ed25519_small_and_mixed_order_commitments_name_the_sender() -> None:
    """An Ed25519 commitment of small order or with a torsion component is refused, naming the sender."""
    good = ED25519_GROUP.base_mul(1234).encoding
    mixed = sodium.crypto_core_ed25519_add(good, TORSION)
    for bad in (TORSION + good, good + mixed):
        with pytest.raises(errors.InvalidNonceCommitment) as raised:
            frost.SigningCommitments.from_bytes(ED25519_GROUP, 3, bad)
        assert 3 == raised.value.sender


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_out_of_range_shares_name_the_sender(suite: frost.Ciphersuite) -> None:
    """A share equal to or above the order, or of the wrong length, is refused naming its sender."""
    group = suite.group
    order_bytes = (group.order.to_bytes(32, "big") if group.name == "secp256k1"
                   else group.order.to_bytes(32, "little"))
    for bad in (order_bytes, b"\xff" * 32, bytes(31), bytes(33)):
        with pytest.raises(errors.InvalidSignatureShare) as raised:
            frost.SignatureShare.from_bytes(group, 4, bad)
        assert (4,) == raised.value.culprits


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_malformed_signing_packages_are_refused(suite: frost.Ciphersuite) -> None:
    """Truncation, trailing bytes, another suite's tag, unsorted or duplicate signers, bad tweak modes."""
    group = suite.group
    key_packages, _public = _keys(suite)
    _nonces, package = round_one(suite, key_packages, [1, 2, 3], MESSAGE)
    data = package.to_bytes(suite)
    entry = 2 + 2 * group.element_length
    first, second = data[3: 3 + entry], data[3 + entry: 3 + 2 * entry]
    swapped = data[:3] + second + first + data[3 + 2 * entry:]
    duplicated = data[:3] + first + first + data[3 + 2 * entry:]
    other_tag = bytes([data[0] % 3 + 1]) + data[1:]
    bad_mode = data[:-1] + b"\x01\x02" + bytes(32)
    for bad in (data[:-1], data + b"\x00", other_tag, swapped, duplicated, bad_mode, b""):
        with pytest.raises(errors.InvalidMessage) as raised:
            frost.SigningPackage.from_bytes(suite, bad)
        assert raised.value.sender is None


def test_public_key_package_refuses_off_polynomial_shares() -> None:
    """A verifying share off the dealer's polynomial, or an identity key, is refused and named."""
    key_packages, public = _keys(frost.SECP256K1)
    group = public.group
    shares = dict(public.verifying_shares)
    shares[4] = group.base_mul(99)
    with pytest.raises(errors.InvalidKeyMaterial) as raised:
        frost.PublicKeyPackage(group, 3, public.group_public_key, shares)
    assert 4 == raised.value.identifier
    with pytest.raises(errors.InvalidKeyMaterial):
        frost.PublicKeyPackage(group, 3, group.base_mul(5), public.verifying_shares)
    with pytest.raises(errors.InvalidParameters):
        frost.PublicKeyPackage(group, 5, public.group_public_key, public.verifying_shares)
    with pytest.raises(errors.InvalidKeyMaterial):
        frost.KeyPackage(1, key_packages[1].secret_share, public)
    with pytest.raises(errors.InvalidScalar):
        frost.KeyPackage(1, 0, public)
    assert str(key_packages[0].secret_share) not in repr(key_packages[0])


def _mutate(data: bytes, position: int, delta: int) -> bytes:
    position %= len(data)
    return data[:position] + bytes([data[position] ^ delta]) + data[position + 1:]


POSITIONS = st.integers(min_value=0, max_value=10_000)
DELTAS = st.integers(min_value=1, max_value=255)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@PROPERTY_SETTINGS
@given(position=POSITIONS, delta=DELTAS)
def test_signature_with_one_byte_changed_is_refused(suite: frost.Ciphersuite, position: int, delta: int) -> None:
    """Every signature with one byte changed fails verification."""
    signature, key = _signature(suite)
    with pytest.raises(errors.InvalidSignature):
        frost.verify_signature(suite, key, MESSAGE, _mutate(signature, position, delta))


@cache
def _signature(suite: frost.Ciphersuite) -> tuple[bytes, frost.Element]:
    key_packages, public = _keys(suite)
    package, shares = sign_all(suite, key_packages, [1, 3, 4], MESSAGE, _tweaks(suite))
    return frost.aggregate(suite, public, package, shares), suite.signing_key(public, _tweaks(suite))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@PROPERTY_SETTINGS
@given(position=POSITIONS, delta=DELTAS)
def test_signature_share_with_one_byte_changed_is_refused(suite: frost.Ciphersuite, position: int,
                                                          delta: int) -> None:
    """A share with one byte changed is refused at parsing or verification, naming its sender."""
    group = suite.group
    package, shares, public = _session(suite)
    mutated = _mutate(shares[3].to_bytes(group), position, delta)
    with pytest.raises(errors.InvalidSignatureShare) as raised:
        share = frost.SignatureShare.from_bytes(group, 3, mutated)
        frost.verify_signature_share(suite, public, package, share)
    assert (3,) == raised.value.culprits


@cache
def _session(suite: frost.Ciphersuite) -> tuple[frost.SigningPackage, dict[int, frost.SignatureShare],
                                                 frost.PublicKeyPackage]:
    key_packages, public = _keys(suite)
    package, shares = sign_all(suite, key_packages, [1, 3, 4], MESSAGE, _tweaks(suite))
    return package, shares, public


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@PROPERTY_SETTINGS
@given(position=POSITIONS, delta=DELTAS)
def test_signing_package_with_one_byte_changed_never_yields_a_usable_share(
        suite: frost.Ciphersuite, position: int, delta: int) -> None:
    """A signer given a package with one byte changed refuses it or makes a share the aggregator refuses."""
    key_packages, public = _keys(suite)
    tweaks = _tweaks(suite)
    nonces, package = round_one(suite, key_packages, [1, 2, 4], MESSAGE, tweaks, seed=position * 256 + delta)
    mutated = _mutate(package.to_bytes(suite), position, delta)
    try:
        received = frost.SigningPackage.from_bytes(suite, mutated)
        share = frost.sign(suite, key_packages[0], nonces[1], received, message=MESSAGE, tweaks=tweaks)
    except errors.MpcError:
        return
    assert received != package
    with pytest.raises(errors.InvalidSignatureShare) as raised:
        frost.verify_signature_share(suite, public, package, share)
    assert (1,) == raised.value.culprits


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@PROPERTY_SETTINGS
@given(position=POSITIONS, delta=DELTAS)
def test_public_key_package_with_one_byte_changed_is_refused(suite: frost.Ciphersuite, position: int,
                                                             delta: int) -> None:
    """A public key package with one byte changed never parses."""
    _key_packages, public = _keys(suite)
    with pytest.raises(errors.MpcError):
        frost.PublicKeyPackage.from_bytes(_mutate(public.to_bytes(), position, delta))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@PROPERTY_SETTINGS
@given(position=POSITIONS, delta=DELTAS)
def test_key_package_with_one_byte_changed_is_refused(suite: frost.Ciphersuite, position: int,
                                                      delta: int) -> None:
    """A stored key package with one byte changed never loads (the share must match its public share)."""
    key_packages, _public = _keys(suite)
    with pytest.raises(errors.MpcError):
        frost.KeyPackage.from_bytes(_mutate(key_packages[1].to_bytes(), position, delta))


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=300), signers=st.permutations([1, 2, 3, 4]).map(lambda p: sorted(p[:3])),
       tweak_values=st.lists(st.binary(min_size=32, max_size=32), max_size=3), modes=st.lists(st.booleans(), min_size=3,
                                                                                             max_size=3))
def test_any_message_and_signer_set_signs_and_round_trips(
        suite: frost.Ciphersuite, message: bytes, signers: list[int], tweak_values: list[bytes],
        modes: list[bool]) -> None:
    """Any message, any 3 of 4 signers (and any tweaks, for Taproot) sign; the package round-trips."""
    key_packages, public = _keys(suite)
    tweaks = tuple(frost.Tweak(value, mode) for value, mode in zip(tweak_values, modes, strict=False))
    if suite is not frost.SECP256K1_TR:
        tweaks = ()
    try:
        key = suite.signing_key(public, tweaks)
    except errors.InvalidTweak:
        return  # a tweak at or above the group order
    nonces, package = round_one(suite, key_packages, signers, message, tweaks)
    assert package == frost.SigningPackage.from_bytes(suite, package.to_bytes(suite))
    shares = {i: frost.sign(suite, key_packages[i - 1], nonces[i], package, message=message, tweaks=tweaks)
              for i in signers}
    signature = frost.aggregate(suite, public, package, shares)
    if suite is not frost.SECP256K1_TR or len(message) == 32:
        independent_verify(suite, key, message, signature)
    frost.verify_signature(suite, key, message, signature)
