"""DKLs23 signing against a cheating co-signer: every check aborts, names, and discards setups."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.mpc.ecdsa import (
    CommitmentMismatch,
    EcdsaError,
    KeyShare,
    MalformedMessage,
    MultiplicationCheckFailure,
    OtConsistencyFailure,
    PeerSetup,
    PublicShareMismatch,
    SessionStateError,
    SetupDiscarded,
    SignatureInvalid,
    SigningSession,
    SignRound1,
    SignRound2,
    SignRound3,
    TranscriptMismatch,
)
from coffer.mpc.ecdsa.curve import Q, add, base_mul, system_rng
from coffer.mpc.ecdsa.dealer import deal_key
from coffer.mpc.ecdsa.local import pair_all, sign_locally

KEY_ID = b"malicious-tests"
ROUND1_BYTES = 38 + 32 + 256 * 78 + 26 + 256 * 26
ROUND2_BYTES = 38 + 33 + 32 + 33 + 32 + 33 + 33 + 416 * 4 * 32 + 32 + 64 + 64
ROUND3_BYTES = 38 + 33 + 64


@lru_cache(maxsize=1)
def _shares() -> dict[int, KeyShare]:
    _, shares = deal_key(KEY_ID, 2, 3, system_rng)
    return {share.identifier: share for share in shares}


def _fresh(signers: tuple[int, ...] = (1, 2)) -> dict[int, dict[int, PeerSetup]]:
    """Fresh setups (new base OTs) between the given signers only."""
    return pair_all(list(signers), KEY_ID)


def _sign(setups: dict[int, dict[int, PeerSetup]], tamper: Callable[[int, int, int, bytes], bytes],
          signers: tuple[int, ...] = (1, 2)) -> None:
    shares = _shares()
    sign_locally({i: shares[i] for i in signers}, setups, secrets.token_bytes(32), tamper=tamper)


def _from_two_to_one(round_number: int, change: Callable[[bytes], bytes]) -> Callable[[int, int, int, bytes], bytes]:
    def tamper(number: int, sender: int, receiver: int, message: bytes) -> bytes:
        if number == round_number and sender == 2 and receiver == 1:
            return change(message)
        return message

    return tamper


def _assert_discarded(setups: dict[int, dict[int, PeerSetup]], me: int = 1, peer: int = 2) -> None:
    assert setups[me][peer].discarded
    with pytest.raises(SetupDiscarded) as caught:
        SigningSession(key=_shares()[me], signers=[me, peer], digest=bytes(32),
                       nonce=secrets.token_bytes(16), setups=setups[me])
    assert peer == caught.value.counterparty


def test_message_sizes_are_as_documented() -> None:
    """The wire sizes the co-signer service must accept (about 27 kB, 54 kB and 135 bytes)."""
    setups = _fresh()
    sizes: dict[int, int] = {}

    def record(number: int, sender: int, receiver: int, message: bytes) -> bytes:
        sizes[number] = len(message)
        return message

    _sign(setups, record)
    assert {1: ROUND1_BYTES, 2: ROUND2_BYTES, 3: ROUND3_BYTES} == sizes


def test_inconsistent_ot_rows_abort_naming_the_receiver() -> None:
    """Bob's OT-extension rows that fail the KOS check: Alice aborts naming him, setup discarded."""
    setups = _fresh()

    def flip(message: bytes) -> bytes:
        changed = bytearray(message)
        changed[38 + 32 + 5000] ^= 0x10
        return bytes(changed)

    with pytest.raises(OtConsistencyFailure) as caught:
        _sign(setups, _from_two_to_one(1, flip))
    assert 2 == caught.value.counterparty
    _assert_discarded(setups)


def _rewrite_round2(change: Callable[[SignRound2], SignRound2]) -> Callable[[bytes], bytes]:
    def rewrite(message: bytes) -> bytes:
        parsed = SignRound2.parse(message, sender=2, receiver=1, session_id=message[6:38])
        return change(parsed).serialize()

    return rewrite


