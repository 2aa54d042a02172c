"""Strict parsing of every DKLs23 wire message: arbitrary bytes only ever give MalformedMessage."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.mpc.ecdsa import MalformedMessage, SetupMessage, SignerSetError, SigningSession
from coffer.mpc.ecdsa.curve import system_rng
from coffer.mpc.ecdsa.dealer import deal_key
from coffer.mpc.ecdsa.local import pair_all
from coffer.mpc.ecdsa.messages import SignRound1, SignRound2, SignRound3

SESSION = bytes(range(32))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 2, 3, 4]))
def test_arbitrary_bytes_are_refused_with_the_sender_named(data: bytes, kind: int) -> None:
    """Random bytes (or a valid header with a random body) never parse and never crash otherwise."""
    header = {1: b"\x21", 2: b"\x22", 3: b"\x23", 4: b"\x10"}[kind] + b"\x01"
    for candidate in (data, header + data):
        with pytest.raises(MalformedMessage) as caught:
            if kind == 1:
                SignRound1.parse(candidate, sender=3, receiver=1, session_id=SESSION)
            elif kind == 2:
                SignRound2.parse(candidate, sender=3, receiver=1, session_id=SESSION)
            elif kind == 3:
                SignRound3.parse(candidate, sender=3, session_id=SESSION)
            else:
                SetupMessage.parse(candidate, sender=3, receiver=1, setup_id=SESSION, round_number=1)
        assert 3 == caught.value.sender


def test_oversized_message_is_refused_before_parsing() -> None:
    """A message above MESSAGE_BYTES_MAX is refused outright."""
    with pytest.raises(MalformedMessage):
        SignRound2.parse(bytes(2 << 20), sender=2, receiver=1, session_id=SESSION)


def test_setup_of_another_pair_is_refused() -> None:
    """A session refuses a PeerSetup that belongs to another pair of parties."""
    _, shares = deal_key(b"pairs", 2, 3, system_rng)
    setups = pair_all([1, 2, 3], b"pairs")
    with pytest.raises(SignerSetError):
        SigningSession(key=shares[0], signers=[1, 2], digest=bytes(32), nonce=secrets.token_bytes(16),
                       setups={2: setups[3][2]})
    with pytest.raises(SignerSetError):
        SigningSession(key=shares[0], signers=[1, 2], digest=bytes(32), nonce=secrets.token_bytes(16),
                       setups={})
    with pytest.raises(SignerSetError):
        SigningSession(key=shares[0], signers=[1, 2], digest=bytes(31), nonce=secrets.token_bytes(16),
                       setups=setups[1])
