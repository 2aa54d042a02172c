"""Strict parsing: every DKG, refresh and re-share message with one byte changed is refused."""

from __future__ import annotations

import dataclasses
import random
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.mpc.dkg import chilldkg, ed25519, refresh, secp256k1_untweaked
from coffer.mpc.dkg.dealing import Holder, open_dealing
from coffer.mpc.dkg.errors import (
    DkgError,
    FaultyCoordinatorError,
    FaultyParticipantError,
    FaultyParticipantOrCoordinatorError,
    InvalidDealing,
    RecoveryDataError,
    UnknownFaultyParticipantOrCoordinatorError,
)
from coffer.mpc.dkg.messages import CoordinatorInvestigationMsg, CoordinatorMsg1, ParticipantMsg1
from coffer.mpc.dkg.protocol import ParticipantState1, SessionParams
from coffer.mpc.dkg.refresh import RefreshSession

PROTOCOLS = {"secp256k1": chilldkg, "ed25519": ed25519,
             "secp256k1-untweaked": secp256k1_untweaked}
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N, T = 3, 2


@dataclasses.dataclass(frozen=True)
class Session:
    keys: tuple[bytes, ...]
    params: SessionParams
    states1: tuple[ParticipantState1, ...]
    pmsgs1: tuple[bytes, ...]
    cmsg1: bytes
    eq_inputs: tuple[bytes, ...]
    pmsgs2: tuple[bytes, ...]
    cmsg2: bytes
    recovery: bytes


@cache
def honest(name: str) -> Session:
    dkg = PROTOCOLS[name]
    rng = random.Random(name)
    keys = tuple(rng.randbytes(32) for _ in range(N))
    params = SessionParams(tuple(dkg.hostpubkey_gen(key) for key in keys), T)
    steps1 = [dkg.participant_step1(key, params, rng.randbytes(32)) for key in keys]
    cstate, cmsg1 = dkg.coordinator_step1([m for _, m in steps1], params)
    steps2 = [dkg.participant_step2(key, s1, cmsg1, bytes(32)) for key, (s1, _) in zip(keys, steps1, strict=True)]
    cmsg2, _, recovery = dkg.coordinator_finalize(cstate, [m for _, m in steps2])
    return Session(keys, params, tuple(s for s, _ in steps1), tuple(m for _, m in steps1), cmsg1,
                   tuple(s.eq_input for s, _ in steps2), tuple(m for _, m in steps2), cmsg2, recovery)


