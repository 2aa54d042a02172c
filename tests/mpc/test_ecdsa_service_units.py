"""The ECDSA co-signer's building blocks without processes: sealed pairwise channels, the durable
session marks, and sealed shares under the HSM key."""

from __future__ import annotations

import secrets
from pathlib import Path

import coincurve
import pytest

from coffer.mpc.ecdsa_service.channel import PairChannel
from coffer.mpc.ecdsa_service.store import EcdsaKeyRecord, EcdsaStore, EcdsaVault
from coffer.mpc.service.errors import ProtocolViolation, SessionReplayed
from coffer.testing import TokenHandle


def _pair() -> tuple[PairChannel, PairChannel]:
    first, second = coincurve.PrivateKey(), coincurve.PrivateKey()
    return (PairChannel(first.secret, second.public_key.format(), key_id="k", me=1, peer=2),
            PairChannel(second.secret, first.public_key.format(), key_id="k", me=2, peer=1))


def test_channel_round_trip() -> None:
    """A message sealed by one co-signer opens at its peer, in the same context only."""
    one, two = _pair()
    sealed = one.seal("sign", b"session", 1, b"round one")
    assert b"round one" == two.open("sign", b"session", 1, sealed)


@pytest.mark.parametrize("change", ["byte", "round", "context", "purpose", "direction"])
def test_channel_refuses_tampering_and_misrouting_naming_the_sender(change: str) -> None:
    """A flipped byte, another round, session or purpose, or a reflected message: refused, sender named."""
    one, two = _pair()
    sealed = one.seal("sign", b"session", 1, b"round one")
    with pytest.raises(ProtocolViolation) as refused:
        if change == "byte":
            two.open("sign", b"session", 1, sealed[:-1] + bytes([sealed[-1] ^ 1]))
        elif change == "round":
            two.open("sign", b"session", 2, sealed)
        elif change == "context":
            two.open("sign", b"other", 1, sealed)
        elif change == "purpose":
            two.open("pair", b"session", 1, sealed)
        else:
            one.open("sign", b"session", 1, sealed)  # a message sent back to its author
    assert refused.value.sender in (1, 2)


def test_channel_repr_redacts() -> None:
    """The channel's repr names the pair only."""
    one, _ = _pair()
    assert "PairChannel(me=1, peer=2, <redacted>)" == repr(one)


def test_session_marks_are_single_use(tmp_path: Path) -> None:
    """A session id opens once; each round's mark moves forward only."""
    store = EcdsaStore(tmp_path / "ecdsa.db")
    session = secrets.token_bytes(32)
    store.open_session(session, "k", "t", cosigner=1)
    with pytest.raises(SessionReplayed):
        store.open_session(session, "k", "t", cosigner=1)
    store.mark_used(session, 1, cosigner=1)
    with pytest.raises(SessionReplayed):
        store.mark_used(session, 1, cosigner=1)
    store.mark_used(session, 2, cosigner=1)
    store.close()
    assert 2 == EcdsaStore(tmp_path / "ecdsa.db").session_round(session)


def test_shares_are_sealed_under_the_hsm_key_and_bound_to_key_and_version(tmp_path: Path, token: TokenHandle) -> None:
    """The store holds only ciphertext; opening under another key id or version fails."""
    hsm = token.open()
    try:
        vault = EcdsaVault(hsm, 1)
        secret = secrets.token_bytes(32)
        sealed = vault.seal_share("k", 1, secret)
        assert secret not in sealed
        assert secret == bytes(vault.open_share("k", 1, sealed))
        with pytest.raises(Exception):  # noqa: B017 - the HSM layer's decryption failure
            vault.open_share("k", 2, sealed)
        store = EcdsaStore(tmp_path / "ecdsa.db")
        point = coincurve.PrivateKey().public_key.format()
        store.put_share(EcdsaKeyRecord("k", 1, "active", 1, 2, point, {1: point}, {1: point}), sealed, "t")
        assert secret not in (tmp_path / "ecdsa.db").read_bytes()
        assert 1 == store.key("k").identifier
    finally:
        hsm.close()
