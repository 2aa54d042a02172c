"""Malicious participants and coordinators in the DKG: every failure names the faulty party."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest

from coffer.mpc.dkg import chilldkg, ed25519, secp256k1_untweaked
from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.errors import (
    DuplicateHostPubkeyError,
    FaultyCoordinatorError,
    FaultyParticipantError,
    FaultyParticipantOrCoordinatorError,
    HostSeckeyError,
    InvalidArgument,
    InvalidHostPubkeyError,
    RandomnessError,
    RecoveryDataError,
    ThresholdOrCountError,
    UnknownFaultyParticipantOrCoordinatorError,
)
from coffer.mpc.dkg.local import run_local_dkg
from coffer.mpc.dkg.messages import CoordinatorMsg1, ParticipantMsg1
from coffer.mpc.dkg.protocol import ParticipantState1, SessionParams

PROTOCOLS = [pytest.param(chilldkg, id="secp256k1"), pytest.param(ed25519, id="ed25519"),
             pytest.param(secp256k1_untweaked, id="secp256k1-untweaked")]


@dataclasses.dataclass
class Round1:
    keys: list[bytes]
    params: SessionParams
    states: list[ParticipantState1]
    pmsgs1: list[bytes]


def round1(dkg: DkgProtocol, n: int = 4, t: int = 3, seed: int = 1) -> Round1:
    rng = random.Random(seed)
    keys = [rng.randbytes(32) for _ in range(n)]
    params = SessionParams(tuple(dkg.hostpubkey_gen(key) for key in keys), t)
    steps = [dkg.participant_step1(key, params, rng.randbytes(32)) for key in keys]
    return Round1(keys, params, [state for state, _ in steps], [pmsg for _, pmsg in steps])


def tamper_pmsg1(dkg: DkgProtocol, r1: Round1, sender: int,
                 change: Callable[[ParticipantMsg1], ParticipantMsg1]) -> list[bytes]:
    pmsgs1 = list(r1.pmsgs1)
    parsed = ParticipantMsg1.parse(dkg.suite, pmsgs1[sender], t=r1.params.t, n=r1.params.n)
    pmsgs1[sender] = change(parsed).serialize(dkg.suite)
    return pmsgs1


def investigate(dkg: DkgProtocol, r1: Round1, pmsgs1: list[bytes], cmsg1: bytes, observer: int) -> Exception:
    """Run the observer's step 2, which must fail, then its investigation; return the final error."""
    with pytest.raises(UnknownFaultyParticipantOrCoordinatorError) as info:
        dkg.participant_step2(r1.keys[observer], r1.states[observer], cmsg1, bytes(32))
    cinv = dkg.coordinator_investigate(pmsgs1, r1.params)[observer]
    with pytest.raises((FaultyParticipantOrCoordinatorError, FaultyCoordinatorError)) as final:
        dkg.participant_investigate(info.value, cinv)
    return final.value


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_bad_share_names_its_dealer(dkg: DkgProtocol) -> None:
    """Participant 3 (index 2) sends a wrong encrypted share to index 0: investigation names 3."""
    r1 = round1(dkg)

    def bad(message: ParticipantMsg1) -> ParticipantMsg1:
        shares = list(message.enc_shares)
        shares[0] = (shares[0] + 1) % dkg.suite.order
        return dataclasses.replace(message, enc_shares=tuple(shares))

    pmsgs1 = tamper_pmsg1(dkg, r1, 2, bad)
    _, cmsg1 = dkg.coordinator_step1(pmsgs1, r1.params)
    error = investigate(dkg, r1, pmsgs1, cmsg1, observer=0)
    assert isinstance(error, FaultyParticipantOrCoordinatorError)
    assert 3 == error.culprit
    # The recipients of correct shares are not affected by the bad one.
    dkg.participant_step2(r1.keys[1], r1.states[1], cmsg1, bytes(32))


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_wrong_proof_of_possession_is_named_by_the_coordinator(dkg: DkgProtocol) -> None:
    """A proof of possession copied from another participant is refused, naming its sender."""
    r1 = round1(dkg)
    other = ParticipantMsg1.parse(dkg.suite, r1.pmsgs1[0], t=3, n=4)
    pmsgs1 = tamper_pmsg1(dkg, r1, 1, lambda message: dataclasses.replace(message, pop=other.pop))
    with pytest.raises(FaultyParticipantError) as info:
        dkg.coordinator_step1(pmsgs1, r1.params)
    assert 2 == info.value.culprit


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_wrong_proof_of_possession_relayed_is_named_by_participants(dkg: DkgProtocol) -> None:
    """If a coordinator relays a bad proof anyway, every other participant names its sender."""
    r1 = round1(dkg)
    _, cmsg1 = dkg.coordinator_step1(r1.pmsgs1, r1.params)
    parsed = CoordinatorMsg1.parse(dkg.suite, cmsg1, t=3, n=4)
    pops = list(parsed.pops)
    pops[3] = pops[2]
    forged = dataclasses.replace(parsed, pops=tuple(pops)).serialize(dkg.suite)
    for observer in range(3):
        with pytest.raises(FaultyParticipantOrCoordinatorError) as info:
            dkg.participant_step2(r1.keys[observer], r1.states[observer], forged, bytes(32))
        assert 4 == info.value.culprit


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_inconsistent_commitment_names_its_dealer(dkg: DkgProtocol) -> None:
    """A participant whose commitment does not match its shares is named by the others."""
    r1 = round1(dkg)
    bogus = dkg.suite.base_mul(12345)
    pmsgs1 = tamper_pmsg1(dkg, r1, 1, lambda message: dataclasses.replace(
        message, commitment=(message.commitment[0], bogus, message.commitment[2])))
    _, cmsg1 = dkg.coordinator_step1(pmsgs1, r1.params)
    for observer in (0, 2, 3):
        error = investigate(dkg, r1, pmsgs1, cmsg1, observer)
        assert isinstance(error, FaultyParticipantOrCoordinatorError)
        assert 2 == error.culprit
    # The dealer itself knows it is honest: it blames the coordinator.
    assert isinstance(investigate(dkg, r1, pmsgs1, cmsg1, 1), FaultyCoordinatorError)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_coordinator_with_inconsistent_sum_is_blamed(dkg: DkgProtocol) -> None:
    """A coordinator that alters the summed commitments is blamed after investigation."""
    r1 = round1(dkg)
    _, cmsg1 = dkg.coordinator_step1(r1.pmsgs1, r1.params)
    parsed = CoordinatorMsg1.parse(dkg.suite, cmsg1, t=3, n=4)
    nonconst = (dkg.suite.base_mul(777), parsed.sum_coms_to_nonconst_terms[1])
    forged = dataclasses.replace(parsed, sum_coms_to_nonconst_terms=nonconst).serialize(dkg.suite)
    assert isinstance(investigate(dkg, r1, r1.pmsgs1, forged, 0), FaultyCoordinatorError)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_coordinator_changing_my_commitment_is_blamed(dkg: DkgProtocol) -> None:
    """A coordinator that replaces a participant's own commitment to its secret is blamed."""
    r1 = round1(dkg)
    _, cmsg1 = dkg.coordinator_step1(r1.pmsgs1, r1.params)
    parsed = CoordinatorMsg1.parse(dkg.suite, cmsg1, t=3, n=4)
    coms = (dkg.suite.base_mul(5), *parsed.coms_to_secrets[1:])
    forged = dataclasses.replace(parsed, coms_to_secrets=coms).serialize(dkg.suite)
    with pytest.raises(FaultyCoordinatorError):
        dkg.participant_step2(r1.keys[0], r1.states[0], forged, bytes(32))


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_identity_commitment_is_refused(dkg: DkgProtocol) -> None:
    """A commitment to the secret that is the identity is refused, naming the sender."""
    r1 = round1(dkg)
    identity = dkg.suite.identity()
    pmsgs1 = tamper_pmsg1(dkg, r1, 3, lambda message: dataclasses.replace(
        message, commitment=(identity, *message.commitment[1:])))
    with pytest.raises(FaultyParticipantError) as info:
        dkg.coordinator_step1(pmsgs1, r1.params)
    assert 4 == info.value.culprit


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_invalid_certeq_signature_is_named(dkg: DkgProtocol) -> None:
    """A participant that signs another transcript is named by the coordinator."""
    r1 = round1(dkg, n=3, t=2)
    state, cmsg1 = dkg.coordinator_step1(r1.pmsgs1, r1.params)
    pmsgs2 = [dkg.participant_step2(key, state1, cmsg1, bytes([7]) * 32)[1]
              for key, state1 in zip(r1.keys, r1.states, strict=True)]
    pmsgs2[1] = pmsgs2[0]
    with pytest.raises(FaultyParticipantError) as info:
        dkg.coordinator_finalize(state, pmsgs2)
    assert 2 == info.value.culprit


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_duplicate_host_keys_name_both_participants(dkg: DkgProtocol) -> None:
    """The same host key twice (a duplicate identity) is refused naming both positions."""
    r1 = round1(dkg)
    params = SessionParams((r1.params.hostpubkeys[0], r1.params.hostpubkeys[1], r1.params.hostpubkeys[0]), 2)
    with pytest.raises(DuplicateHostPubkeyError) as info:
        dkg.params_hash(params)
    assert (1, 3) == info.value.culprits
    with pytest.raises(DuplicateHostPubkeyError):
        dkg.participant_step1(r1.keys[1], params, bytes([1]) * 32)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_invalid_parameters_and_inputs(dkg: DkgProtocol) -> None:
    """Bad thresholds, keys, randomness and foreign host keys each raise their typed error."""
    r1 = round1(dkg)
    with pytest.raises(ThresholdOrCountError):
        dkg.params_hash(SessionParams(r1.params.hostpubkeys, 5))
    with pytest.raises(ThresholdOrCountError):
        dkg.params_hash(SessionParams(r1.params.hostpubkeys, 0))
    bad_key = bytes([0x05]) + r1.params.hostpubkeys[1][1:]
    with pytest.raises(InvalidHostPubkeyError) as info:
        dkg.params_hash(SessionParams((r1.params.hostpubkeys[0], bad_key), 1))
    assert 2 == info.value.culprit
    with pytest.raises(RandomnessError):
        dkg.participant_step1(r1.keys[0], r1.params, bytes(32))
    with pytest.raises(InvalidArgument):
        dkg.participant_step1(r1.keys[0], r1.params, bytes(31))
    with pytest.raises(HostSeckeyError):
        dkg.participant_step1(bytes([9]) * 32, r1.params, bytes([1]) * 32)
    with pytest.raises(InvalidArgument):
        dkg.coordinator_step1(r1.pmsgs1[:3], r1.params)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_tampered_recovery_data_is_refused(dkg: DkgProtocol) -> None:
    """Recovery data altered anywhere (transcript or certificate) is refused."""
    rng = random.Random(4)
    keys = [rng.randbytes(32) for _ in range(3)]
    result = run_local_dkg(dkg, keys, 2, rng.randbytes)
    for position in (0, 5, len(result.recovery_data) // 2, len(result.recovery_data) - 1):
        data = bytearray(result.recovery_data)
        data[position] ^= 0x01
        with pytest.raises(RecoveryDataError):
            dkg.participant_recover(keys[0], bytes(data))
    with pytest.raises(RecoveryDataError):
        dkg.coordinator_recover(result.recovery_data[:-1])


ED25519_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
]