def test_wrong_multiplication_adjustment_aborts_naming_alice() -> None:
    """A well-formed round-2 message with a wrong VOLE adjustment gamma fails the Gamma check."""
    setups = _fresh()

    def wrong_gamma(message: SignRound2) -> SignRound2:
        gammas = [(message.vole.gammas[0] + 1) % Q, message.vole.gammas[1]]
        return dataclasses.replace(message, vole=dataclasses.replace(message.vole, gammas=gammas))

    with pytest.raises(MultiplicationCheckFailure) as caught:
        _sign(setups, _from_two_to_one(2, _rewrite_round2(wrong_gamma)))
    assert 2 == caught.value.counterparty
    _assert_discarded(setups)


def test_wrong_gamma_point_aborts_naming_alice() -> None:
    """Gamma^v = c_v*G + G (a wrong multiplication share for the key) is caught."""
    setups = _fresh()

    def wrong_point(message: SignRound2) -> SignRound2:
        return dataclasses.replace(message, gamma_v=add([message.gamma_v, base_mul(1)]))

    with pytest.raises(MultiplicationCheckFailure) as caught:
        _sign(setups, _from_two_to_one(2, _rewrite_round2(wrong_point)))
    assert 2 == caught.value.counterparty
    _assert_discarded(setups)


def test_wrong_ot_correction_aborts_naming_alice() -> None:
    """A changed correction tau fails the DKLs19 multiplication check."""
    setups = _fresh()

    def wrong_tau(message: SignRound2) -> SignRound2:
        taus = [list(row) for row in message.vole.taus]
        taus[200][3] = (taus[200][3] + 1) % Q
        return dataclasses.replace(message, vole=dataclasses.replace(message.vole, taus=taus))

    with pytest.raises(MultiplicationCheckFailure) as caught:
        _sign(setups, _from_two_to_one(2, _rewrite_round2(wrong_tau)))
    assert 2 == caught.value.counterparty


def test_bad_commitment_aborts_naming_the_committer() -> None:
    """A round-1 commitment that the round-2 opening does not match aborts naming its sender."""
    setups = _fresh()

    def other_commitment(message: bytes) -> bytes:
        return message[:38] + secrets.token_bytes(32) + message[70:]

    with pytest.raises(CommitmentMismatch) as caught:
        _sign(setups, _from_two_to_one(1, other_commitment))
    assert 2 == caught.value.counterparty
    _assert_discarded(setups)


def test_opening_to_another_nonce_point_is_refused() -> None:
    """Decommitting to a different R_j is refused (equivocation on the nonce)."""
    setups = _fresh()

    def other_point(message: SignRound2) -> SignRound2:
        return dataclasses.replace(message, nonce_point=base_mul(12345))

    with pytest.raises(CommitmentMismatch):
        _sign(setups, _from_two_to_one(2, _rewrite_round2(other_point)))


def test_wrong_public_share_is_refused() -> None:
    """Public shares that do not sum to the group key abort the session."""
    setups = _fresh()

    def other_share(message: SignRound2) -> SignRound2:
        return dataclasses.replace(message, public_share=add([message.public_share, base_mul(1)]))

    with pytest.raises((PublicShareMismatch, MultiplicationCheckFailure)):
        _sign(setups, _from_two_to_one(2, _rewrite_round2(other_share)))
    _assert_discarded(setups)


def test_wrong_key_share_fails_the_public_share_sum() -> None:
    """A co-signer using another key share (consistently) fails sum(pk_j) = key."""
    setups = _fresh()
    honest = _shares()[2]
    shares = {1: _shares()[1], 2: dataclasses.replace(honest, secret_share=(honest.secret_share + 1) % Q)}
    with pytest.raises(PublicShareMismatch) as caught:
        sign_locally(shares, setups, secrets.token_bytes(32))
    assert 2 == caught.value.counterparty
    _assert_discarded(setups)


def test_wrong_psi_is_caught_by_verifying_the_signature() -> None:
    """A wrong psi passes the pairwise checks but the signature is verified and never released."""
    setups = _fresh()

    def other_psi(message: SignRound2) -> SignRound2:
        return dataclasses.replace(message, psi=(message.psi + 1) % Q)

    with pytest.raises(SignatureInvalid) as caught:
        _sign(setups, _from_two_to_one(2, _rewrite_round2(other_psi)))
    assert (2,) == caught.value.counterparties
    _assert_discarded(setups)


