"""DKLs23 threshold ECDSA signing: honest runs (2-of-3, 3-of-5), verification, HD, refusals."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

import coincurve
import pytest
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction

from coffer.mpc.ecdsa import (
    KeyShare,
    PeerSetup,
    SecretReuse,
    SessionStateError,
    SignerSetError,
    SigningSession,
    default_chain_code,
    derive,
    ethereum_address,
)
from coffer.mpc.ecdsa.curve import Q, system_rng
from coffer.mpc.ecdsa.dealer import deal_key
from coffer.mpc.ecdsa.local import pair_all, sign_locally
from coffer.mpc.ecdsa.sign import HALF_ORDER, Signature


@cache
def _key(threshold: int, participants: int) -> tuple[int, dict[int, KeyShare], dict[int, dict[int, PeerSetup]]]:
    """A dealt key with honest setups between all participants (never aborted in this module)."""
    key_id = f"key-{threshold}-of-{participants}".encode()
    secret, shares = deal_key(key_id, threshold, participants, system_rng)
    return secret, {s.identifier: s for s in shares}, pair_all(list(range(1, participants + 1)), key_id)


def _verify(public_key: bytes, digest: bytes, signature: Signature) -> None:
    assert signature.s <= HALF_ORDER
    assert coincurve.PublicKey(public_key).verify(signature.to_der(), digest, hasher=None)
    recovered = Account._recover_hash(digest, vrs=(27 + signature.recovery_id, signature.r, signature.s))
    assert ethereum_address(public_key) == recovered


@pytest.mark.parametrize("signers", [(1, 2), (1, 3), (2, 3), (1, 2, 3)])
def test_two_of_three_signs_for_every_quorum(signers: tuple[int, ...]) -> None:
    """Every quorum of a 2-of-3 key produces one signature that coincurve and ecrecover accept."""
    _, shares, setups = _key(2, 3)
    digest = hashlib.sha256(b"withdrawal " + bytes(signers)).digest()
    signatures = sign_locally({i: shares[i] for i in signers}, setups, digest)
    assert 1 == len(set(signatures.values()))
    _verify(shares[1].public_key, digest, signatures[signers[0]])


def test_three_of_five_signs() -> None:
    """A 3-of-5 key signs with the quorum {2, 4, 5}."""
    _, shares, setups = _key(3, 5)
    digest = secrets.token_bytes(32)
    signatures = sign_locally({i: shares[i] for i in (2, 4, 5)}, setups, digest)
    _verify(shares[1].public_key, digest, signatures[2])


def test_signatures_cover_both_recovery_parities() -> None:
    """Over several signatures both recovery ids 0 and 1 occur, and each recovers the key."""
    _, shares, setups = _key(2, 3)
    seen = set()
    for _ in range(12):
        digest = secrets.token_bytes(32)
        signature = sign_locally({i: shares[i] for i in (1, 2)}, setups, digest)[1]
        _verify(shares[1].public_key, digest, signature)
        seen.add(signature.recovery_id)
        if seen == {0, 1}:
            break
    assert {0, 1} == seen


def test_eip1559_transaction_recovers_to_the_mpc_address() -> None:
    """A jointly signed EIP-1559 transaction is accepted by eth-account's recover_transaction."""
    _, shares, setups = _key(2, 3)
    transaction = {"type": 2, "chainId": 131277322940537, "nonce": 0, "gas": 21000,
                   "maxFeePerGas": 2_000_000_000, "maxPriorityFeePerGas": 1_000_000_000,
                   "to": "0x" + "11" * 20, "value": 12345, "data": b"", "accessList": []}
    digest = TypedTransaction.from_dict(transaction).hash()
    signature = sign_locally({i: shares[i] for i in (2, 3)}, setups, digest)[2]
    raw = TypedTransaction.from_dict(dict(transaction, v=signature.recovery_id, r=signature.r,
                                          s=signature.s)).encode()
    assert ethereum_address(shares[1].public_key) == Account.recover_transaction(raw)


def test_hd_tweaked_key_signs_for_its_deposit_address() -> None:
    """Co-signers sign for a derived deposit address by passing its public tweak; no new DKG."""
    secret, shares, setups = _key(2, 3)
    public_key = shares[1].public_key
    derivation = derive(public_key, default_chain_code(public_key, b"key-2-of-3"), [7, 42])
    assert coincurve.PrivateKey(((secret + derivation.tweak) % Q).to_bytes(32, "big")).public_key.format() \
        == derivation.public_key
    digest = secrets.token_bytes(32)
    signature = sign_locally({i: shares[i] for i in (1, 3)}, setups, digest, tweak=derivation.tweak)[3]
    _verify(derivation.public_key, digest, signature)
    assert ethereum_address(derivation.public_key) != ethereum_address(public_key)


