"""DKLs23 random VOLE (DKLs19 multiplication) and zero-sharing: algebra and cheating Alice."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.mpc.ecdsa import vole
from coffer.mpc.ecdsa.curve import Q, system_rng
from coffer.mpc.ecdsa.errors import MultiplicationCheckFailure
from coffer.mpc.ecdsa.local import pair
from coffer.mpc.ecdsa.setup import PeerSetup
from coffer.mpc.ecdsa.zero_share import zero_share

scalars = st.integers(0, Q - 1)


@lru_cache(maxsize=1)
def _setups() -> tuple[PeerSetup, PeerSetup]:
    """A real pairing (base OTs included) between parties 1 (Bob here) and 2 (Alice)."""
    return pair(1, 2, b"vole-test-key")


def _run(inputs: list[int], session: bytes,
         tamper: object = None) -> tuple[list[int], list[int], int]:
    bob, alice = _setups()
    seeds0, seeds1 = bob.receiver_seeds()
    message, state = vole.bob_start(session, seeds0, seeds1, bob.gadget_as_bob, system_rng)
    correlation, seeds = alice.sender_material()
    answer, c = vole.alice_respond(session, correlation, seeds, alice.gadget_as_alice, inputs,
                                   message, 1, system_rng)
    if callable(tamper):
        answer = tamper(answer)
    d = vole.bob_finish(session, state, bob.gadget_as_bob, answer, 2)
    return c, d, state.b


@pytest.mark.slow  # a whole protocol run per example
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scalars, min_size=2, max_size=2), st.binary(min_size=4, max_size=4))
def test_vole_outputs_sum_to_the_product(inputs: list[int], session: bytes) -> None:
    """c_k + d_k = a_k * b for both of Alice's inputs, with Bob's random b."""
    c, d, b = _run(inputs, session)
    for k in range(2):
        assert inputs[k] * b % Q == (c[k] + d[k]) % Q


def test_bob_input_is_a_random_scalar() -> None:
    """Bob's VOLE input b differs between sessions (it comes from fresh choice bits)."""
    values = {_run([1, 2], bytes([n]))[2] for n in range(3)}
    assert 3 == len(values)


def test_tampered_correction_fails_the_multiplication_check() -> None:
    """Alice changing one OT correction tau is caught by Bob, who names Alice."""

    def tamper(answer: vole.AliceMessage) -> vole.AliceMessage:
        taus = [list(row) for row in answer.taus]
        taus[17][1] = (taus[17][1] + 1) % Q
        return dataclasses.replace(answer, taus=taus)

    with pytest.raises(MultiplicationCheckFailure) as caught:
        _run([5, 6], b"tamper-tau", tamper)
    assert 2 == caught.value.counterparty


def test_tampered_check_value_fails_the_multiplication_check() -> None:
    """A wrong u (Alice's check value) is caught by Bob."""

    def tamper(answer: vole.AliceMessage) -> vole.AliceMessage:
        return dataclasses.replace(answer, check_u=[(answer.check_u[0] + 1) % Q, answer.check_u[1]])

    with pytest.raises(MultiplicationCheckFailure):
        _run([5, 6], b"tamper-u", tamper)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=2, max_size=8, unique=True), st.binary(min_size=1, max_size=16))
def test_zero_shares_sum_to_zero(identifiers: list[int], session: bytes) -> None:
    """The zero shares of any signer set cancel, for any session id."""
    seeds = {}
    for a in identifiers:
        for b in identifiers:
            if a < b:
                seeds[(a, b)] = bytes([a, b]) * 16
    total = 0
    shares = []
    for me in identifiers:
        mine = {peer: seeds[tuple(sorted((me, peer)))] for peer in identifiers if peer != me}  # type: ignore[index]
        shares.append(zero_share(me, mine, session))
        total += shares[-1]
    assert 0 == total % Q
    assert all(share != 0 for share in shares)