def test_wrong_signature_share_is_never_released() -> None:
    """A wrong u_j in round 3 yields an invalid signature, which is refused."""
    setups = _fresh()

    def other_u(message: bytes) -> bytes:
        parsed = SignRound3.parse(message, sender=2, session_id=message[6:38])
        return dataclasses.replace(parsed, u=(parsed.u + 1) % Q).serialize()

    with pytest.raises(SignatureInvalid):
        _sign(setups, _from_two_to_one(3, other_u))


def test_equivocated_nonce_point_is_named() -> None:
    """A round-3 echo of a different R names its sender."""
    setups = _fresh()

    def other_r(message: bytes) -> bytes:
        parsed = SignRound3.parse(message, sender=2, session_id=message[6:38])
        return dataclasses.replace(parsed, nonce_point=base_mul(99)).serialize()

    with pytest.raises(TranscriptMismatch) as caught:
        _sign(setups, _from_two_to_one(3, other_r))
    assert 2 == caught.value.counterparty


@pytest.mark.slow  # a whole protocol run per example
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 2, 3]), st.integers(0, 2**32), st.integers(1, 255))
def test_one_byte_changed_message_is_refused(round_number: int, position_seed: int, xor: int) -> None:
    """Any message with one byte changed makes the session abort; no signature is released."""
    size = {1: ROUND1_BYTES, 2: ROUND2_BYTES, 3: ROUND3_BYTES}[round_number]
    position = position_seed % size

    def flip(message: bytes) -> bytes:
        changed = bytearray(message)
        changed[position] ^= xor
        return bytes(changed)

    setups = _fresh()
    with pytest.raises(EcdsaError):
        _sign(setups, _from_two_to_one(round_number, flip))
    assert setups[1][2].discarded


def test_truncated_and_extended_messages_name_the_sender() -> None:
    """A short message or trailing bytes are a MalformedMessage naming the sender."""
    for change in (lambda m: m[:-1], lambda m: m + b"\x00"):
        setups = _fresh()
        with pytest.raises(MalformedMessage) as caught:
            _sign(setups, _from_two_to_one(1, change))
        assert 2 == caught.value.sender


def test_message_from_another_session_is_refused() -> None:
    """A round-1 message with another session id is refused, naming the sender."""
    setups = _fresh()

    def other_session(message: bytes) -> bytes:
        return message[:6] + secrets.token_bytes(32) + message[38:]

    with pytest.raises(MalformedMessage) as caught:
        _sign(setups, _from_two_to_one(1, other_session))
    assert 2 == caught.value.sender


def test_missing_and_unexpected_senders_are_refused() -> None:
    """round2 needs exactly one message per peer: a missing or foreign sender aborts."""
    setups = _fresh((1, 2, 3))
    shares = _shares()
    session = SigningSession(key=shares[1], signers=[1, 2, 3], digest=bytes(32),
                             nonce=secrets.token_bytes(16), setups=setups[1])
    session.round1()
    with pytest.raises(MalformedMessage) as caught:
        session.round2({2: b""})
    assert 3 == caught.value.sender
    assert setups[1][2].discarded and setups[1][3].discarded


def test_abort_reported_by_the_service_discards_setups_and_fresh_pairing_recovers() -> None:
    """abort() discards the session's setups; a fresh base OT makes the pair usable again."""
    setups = _fresh()
    shares = _shares()
    session = SigningSession(key=shares[2], signers=[1, 2], digest=bytes(32),
                             nonce=secrets.token_bytes(16), setups=setups[2])
    session.round1()
    session.abort("co-signer 1 reported an abort")
    assert setups[2][1].discarded
    with pytest.raises(SessionStateError):
        session.round2({1: b""})
    renewed = _fresh()
    signatures = sign_locally({1: shares[1], 2: shares[2]}, renewed, secrets.token_bytes(32))
    assert 1 == len(set(signatures.values()))