def test_fewer_than_threshold_is_refused() -> None:
    """A signer set smaller than t is refused before any secret is drawn."""
    _, shares, setups = _key(3, 5)
    with pytest.raises(SignerSetError):
        SigningSession(key=shares[1], signers=[1, 2], digest=bytes(32), nonce=bytes(16), setups=setups[1])


def test_bad_signer_sets_are_refused() -> None:
    """Duplicates, identifiers out of range, and a set without this party are refused."""
    _, shares, setups = _key(2, 3)
    for signers in ([1, 1], [1, 0], [2, 3], [1, 70000]):
        with pytest.raises(SignerSetError):
            SigningSession(key=shares[1], signers=signers, digest=bytes(32), nonce=bytes(16),
                           setups=setups[1])


def test_rounds_are_single_use() -> None:
    """A round cannot run twice: per-session secrets are consumed once, in order."""
    _, shares, setups = _key(2, 3)
    session = SigningSession(key=shares[1], signers=[1, 2], digest=bytes(32),
                             nonce=secrets.token_bytes(16), setups=setups[1])
    with pytest.raises(SecretReuse):
        session.round2({})
    session.round1()
    with pytest.raises(SecretReuse):
        session.round1()
    session.abort("test over")  # discards 1's setup with 2: rebuild the cache for later tests
    _key.cache_clear()


def test_session_id_cannot_be_replayed_on_a_setup() -> None:
    """The same session (key, signers, digest, nonce) is refused a second time, without discarding."""
    _, shares, setups = _key(2, 3)
    nonce = secrets.token_bytes(16)
    first = SigningSession(key=shares[1], signers=[1, 3], digest=bytes(32), nonce=nonce, setups=setups[1])
    first.round1()
    again = SigningSession(key=shares[1], signers=[1, 3], digest=bytes(32), nonce=nonce, setups=setups[1])
    with pytest.raises(SecretReuse):
        again.round1()
    assert not setups[1][3].discarded


def test_used_marker_is_persisted_before_each_output() -> None:
    """mark_used(session_id, round) runs before rounds 1-3 return, and a failure withholds output."""
    _, shares, setups = _key(2, 3)
    calls: list[tuple[bytes, int]] = []
    session = SigningSession(key=shares[2], signers=[2, 3], digest=bytes(32),
                             nonce=secrets.token_bytes(16), setups=setups[2],
                             mark_used=lambda sid, number: calls.append((sid, number)))
    session.round1()
    assert [(session.session_id, 1)] == calls

    def refuse(session_id: bytes, number: int) -> None:
        raise OSError("store unavailable")

    failing = SigningSession(key=shares[2], signers=[2, 3], digest=bytes(32),
                             nonce=secrets.token_bytes(16), setups=setups[2], mark_used=refuse)
    with pytest.raises(OSError):
        failing.round1()
    assert setups[2][3].discarded  # the session is over; no output ever left
    with pytest.raises(SessionStateError):
        failing.round2({3: b""})
    _key.cache_clear()


def test_session_id_binds_every_input() -> None:
    """Changing the digest, signer set, nonce or tweak changes the session id."""
    _, shares, setups = _key(2, 3)

    def sid(signers: list[int], digest: bytes, nonce: bytes, tweak: int = 0) -> bytes:
        return SigningSession(key=shares[1], signers=signers, digest=digest, nonce=nonce,
                              setups=setups[1], tweak=tweak).session_id

    base = sid([1, 2], bytes(32), bytes(16))
    assert base != sid([1, 3], bytes(32), bytes(16))
    assert base != sid([1, 2], b"\x01" + bytes(31), bytes(16))
    assert base != sid([1, 2], bytes(32), b"\x01" + bytes(15))
    assert base != sid([1, 2], bytes(32), bytes(16), tweak=5)


def test_secrets_are_redacted_in_reprs() -> None:
    """Key shares, setups and sessions never show secret material in their repr."""
    secret, shares, setups = _key(2, 3)
    for text in (repr(shares[1]), repr(setups[1][2]), str(shares[1])):
        assert str(shares[1].secret_share) not in text
        assert "redacted" in text
    assert str(secret) not in repr(shares[1])


def test_ethereum_address_of_a_known_key() -> None:
    """The private key 1 has the well-known address 0x7E5F...5Bdf (EIP-55 checksummed)."""
    public_key = coincurve.PrivateKey((1).to_bytes(32, "big")).public_key.format()
    assert "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf" == ethereum_address(public_key)