def flip(data: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(data)
    changed[position % len(data)] ^= mask
    return bytes(changed)


positions = st.integers(min_value=0, max_value=10_000)
masks = st.integers(min_value=1, max_value=255)
names = st.sampled_from(sorted(PROTOCOLS))


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_messages_round_trip(name: str) -> None:
    """parse(serialize(x)) == x for every DKG wire type."""
    dkg, session = PROTOCOLS[name], honest(name)
    for pmsg1 in session.pmsgs1:
        assert pmsg1 == ParticipantMsg1.parse(dkg.suite, pmsg1, t=T, n=N).serialize(dkg.suite)
    assert session.cmsg1 == CoordinatorMsg1.parse(dkg.suite, session.cmsg1, t=T, n=N).serialize(dkg.suite)
    for cinv in dkg.coordinator_investigate(list(session.pmsgs1), session.params):
        assert cinv == CoordinatorInvestigationMsg.parse(dkg.suite, cinv, n=N).serialize(dkg.suite)


@SETTINGS
@given(name=names, sender=st.integers(0, N - 1), position=positions, mask=masks)
def test_participant_message_1_with_one_byte_changed(name: str, sender: int, position: int, mask: int) -> None:
    """A changed byte in a first message makes the session fail, and everyone else names its sender."""
    dkg, session = PROTOCOLS[name], honest(name)
    pmsgs1 = list(session.pmsgs1)
    pmsgs1[sender] = flip(pmsgs1[sender], position, mask)
    try:
        _, cmsg1 = dkg.coordinator_step1(pmsgs1, session.params)
    except FaultyParticipantError as error:
        assert sender + 1 == error.culprit
        return
    failures: dict[int, DkgError] = {}
    for observer in range(N):
        try:
            dkg.participant_step2(session.keys[observer], session.states1[observer], cmsg1, bytes(32))
        except UnknownFaultyParticipantOrCoordinatorError as unknown:
            cinv = dkg.coordinator_investigate(pmsgs1, session.params)[observer]
            with pytest.raises(DkgError) as final:
                dkg.participant_investigate(unknown, cinv)
            failures[observer] = final.value
        except DkgError as error:
            failures[observer] = error
    assert failures, "a changed first message went unnoticed"
    for observer, error in failures.items():
        if observer != sender:
            assert isinstance(error, FaultyParticipantOrCoordinatorError), repr(error)
            assert sender + 1 == error.culprit


@SETTINGS
@given(name=names, position=positions, mask=masks)
def test_coordinator_message_1_with_one_byte_changed(name: str, position: int, mask: int) -> None:
    """A changed byte in the broadcast is refused by some participant or splits the transcripts."""
    dkg, session = PROTOCOLS[name], honest(name)
    cmsg1 = flip(session.cmsg1, position, mask)
    accepted_same = 0
    for observer in range(N):
        try:
            state2, _ = dkg.participant_step2(session.keys[observer], session.states1[observer], cmsg1, bytes(32))
        except DkgError:
            continue
        accepted_same += state2.eq_input == session.eq_inputs[observer]
    assert accepted_same < N


@SETTINGS
@given(name=names, sender=st.integers(0, N - 1), position=positions, mask=masks)
def test_participant_message_2_with_one_byte_changed(name: str, sender: int, position: int, mask: int) -> None:
    """A changed CertEq signature is refused by the coordinator, naming its signer."""
    dkg, session = PROTOCOLS[name], honest(name)
    cstate, _ = dkg.coordinator_step1(list(session.pmsgs1), session.params)
    pmsgs2 = list(session.pmsgs2)
    pmsgs2[sender] = flip(pmsgs2[sender], position, mask)
    with pytest.raises(FaultyParticipantError) as info:
        dkg.coordinator_finalize(cstate, pmsgs2)
    assert sender + 1 == info.value.culprit


@SETTINGS
@given(name=names, position=positions, mask=masks)
def test_certificate_with_one_byte_changed(name: str, position: int, mask: int) -> None:
    """A changed certificate is refused by the participant as the coordinator's fault."""
    dkg, session = PROTOCOLS[name], honest(name)
    state2, _ = dkg.participant_step2(session.keys[0], session.states1[0], session.cmsg1, bytes(32))
    with pytest.raises(FaultyCoordinatorError):
        dkg.participant_finalize(state2, flip(session.cmsg2, position, mask))


@SETTINGS
@given(name=names, position=positions, mask=masks)
def test_recovery_data_with_one_byte_changed(name: str, position: int, mask: int) -> None:
    """Recovery data with any byte changed is refused."""
    dkg, session = PROTOCOLS[name], honest(name)
    with pytest.raises(RecoveryDataError):
        dkg.participant_recover(session.keys[1], flip(session.recovery, position, mask))


@cache
def honest_refresh(name: str) -> tuple[RefreshSession, dict[int, bytes]]:
    dkg, session = PROTOCOLS[name], honest(name)
    output, _ = dkg.coordinator_recover(session.recovery)
    holders = tuple(Holder(i + 1, key) for i, key in enumerate(session.params.hostpubkeys))
    refresh_session = RefreshSession(bytes([7]) * 32, T, output.group_public_key, holders,
                                     dict(output.public_shares))
    dealings = {i + 1: refresh.refresh_deal(dkg.suite, refresh_session, key, bytes([i + 1]) * 32)
                for i, key in enumerate(session.keys)}
    return refresh_session, dealings


@SETTINGS
@given(name=names, dealer=st.integers(1, N), position=positions, mask=masks)
def test_dealing_with_one_byte_changed(name: str, dealer: int, position: int, mask: int) -> None:
    """A refresh dealing with one byte changed is refused, naming its dealer."""
    dkg = PROTOCOLS[name]
    refresh_session, dealings = honest_refresh(name)
    plan = refresh._plan(dkg.suite, refresh_session)
    with pytest.raises(InvalidDealing) as info:
        open_dealing(dkg.suite, plan, dealer, flip(dealings[dealer], position, mask))
    assert dealer == info.value.culprit


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_truncated_and_extended_messages(name: str) -> None:
    """A first message one byte short or long is refused naming its sender; a cmsg1 blames the coordinator."""
    dkg, session = PROTOCOLS[name], honest(name)
    for changed in (session.pmsgs1[1][:-1], session.pmsgs1[1] + b"\x00"):
        with pytest.raises(FaultyParticipantError) as info:
            dkg.coordinator_step1([session.pmsgs1[0], changed, session.pmsgs1[2]], session.params)
        assert 2 == info.value.culprit
    for cmsg1 in (session.cmsg1[:-1], session.cmsg1 + b"\x00"):
        with pytest.raises(FaultyCoordinatorError):
            dkg.participant_step2(session.keys[0], session.states1[0], cmsg1, bytes(32))