def test_messages_round_trip() -> None:
    """serialize(parse(bytes)) == bytes for the three signing messages."""
    setups = _fresh()
    seen: dict[int, bytes] = {}

    def record(number: int, sender: int, receiver: int, message: bytes) -> bytes:
        if sender == 2 and receiver == 1:
            seen[number] = message
        return message

    _sign(setups, record)
    sid = seen[1][6:38]
    assert seen[1] == SignRound1.parse(seen[1], sender=2, receiver=1, session_id=sid).serialize()
    assert seen[2] == SignRound2.parse(seen[2], sender=2, receiver=1, session_id=sid).serialize()
    assert seen[3] == SignRound3.parse(seen[3], sender=2, session_id=sid).serialize()


def test_abort_stops_parallel_sessions_with_the_same_peer() -> None:
    """A session running in parallel on the same setup stops at its next round after an abort."""
    setups = _fresh()
    shares = _shares()
    nonce_a, nonce_b, digest = secrets.token_bytes(16), secrets.token_bytes(16), secrets.token_bytes(32)
    a1 = SigningSession(key=shares[1], signers=[1, 2], digest=digest, nonce=nonce_a, setups=setups[1])
    a2 = SigningSession(key=shares[2], signers=[1, 2], digest=digest, nonce=nonce_a, setups=setups[2])
    b1 = SigningSession(key=shares[1], signers=[1, 2], digest=digest, nonce=nonce_b, setups=setups[1])
    b2 = SigningSession(key=shares[2], signers=[1, 2], digest=digest, nonce=nonce_b, setups=setups[2])
    b1_first, b2_first = b1.round1(), b2.round1()
    a1.round1()
    a2_first = a2.round1()
    broken = bytearray(a2_first[1])
    broken[38 + 32 + 77] ^= 1
    with pytest.raises(OtConsistencyFailure):
        a1.round2({2: bytes(broken)})
    with pytest.raises(SetupDiscarded) as caught:
        b1.round2({2: b2_first[1]})
    assert 2 == caught.value.counterparty
    b2.round2({1: b1_first[2]})  # party 2 has not heard of the abort yet; its peer refuses anyway


def test_every_header_byte_is_checked() -> None:
    """A changed byte anywhere in the header (type, version, sender, receiver, session) is refused."""
    setups = _fresh()
    seen: dict[int, bytes] = {}

    def record(number: int, sender: int, receiver: int, message: bytes) -> bytes:
        if sender == 2 and receiver == 1:
            seen[number] = message
        return message

    _sign(setups, record)
    sid = seen[1][6:38]
    parsers: dict[int, Callable[[bytes], object]] = {
        1: lambda data: SignRound1.parse(data, sender=2, receiver=1, session_id=sid),
        2: lambda data: SignRound2.parse(data, sender=2, receiver=1, session_id=sid),
        3: lambda data: SignRound3.parse(data, sender=2, session_id=sid)}
    for number, parse in parsers.items():
        for position in range(38):
            changed = bytearray(seen[number])
            changed[position] ^= 0x01
            with pytest.raises(MalformedMessage) as caught:
                parse(bytes(changed))
            assert 2 == caught.value.sender


def test_out_of_range_scalar_and_off_curve_point_are_refused() -> None:
    """u = q (not below the order) and an x with no curve point are MalformedMessage from the sender."""
    sid = bytes(32)
    good = SignRound3(2, sid, base_mul(5), 1, 2).serialize()
    too_big = good[:38 + 33] + Q.to_bytes(32, "big") + good[38 + 65:]
    off_curve = good[:38] + b"\x02" + bytes(32) + good[38 + 33:]
    bad_prefix = good[:38] + b"\x04" + good[39:]
    assert good == SignRound3.parse(good, sender=2, session_id=sid).serialize()
    for data in (too_big, off_curve, bad_prefix):
        with pytest.raises(MalformedMessage) as caught:
            SignRound3.parse(data, sender=2, session_id=sid)
        assert 2 == caught.value.sender
