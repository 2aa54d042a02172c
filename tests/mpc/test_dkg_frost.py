"""DKG, refresh and re-share outputs feed FROST signing directly; signatures verify independently."""

from __future__ import annotations

import random

import coincurve
import pytest
from nacl.signing import VerifyKey

from coffer.mpc import frost
from coffer.mpc.dkg import chilldkg, ed25519, frost_keys, refresh, reshare
from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.dealing import Holder
from coffer.mpc.dkg.errors import InvalidArgument
from coffer.mpc.dkg.local import run_local_dkg
from coffer.mpc.dkg.types import KeyShareOutput
from coffer.mpc.frost.keys import group_by_name

MESSAGE = b"proof of reserves 2026-11-27"


def packages(outputs: list[KeyShareOutput]) -> tuple[list[frost.KeyPackage], frost.PublicKeyPackage]:
    first = outputs[0]
    group = group_by_name(first.suite)
    public = frost.PublicKeyPackage.from_encoded(group, first.threshold, first.group_public_key,
                                                 first.public_shares)
    keys = [frost.KeyPackage(o.secret_share.identifier, o.secret_share.value, public)  # type: ignore[union-attr]
            for o in outputs]
    return keys, public


def sign(suite: frost.Ciphersuite, keys: list[frost.KeyPackage], public: frost.PublicKeyPackage,
         signers: list[int], tweaks: tuple[frost.Tweak, ...] = ()) -> bytes:
    by_id = {key.identifier: key for key in keys}
    nonces, commitments = {}, []
    for identifier in signers:
        nonce, commitment = frost.commit(suite, by_id[identifier])
        nonces[identifier] = nonce
        commitments.append(commitment)
    package = frost.SigningPackage.create(commitments, MESSAGE, tweaks)
    shares = {i: frost.sign(suite, by_id[i], nonces[i], package, message=MESSAGE, tweaks=tweaks) for i in signers}
    return frost.aggregate(suite, public, package, shares)


def check(dkg: DkgProtocol, outputs: list[KeyShareOutput], signers: list[int]) -> None:
    keys, public = packages(outputs)
    if dkg.suite.name == "ed25519":
        signature = sign(frost.ED25519, keys, public, signers)
        VerifyKey(outputs[0].group_public_key).verify(MESSAGE, signature)
        return
    tweaks = (frost.taproot_tweak(public.group_public_key),)
    signature = sign(frost.SECP256K1_TR, keys, public, signers, tweaks)
    output_key = frost.SECP256K1_TR.signing_key(public, tweaks)
    assert coincurve.PublicKeyXOnly(output_key.encoding[1:]).verify(signature, MESSAGE)


PROTOCOLS = [pytest.param(chilldkg, id="secp256k1-taproot"), pytest.param(ed25519, id="ed25519")]


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_dkg_refresh_reshare_then_sign(dkg: DkgProtocol) -> None:
    """3-of-5 DKG signs; after a refresh it still signs; after revoking 4 the new set signs."""
    rng = random.Random(99)
    keys = [rng.randbytes(32) for _ in range(5)]
    result = run_local_dkg(dkg, keys, 3, rng.randbytes)
    outputs = list(result.participant_outputs)
    check(dkg, outputs, [1, 3, 5])

    holders = tuple(Holder(i + 1, dkg.hostpubkey_gen(key)) for i, key in enumerate(keys))
    session = refresh.RefreshSession(rng.randbytes(32), 3, outputs[0].group_public_key, holders,
                                     dict(outputs[0].public_shares))
    dealings = {i + 1: refresh.refresh_deal(dkg.suite, session, key, rng.randbytes(32)) for i, key in enumerate(keys)}
    refreshed = [refresh.refresh_receive(dkg.suite, session, key, o.secret_share, dealings)  # type: ignore[arg-type]
                 for key, o in zip(keys, outputs, strict=True)]
    check(dkg, refreshed, [2, 4, 5])

    kept = [1, 2, 3, 5]
    resession = reshare.ReshareSession(
        rng.randbytes(32), refreshed[0].group_public_key, 3, dict(refreshed[0].public_shares),
        tuple(holders[i - 1] for i in (1, 2, 3)), 2, tuple(holders[i - 1] for i in kept))
    dealings = {i: reshare.reshare_deal(dkg.suite, resession, keys[i - 1], refreshed[i - 1].secret_share,  # type: ignore[arg-type]
                                        rng.randbytes(32)) for i in (1, 2, 3)}
    reshared = [reshare.reshare_receive(dkg.suite, resession, keys[i - 1], dealings) for i in kept]
    check(dkg, reshared, [3, 5])


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_key_packages_round_trip(dkg: DkgProtocol) -> None:
    """DKG output -> FROST key package -> bytes -> key package -> DKG output is the identity."""
    rng = random.Random(5)
    keys = [rng.randbytes(32) for _ in range(3)]
    output = run_local_dkg(dkg, keys, 2, rng.randbytes).participant_outputs[1]
    package = frost_keys.to_key_package(output)
    assert output == frost_keys.from_key_package(frost.KeyPackage.from_bytes(package.to_bytes()))
    with pytest.raises(InvalidArgument):
        frost_keys.to_key_package(output.without_secret())