@pytest.mark.parametrize("encoded", ED25519_SMALL_ORDER)
def test_ed25519_small_order_points_are_refused(encoded: str) -> None:
    """Ed25519 host keys and public nonces of small order (or the identity) are refused, naming the owner."""
    r1 = round1(ed25519, n=3, t=2)
    bad = bytes.fromhex(encoded)
    with pytest.raises(InvalidHostPubkeyError) as info:
        ed25519.params_hash(SessionParams((r1.params.hostpubkeys[0], bad, r1.params.hostpubkeys[2]), 2))
    assert 2 == info.value.culprit
    pmsgs1 = tamper_pmsg1(ed25519, r1, 2, lambda message: dataclasses.replace(message, pubnonce=bad))
    with pytest.raises(FaultyParticipantError) as blamed:
        ed25519.coordinator_step1(pmsgs1, r1.params)
    assert 3 == blamed.value.culprit


def test_ed25519_point_outside_the_prime_order_subgroup_is_refused() -> None:
    """A valid point plus a torsion point (outside the prime-order subgroup) is refused in a commitment."""
    from nacl import bindings as sodium

    r1 = round1(ed25519, n=3, t=2)
    parsed = ParticipantMsg1.parse(ed25519.suite, r1.pmsgs1[1], t=2, n=3)
    torsion = bytes.fromhex(ED25519_SMALL_ORDER[2])
    mixed = sodium.crypto_core_ed25519_add(parsed.commitment[1].encoding, torsion)
    raw = bytearray(r1.pmsgs1[1])
    raw[32:64] = mixed
    pmsgs1 = list(r1.pmsgs1)
    pmsgs1[1] = bytes(raw)
    with pytest.raises(FaultyParticipantError) as info:
        ed25519.coordinator_step1(pmsgs1, r1.params)
    assert 2 == info.value.culprit


def test_secp256k1_x_coordinate_above_the_field_is_refused() -> None:
    """A compressed point whose x is not below the field prime is refused as a host key."""
    r1 = round1(chilldkg, n=2, t=1)
    too_big = b"\x02" + (2**256 - 2**32 - 977 + 1).to_bytes(32, "big")
    with pytest.raises(InvalidHostPubkeyError):
        chilldkg.params_hash(SessionParams((r1.params.hostpubkeys[0], too_big), 1))
