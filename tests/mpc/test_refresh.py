"""Refresh (same key, new shares) and re-share (new holders / threshold, revocation)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.mpc.dkg import chilldkg, dealing, ed25519, refresh, reshare, secp256k1_untweaked
from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.dealing import Holder
from coffer.mpc.dkg.errors import (
    FaultyParticipantError,
    HostSeckeyError,
    InvalidArgument,
    InvalidDealing,
    ProtocolError,
)
from coffer.mpc.dkg.local import run_local_dkg
from coffer.mpc.dkg.refresh import RefreshSession
from coffer.mpc.dkg.reshare import ReshareSession
from coffer.mpc.dkg.suite import DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.dkg.verify import verify_output
from coffer.mpc.dkg.vss import lagrange_coefficient
from coffer.mpc.errors import DuplicateIdentifier, InsufficientSigners, MpcError

PROTOCOLS = [pytest.param(chilldkg, id="secp256k1"), pytest.param(ed25519, id="ed25519"),
             pytest.param(secp256k1_untweaked, id="secp256k1-untweaked")]


@dataclasses.dataclass
class Group:
    suite: DkgSuite
    keys: dict[int, bytes]
    holders: tuple[Holder, ...]
    outputs: dict[int, KeyShareOutput]
    rng: random.Random

    @property
    def public(self) -> KeyShareOutput:
        return next(iter(self.outputs.values())).without_secret()

    def share(self, identifier: int) -> SecretShare:
        share = self.outputs[identifier].secret_share
        assert share is not None
        return share


def make_group(dkg: DkgProtocol, n: int = 5, t: int = 3, seed: int = 21) -> Group:
    rng = random.Random(seed)
    keys = [rng.randbytes(32) for _ in range(n)]
    result = run_local_dkg(dkg, keys, t, rng.randbytes)
    holders = tuple(Holder(i + 1, dkg.hostpubkey_gen(key)) for i, key in enumerate(keys))
    outputs = {i + 1: output for i, output in enumerate(result.participant_outputs)}
    return Group(dkg.suite, {i + 1: key for i, key in enumerate(keys)}, holders, outputs, rng)


def secret_of(suite: DkgSuite, shares: list[SecretShare]) -> int:
    """Test only: Lagrange interpolation at zero."""
    ids = [share.identifier for share in shares]
    return sum(share.value * lagrange_coefficient(ids, share.identifier, suite.order) for share in shares) % suite.order


def refresh_session(group: Group) -> RefreshSession:
    public = group.public
    return RefreshSession(group.rng.randbytes(32), public.threshold, public.group_public_key, group.holders,
                          dict(public.public_shares))


def run_refresh(group: Group, session: RefreshSession) -> dict[int, KeyShareOutput]:
    dealings = {i: refresh.refresh_deal(group.suite, session, key, group.rng.randbytes(32))
                for i, key in group.keys.items()}
    return {i: refresh.refresh_receive(group.suite, session, key, group.share(i), dealings)
            for i, key in group.keys.items()}


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_keeps_the_key_and_changes_the_shares(dkg: DkgProtocol) -> None:
    """After a refresh the group key is the same, every share and public share changed."""
    group = make_group(dkg)
    session = refresh_session(group)
    new = run_refresh(group, session)
    suite = group.suite
    for identifier, output in new.items():
        verify_output(suite, output)
        assert group.public.group_public_key == output.group_public_key
        assert group.share(identifier).value != output.secret_share.value  # type: ignore[union-attr]
        assert group.public.public_shares[identifier] != output.public_shares[identifier]
        assert new[1].public_shares == output.public_shares
    new_shares = [new[i].secret_share for i in (1, 3, 5)]
    old_secret = secret_of(suite, [group.share(i) for i in (2, 3, 4)])
    assert old_secret == secret_of(suite, new_shares)  # type: ignore[arg-type]
    # A stolen old share no longer combines with new ones.
    assert old_secret != secret_of(suite, [group.share(1), new[3].secret_share, new[5].secret_share])  # type: ignore[list-item]


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_observer_and_acknowledgments(dkg: DkgProtocol) -> None:
    """The coordinator's public view matches the holders', and every acknowledgment verifies."""
    group = make_group(dkg, n=3, t=2)
    session = refresh_session(group)
    dealings = {i: refresh.refresh_deal(group.suite, session, key, group.rng.randbytes(32))
                for i, key in group.keys.items()}
    observed = refresh.refresh_observe(group.suite, session, dealings)
    received = refresh.refresh_receive(group.suite, session, group.keys[2], group.share(2), dealings)
    assert observed.public_shares == received.public_shares
    digest = refresh.transcript_digest(group.suite, session, dealings)
    acks = {i: dealing.ack_sign(group.suite, key, digest, bytes([i]) * 32) for i, key in group.keys.items()}
    dealing.acks_verify(group.suite, group.holders, digest, acks)
    acks[3] = acks[1]
    with pytest.raises(FaultyParticipantError) as info:
        dealing.acks_verify(group.suite, group.holders, digest, acks)
    assert 3 == info.value.culprit


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_refuses_a_nonzero_constant(dkg: DkgProtocol) -> None:
    """A dealing whose constant commitment is not the identity is refused, naming the dealer."""
    group = make_group(dkg, n=3, t=2)
    session = refresh_session(group)
    plan = refresh._plan(group.suite, session)
    dealings = {i: refresh.refresh_deal(group.suite, session, key, group.rng.randbytes(32))
                for i, key in group.keys.items()}
    dealings[2] = dealing.deal(group.suite, plan, group.keys[2], 2, 99, group.rng.randbytes(32))
    with pytest.raises(InvalidDealing) as info:
        refresh.refresh_receive(group.suite, session, group.keys[1], group.share(1), dealings)
    assert 2 == info.value.culprit
    with pytest.raises(InvalidDealing):
        refresh.refresh_observe(group.suite, session, dealings)


def resign(suite: DkgSuite, plan: dealing.DealingPlan, key: bytes, body: bytes) -> bytes:
    """A malicious dealer signs a body of its choice."""
    return body + suite.sign(dealing._signed_message(suite, plan, body), suite.host_secret_scalar(key),
                             bytes(32), suite.host_signature_tag)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_bad_sub_share_names_the_dealer(dkg: DkgProtocol) -> None:
    """A signed dealing with a wrong encrypted sub-share for holder 1 is refused by holder 1."""
    group = make_group(dkg, n=3, t=2)
    suite = group.suite
    session = refresh_session(group)
    plan = refresh._plan(suite, session)
    dealings = {i: refresh.refresh_deal(suite, session, key, group.rng.randbytes(32))
                for i, key in group.keys.items()}
    body = bytearray(dealings[3][:-64])
    offset = 8 + suite.element_length * (plan.threshold + 1)
    share = suite.decode_scalar(bytes(body[offset:offset + 32]))
    body[offset:offset + 32] = suite.encode_scalar((share + 1) % suite.order)
    dealings[3] = resign(suite, plan, group.keys[3], bytes(body))
    with pytest.raises(InvalidDealing) as info:
        refresh.refresh_receive(suite, session, group.keys[1], group.share(1), dealings)
    assert 3 == info.value.culprit
    refresh.refresh_receive(suite, session, group.keys[2], group.share(2), dealings)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_missing_or_foreign_dealings(dkg: DkgProtocol) -> None:
    """A missing dealing names its dealer; a dealing signed by someone else is refused."""
    group = make_group(dkg, n=3, t=2)
    session = refresh_session(group)
    dealings = {i: refresh.refresh_deal(group.suite, session, key, group.rng.randbytes(32))
                for i, key in group.keys.items()}
    with pytest.raises(FaultyParticipantError) as info:
        refresh.refresh_receive(group.suite, session, group.keys[1], group.share(1),
                                {1: dealings[1], 3: dealings[3]})
    assert 2 == info.value.culprit
    swapped = dict(dealings)
    swapped[2] = dealings[3]
    with pytest.raises(InvalidDealing) as bad:
        refresh.refresh_observe(group.suite, session, swapped)
    assert 2 == bad.value.culprit
    # A dealing from another session (other session id) is refused too.
    other = dataclasses.replace(session, session_id=bytes([1]) * 32)
    with pytest.raises(InvalidDealing):
        refresh.refresh_observe(group.suite, other, dealings)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_refuses_duplicate_identifiers_and_wrong_old_share(dkg: DkgProtocol) -> None:
    """Duplicate identifiers in the session and an old share that does not match are refused."""
    group = make_group(dkg, n=3, t=2)
    session = refresh_session(group)
    duplicated = dataclasses.replace(session, holders=(group.holders[0], Holder(1, group.holders[1].hostpubkey),
                                                       group.holders[2]))
    with pytest.raises(DuplicateIdentifier):
        refresh.refresh_deal(group.suite, duplicated, group.keys[1], bytes([1]) * 32)
    dealings = {i: refresh.refresh_deal(group.suite, session, key, group.rng.randbytes(32))
                for i, key in group.keys.items()}
    with pytest.raises(InvalidArgument):
        refresh.refresh_receive(group.suite, session, group.keys[1], SecretShare(1, 42), dealings)


def reshare_session(group: Group, dealers: list[int], new_ids: list[int], new_t: int,
                    new_keys: dict[int, bytes]) -> ReshareSession:
    public = group.public
    by_id = {holder.identifier: holder for holder in group.holders}
    return ReshareSession(
        session_id=group.rng.randbytes(32), group_public_key=public.group_public_key,
        old_threshold=public.threshold, old_public_shares=dict(public.public_shares),
        dealers=tuple(by_id[i] for i in dealers), new_threshold=new_t,
        new_holders=tuple(Holder(i, group.suite.pubkey_gen(new_keys[i])) for i in new_ids))


def run_reshare(group: Group, session: ReshareSession, new_keys: dict[int, bytes]) -> dict[int, KeyShareOutput]:
    dealings = {holder.identifier: reshare.reshare_deal(group.suite, session, group.keys[holder.identifier],
                                                        group.share(holder.identifier), group.rng.randbytes(32))
                for holder in session.dealers}
    observed = reshare.reshare_observe(group.suite, session, dealings)
    outputs = {i: reshare.reshare_receive(group.suite, session, key, dealings) for i, key in new_keys.items()}
    for output in outputs.values():
        assert observed.public_shares == output.public_shares
    return outputs


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_reshare_revokes_a_holder(dkg: DkgProtocol) -> None:
    """3-of-5 re-shared to 3-of-4 without holder 4: same key; holder 4's old share is useless."""
    group = make_group(dkg)
    suite = group.suite
    new_keys = {i: group.keys[i] for i in (1, 2, 3, 5)}
    session = reshare_session(group, [1, 2, 5], [1, 2, 3, 5], 3, new_keys)
    new = run_reshare(group, session, new_keys)
    secret = secret_of(suite, [group.share(i) for i in (1, 2, 3)])
    for output in new.values():
        verify_output(suite, output)
        assert group.public.group_public_key == output.group_public_key
        assert 4 not in output.public_shares
    assert secret == secret_of(suite, [new[i].secret_share for i in (1, 3, 5)])  # type: ignore[misc]
    # The revoked holder's old share does not combine with any two new shares.
    for pair in ((1, 2), (2, 3), (3, 5), (1, 5)):
        combined = [group.share(4), *(new[i].secret_share for i in pair)]
        assert secret != secret_of(suite, combined)  # type: ignore[arg-type]
    # And it cannot take part in the re-share as a recipient.
    with pytest.raises(HostSeckeyError):
        reshare.reshare_receive(suite, session, group.keys[4], {})


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_reshare_changes_the_threshold_and_identifiers(dkg: DkgProtocol) -> None:
    """3-of-5 re-shared to 2-of-3 new holders with fresh host keys and identifiers 7, 8, 9."""
    group = make_group(dkg, seed=33)
    suite = group.suite
    new_keys = {i: group.rng.randbytes(32) for i in (7, 8, 9)}
    session = reshare_session(group, [2, 3, 4, 5], [7, 8, 9], 2, new_keys)
    new = run_reshare(group, session, new_keys)
    secret = secret_of(suite, [group.share(i) for i in (1, 2, 3)])
    for pair in ((7, 8), (8, 9), (7, 9)):
        assert secret == secret_of(suite, [new[i].secret_share for i in pair])  # type: ignore[misc]
    verify_output(suite, new[7])


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_reshare_refuses_a_wrong_constant_commitment(dkg: DkgProtocol) -> None:
    """A dealer that deals anything but lambda_i * s_i is refused and named."""
    group = make_group(dkg, seed=44)
    suite = group.suite
    new_keys = {i: group.keys[i] for i in (1, 2, 3)}
    session = reshare_session(group, [1, 2, 3], [1, 2, 3], 2, new_keys)
    plan = reshare._plan(suite, session)
    dealings = {i: reshare.reshare_deal(suite, session, group.keys[i], group.share(i), group.rng.randbytes(32))
                for i in (1, 2, 3)}
    dealings[3] = dealing.deal(suite, plan, group.keys[3], 3, group.share(3).value + 1, group.rng.randbytes(32))
    with pytest.raises(InvalidDealing) as info:
        reshare.reshare_receive(suite, session, new_keys[1], dealings)
    assert 3 == info.value.culprit
    assert "constant" in str(info.value)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_reshare_needs_a_quorum(dkg: DkgProtocol) -> None:
    """Fewer dealers than the old threshold cannot re-share."""
    group = make_group(dkg, seed=55)
    new_keys = {i: group.keys[i] for i in (1, 2)}
    session = reshare_session(group, [1, 2], [1, 2], 2, new_keys)
    with pytest.raises(InsufficientSigners):
        reshare.reshare_deal(group.suite, session, group.keys[1], group.share(1), bytes([1]) * 32)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_after_reshare(dkg: DkgProtocol) -> None:
    """A re-shared group refreshes like any other: the key survives both."""
    group = make_group(dkg, n=4, t=2, seed=66)
    new_keys = {i: group.keys[i] for i in (1, 2, 3)}
    new = run_reshare(group, reshare_session(group, [1, 4], [1, 2, 3], 2, new_keys), new_keys)
    regrouped = Group(group.suite, new_keys, tuple(h for h in group.holders if h.identifier in new_keys), new,
                      group.rng)
    refreshed = run_refresh(regrouped, refresh_session(regrouped))
    assert group.public.group_public_key == refreshed[2].group_public_key
    verify_output(group.suite, refreshed[2])


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_refresh_refuses_inconsistent_public_shares(dkg: DkgProtocol) -> None:
    """A session whose public shares do not lie on one polynomial through the group key is refused."""
    group = make_group(dkg, n=3, t=2)
    session = refresh_session(group)
    shares = dict(session.public_shares)
    shares[2] = shares[1]
    with pytest.raises(ProtocolError):
        refresh.refresh_deal(group.suite, dataclasses.replace(session, public_shares=shares), group.keys[1],
                             bytes([1]) * 32)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_sessions_round_trip_strictly(dkg: DkgProtocol) -> None:
    """Refresh and re-share sessions survive serialize/parse; short, long or unsorted input is refused."""
    group = make_group(dkg, n=4, t=2, seed=77)
    suite = group.suite
    session = refresh_session(group)
    data = refresh.serialize_session(suite, session)
    assert session == refresh.parse_session(suite, data)
    new_keys = {i: group.keys[i] for i in (1, 2, 4)}
    resession = reshare_session(group, [1, 3], [1, 2, 4], 2, new_keys)
    redata = reshare.serialize_session(suite, resession)
    assert resession == reshare.parse_session(suite, redata)
    for bad in (data[:-1], data + b"\x00"):
        with pytest.raises(MpcError):
            refresh.parse_session(suite, bad)
    for bad in (redata[:-1], redata + b"\x00"):
        with pytest.raises(MpcError):
            reshare.parse_session(suite, bad)
    first = 32 + 8 + suite.element_length
    entry = 4 + 2 * suite.element_length
    swapped = bytearray(data)
    swapped[first:first + entry], swapped[first + entry:first + 2 * entry] = (
        data[first + entry:first + 2 * entry], data[first:first + entry])
    with pytest.raises(MpcError):
        refresh.parse_session(suite, bytes(swapped))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_session_with_one_byte_changed_invalidates_every_dealing(position: int, mask: int) -> None:
    """Any changed byte in a refresh session is refused, or no dealing of the real session verifies under it."""
    group, session, dealings = refresh_fixture()
    data = bytearray(refresh.serialize_session(group.suite, session))
    data[position % len(data)] ^= mask
    try:
        changed = refresh.parse_session(group.suite, bytes(data))
    except MpcError:
        return
    with pytest.raises(MpcError):
        refresh.refresh_observe(group.suite, changed, dealings)


_REFRESH_FIXTURE: list[tuple[Group, RefreshSession, dict[int, bytes]]] = []


def refresh_fixture() -> tuple[Group, RefreshSession, dict[int, bytes]]:
    if not _REFRESH_FIXTURE:
        group = make_group(ed25519, n=3, t=2, seed=88)
        session = refresh_session(group)
        dealings = {i: refresh.refresh_deal(group.suite, session, key, bytes([i]) * 32) for i, key in group.keys.items()}
        _REFRESH_FIXTURE.append((group, session, dealings))
    return _REFRESH_FIXTURE[0]
