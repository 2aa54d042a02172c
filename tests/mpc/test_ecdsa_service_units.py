"""The ECDSA co-signer's building blocks without processes: sealed pairwise channels, the durable
session marks, and sealed shares under the HSM key."""

from __future__ import annotations

import secrets
from pathlib import Path

import coincurve
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


class _NoHalt:
    def require_clear(self) -> None:
        return None


@pytest.fixture
def cosigner(tmp_path: Path, token: TokenHandle):  # type: ignore[no-untyped-def]
    """An in-process co-signer (its own token and store; a guard that is never reached here)."""
    from coffer.mpc.ecdsa_service.cosigner import EcdsaCosigner

    hsm = token.open()
    store = EcdsaStore(tmp_path / "ecdsa.db")
    yield EcdsaCosigner(1, store, EcdsaVault(hsm, 1), guard=None, halt=_NoHalt())  # type: ignore[arg-type]
    store.close()
    hsm.close()


_ROUTES = ["status", "hostkey", "dkg_step1", "dkg_step2", "dkg_finalize", "pair_start", "pair_step", "sign_round1",
           "sign_round2", "sign_round3", "sign_abort", "reshare_deal", "reshare_receive", "reshare_confirm"]
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 300) | st.text(max_size=8)
                     | st.sampled_from(["00" * 32, "k", "hot-eth"]),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(
                         st.sampled_from(["key_id", "version", "signers", "nonce", "spend", "approvals", "peer",
                                          "round", "message", "session_id", "messages", "session", "digest", "1"]),
                         children, max_size=6), max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(_ROUTES), body=st.one_of(_JSON, st.binary(max_size=40)))
def test_arbitrary_request_bodies_only_ever_give_expected_errors(cosigner, route: str,  # type: ignore[no-untyped-def]
                                                                 body: object) -> None:
    """Any body on any route is answered or refused with an expected, typed error; never a crash."""
    from coffer.mpc.ecdsa_service.server import EXPECTED_ERRORS
    from coffer.mpc.errors import MpcError
    from coffer.mpc.service.wire import encode_body

    data = body if isinstance(body, bytes) else encode_body({"x": body})[5:-1] if not isinstance(body, dict) \
        else encode_body(body)
    try:
        getattr(cosigner, route)(data)
    except (*EXPECTED_ERRORS, MpcError):
        pass
