"""Verified Simplest OT (DKLs18) used as the base OT of DKLs23: correctness and every check."""

from __future__ import annotations

import secrets

import pytest

from coffer.mpc.ecdsa.base_ot import KAPPA, BaseOtReceiver, BaseOtSender, DlogProof
from coffer.mpc.ecdsa.curve import base_mul, system_rng
from coffer.mpc.ecdsa.errors import BaseOtFailure

CONTEXT = b"test-base-ot"


def _parties(choices: list[int] | None = None) -> tuple[BaseOtSender, BaseOtReceiver, list[int]]:
    """Party 1 is the base-OT sender, party 2 the receiver; each names the other on failure."""
    bits = choices if choices is not None else [secrets.randbits(1) for _ in range(KAPPA)]
    return BaseOtSender(CONTEXT, 2), BaseOtReceiver(CONTEXT, 1, bits), bits


def test_receiver_gets_exactly_the_pad_of_its_choice() -> None:
    """Every OT delivers pad_c to the receiver, and the two pads of one OT differ."""
    sender, receiver, bits = _parties()
    point, proof = sender.message1(system_rng)
    challenges = sender.message3(receiver.message2(point, proof, system_rng))
    openings = sender.message5(receiver.message4(challenges))
    pads = receiver.finish(openings)
    pads0, pads1 = sender.pads()
    assert [p1 if bit else p0 for p0, p1, bit in zip(pads0, pads1, bits, strict=True)] == pads
    assert all(p0 != p1 for p0, p1 in zip(pads0, pads1, strict=True))
    assert len(set(pads0) | set(pads1)) == 2 * KAPPA


def test_proof_of_knowledge_is_checked() -> None:
    """A sender point with a proof for another point is refused, naming the sender."""
    sender, receiver, _ = _parties()
    point, proof = sender.message1(system_rng)
    forged = DlogProof(proof.commitment, (proof.response + 1) % (2**255))
    with pytest.raises(BaseOtFailure) as caught:
        receiver.message2(point, forged, system_rng)
    assert (1,) == caught.value.counterparties
    with pytest.raises(BaseOtFailure):
        receiver.message2(base_mul(7), proof, system_rng)


def test_receiver_point_equal_to_sender_point_is_refused() -> None:
    """A_k = B would make b*(A_k - B) the identity: the sender aborts naming the receiver."""
    sender, receiver, _ = _parties()
    point, proof = sender.message1(system_rng)
    points = receiver.message2(point, proof, system_rng)
    points[5] = point
    with pytest.raises(BaseOtFailure) as caught:
        sender.message3(points)
    assert (2,) == caught.value.counterparties


def test_wrong_verification_response_is_refused() -> None:
    """A response rho' that is not H(H(pad0)) makes the sender abort."""
    sender, receiver, _ = _parties()
    point, proof = sender.message1(system_rng)
    challenges = sender.message3(receiver.message2(point, proof, system_rng))
    responses = receiver.message4(challenges)
    responses[3] = bytes(32)
    with pytest.raises(BaseOtFailure):
        sender.message5(responses)


def test_wrong_opening_is_refused() -> None:
    """Openings that do not match the receiver's pad or the challenge make the receiver abort."""
    sender, receiver, bits = _parties([1] * KAPPA)
    point, proof = sender.message1(system_rng)
    challenges = sender.message3(receiver.message2(point, proof, system_rng))
    openings = sender.message5(receiver.message4(challenges))
    opened0, opened1 = openings[0]
    bad = list(openings)
    bad[0] = (opened0, bytes(32))
    with pytest.raises(BaseOtFailure):
        receiver.finish(bad)
    bad[0] = (bytes(32), opened1)
    with pytest.raises(BaseOtFailure):
        receiver.finish(bad)
    assert 1 == bits[0]
