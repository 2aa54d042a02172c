"""The once-per-pair OT setup of DKLs23 (base OTs both ways + zero seed): flow and refusals."""

from __future__ import annotations

import secrets

import pytest

from coffer.mpc.ecdsa import (
    BaseOtFailure,
    EcdsaError,
    MalformedMessage,
    SessionStateError,
    SetupMessage,
    SetupSession,
    SignerSetError,
)
from coffer.mpc.ecdsa.local import pair


def _sessions(nonce: bytes | None = None) -> tuple[SetupSession, SetupSession]:
    nonce = nonce or secrets.token_bytes(32)
    return (SetupSession(me=1, peer=2, key_id=b"k", nonce=nonce),
            SetupSession(me=2, peer=1, key_id=b"k", nonce=nonce))


def test_pairing_gives_matching_setups() -> None:
    """Both sides end with the same setup id and zero seed, and complementary OT material."""
    first, second = pair(1, 2, b"k")
    assert first.setup_id == second.setup_id
    assert first.zero_seed() == second.zero_seed()
    correlation, chosen = second.sender_material()
    seeds0, seeds1 = first.receiver_seeds()
    assert [s1 if bit else s0 for s0, s1, bit in zip(seeds0, seeds1, correlation.tolist(), strict=True)] == chosen
    assert first.gadget_as_bob == second.gadget_as_alice


def test_setup_message_round_trips() -> None:
    """SetupMessage.parse(serialize) gives the same message and refuses another round."""
    left, _ = _sessions()
    data = left.start()
    parsed = SetupMessage.parse(data, sender=1, receiver=2, setup_id=left.setup_id, round_number=1)
    assert data == parsed.serialize()
    with pytest.raises(MalformedMessage) as caught:
        SetupMessage.parse(data, sender=1, receiver=2, setup_id=left.setup_id, round_number=2)
    assert 1 == caught.value.sender


@pytest.mark.parametrize("round_number", [1, 2, 3, 4, 5])
def test_changed_byte_in_any_setup_message_fails_the_pairing(round_number: int) -> None:
    """One changed byte in any of the five messages makes the pairing fail (now or at a later check)."""
    left, right = _sessions()
    to_right, to_left = left.start(), right.start()
    with pytest.raises(EcdsaError):
        for number in range(1, 6):
            if number == round_number:
                changed = bytearray(to_right)
                changed[len(changed) // 2] ^= 0x40
                to_right = bytes(changed)
            reply_left, reply_right = right.receive(to_right), left.receive(to_left)
            assert reply_left is not None and reply_right is not None
            to_left, to_right = reply_left, reply_right
        right.receive(to_right)
        left.receive(to_left)
    for side in (left, right):
        with pytest.raises(SessionStateError):
            side.result()


def test_forged_proof_of_knowledge_fails_the_pairing() -> None:
    """A first message with another party's proof is a base-OT failure naming the sender."""
    left, right = _sessions()
    other, _ = _sessions()
    message = bytearray(left.start())
    forged = other.start()
    message[39 + 33:39 + 33 + 65] = forged[39 + 33:39 + 33 + 65]  # proof for another point
    right.start()
    with pytest.raises(BaseOtFailure) as caught:
        right.receive(bytes(message))
    assert 1 == caught.value.counterparty


def test_replayed_message_is_refused() -> None:
    """Message 1 replayed in place of message 2 is refused as the wrong round."""
    left, right = _sessions()
    first = left.start()
    right.start()
    right.receive(first)
    with pytest.raises(MalformedMessage):
        right.receive(first)


def test_bad_pairings_are_refused() -> None:
    """Pairing with oneself, identifier zero, or a short nonce is refused."""
    for me, peer, nonce in ((1, 1, bytes(32)), (0, 2, bytes(32)), (1, 2, bytes(8))):
        with pytest.raises(SignerSetError):
            SetupSession(me=me, peer=peer, key_id=b"k", nonce=nonce)


def test_result_before_the_end_is_refused() -> None:
    """result() is only available after the fifth message."""
    left, _ = _sessions()
    left.start()
    with pytest.raises(SessionStateError):
        left.result()
