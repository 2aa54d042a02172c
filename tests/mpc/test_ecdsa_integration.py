"""DKLs23 on shares from the DKG / refresh layer, the rare recovery ids, and the discard alert."""

from __future__ import annotations

import dataclasses
import random
import secrets

import coincurve
import pytest
from structlog.testing import capture_logs

from coffer.mpc.dkg import refresh, reshare
from coffer.mpc.dkg import secp256k1_untweaked as dkg
from coffer.mpc.dkg.dealing import Holder
from coffer.mpc.dkg.local import run_local_dkg
from coffer.mpc.dkg.types import SecretShare
from coffer.mpc.ecdsa import (
    ProtocolAbort,
    SignatureInvalid,
    SignerSetError,
    ethereum_address,
    key_share_from_dkg,
)
from coffer.mpc.ecdsa.curve import P_FIELD, Q, point_from_bytes
from coffer.mpc.ecdsa.local import pair, pair_all, sign_locally
from coffer.mpc.ecdsa.sign import finish_signature


def test_dkg_shares_sign_before_and_after_a_refresh() -> None:
    """ChillDKG (untweaked secp256k1) shares sign; refreshed shares of the same key sign too."""
    rng = random.Random(7)
    keys = [rng.randbytes(32) for _ in range(3)]
    outputs = list(run_local_dkg(dkg, keys, 2, rng.randbytes).participant_outputs)
    key_id = b"dkg-ecdsa"
    shares = {o.secret_share.identifier: key_share_from_dkg(o, key_id) for o in outputs if o.secret_share}
    setups = pair_all([1, 2, 3], key_id)
    digest = secrets.token_bytes(32)
    signature = sign_locally({1: shares[1], 3: shares[3]}, setups, digest)[1]
    public_key = outputs[0].group_public_key
    assert coincurve.PublicKey(public_key).verify(signature.to_der(), digest, hasher=None)

    holders = tuple(Holder(i + 1, dkg.hostpubkey_gen(key)) for i, key in enumerate(keys))
    session = refresh.RefreshSession(rng.randbytes(32), 2, public_key, holders, dict(outputs[0].public_shares))
    dealings = {i + 1: refresh.refresh_deal(dkg.suite, session, key, rng.randbytes(32))
                for i, key in enumerate(keys)}
    refreshed = [refresh.refresh_receive(dkg.suite, session, key, o.secret_share, dealings)  # type: ignore[arg-type]
                 for key, o in zip(keys, outputs, strict=True)]
    new_shares = {o.secret_share.identifier: key_share_from_dkg(o, key_id) for o in refreshed if o.secret_share}
    assert new_shares[2].secret_share != shares[2].secret_share
    signature = sign_locally({2: new_shares[2], 3: new_shares[3]}, setups, digest)[2]
    assert coincurve.PublicKey(public_key).verify(signature.to_der(), digest, hasher=None)
    assert ethereum_address(public_key) == ethereum_address(new_shares[2].public_key)


def test_revoked_co_signer_cannot_sign_after_a_re_share() -> None:
    """After a re-share that removes co-signer 3, the kept co-signers sign; 3's old share does not."""
    rng = random.Random(11)
    keys = [rng.randbytes(32) for _ in range(4)]
    outputs = list(run_local_dkg(dkg, keys, 2, rng.randbytes).participant_outputs)
    holders = tuple(Holder(i + 1, dkg.hostpubkey_gen(key)) for i, key in enumerate(keys))
    kept = (1, 2, 4)
    session = reshare.ReshareSession(rng.randbytes(32), outputs[0].group_public_key, 2,
                                     dict(outputs[0].public_shares), (holders[0], holders[1]), 2,
                                     tuple(holders[i - 1] for i in kept))
    dealings = {i: reshare.reshare_deal(dkg.suite, session, keys[i - 1], outputs[i - 1].secret_share,  # type: ignore[arg-type]
                                        rng.randbytes(32)) for i in (1, 2)}
    new = {i: key_share_from_dkg(reshare.reshare_receive(dkg.suite, session, keys[i - 1], dealings),
                                 b"reshared") for i in kept}
    revoked = key_share_from_dkg(outputs[2], b"reshared")
    setups = pair_all([1, 2, 3, 4], b"reshared")
    digest = secrets.token_bytes(32)
    signature = sign_locally({2: new[2], 4: new[4]}, setups, digest)[2]
    assert coincurve.PublicKey(outputs[0].group_public_key).verify(signature.to_der(), digest, hasher=None)
    with pytest.raises(ProtocolAbort):
        sign_locally({1: new[1], 3: revoked}, setups, digest)


def test_dkg_share_must_match_its_public_share() -> None:
    """A DKG output whose secret share does not match its public share is refused."""
    rng = random.Random(8)
    output = run_local_dkg(dkg, [rng.randbytes(32) for _ in range(3)], 2,
                           rng.randbytes).participant_outputs[0]
    assert output.secret_share is not None
    broken = dataclasses.replace(output, secret_share=SecretShare(output.secret_share.identifier,
                                                                  output.secret_share.value + 1))
    with pytest.raises(SignerSetError):
        key_share_from_dkg(broken, b"k")
    with pytest.raises(SignerSetError):
        key_share_from_dkg(output.without_secret(), b"k")


def _lift_x(x: int) -> coincurve.PublicKey | None:
    y_squared = (pow(x, 3, P_FIELD) + 7) % P_FIELD
    y = pow(y_squared, (P_FIELD + 1) // 4, P_FIELD)
    if y * y % P_FIELD != y_squared:
        return None
    return coincurve.PublicKey(b"\x02" + x.to_bytes(32, "big"))


def test_recovery_id_for_a_nonce_point_with_x_above_the_order() -> None:
    """When R.x >= q the recovery id carries bit 2, and the signature still recovers the key."""
    x = Q + 1
    nonce_point = _lift_x(x)
    while nonce_point is None:
        x += 1
        nonce_point = _lift_x(x)
    r = x - Q
    digest = secrets.token_bytes(32)
    s = secrets.randbelow(Q - 1) + 1
    z = int.from_bytes(digest, "big") % Q
    inverse = pow(r, -1, Q)
    # The key for which (r, s) is a valid signature with this R: (s*R - z*G) / r.
    public_key = coincurve.PublicKey.combine_keys([
        nonce_point.multiply((s * inverse % Q).to_bytes(32, "big")),
        coincurve.PublicKey.from_secret(((-z * inverse) % Q).to_bytes(32, "big"))])
    signature = finish_signature(nonce_point, s, digest, public_key, [2])
    assert signature.recovery_id & 2
    assert signature.s <= Q // 2
    recovered = coincurve.PublicKey.from_signature_and_message(signature.to_recoverable(), digest, hasher=None)
    assert public_key.format() == recovered.format()
    with pytest.raises(SignatureInvalid):
        finish_signature(nonce_point, s, digest, point_from_bytes(coincurve.PrivateKey().public_key.format()), [2])


def test_discarding_a_setup_raises_an_alert_event() -> None:
    """The discard of an OT setup is logged (who, with whom, why), without any secret."""
    first, _ = pair(1, 2, b"alert")
    with capture_logs() as events:
        first.discard("OtConsistencyFailure")
        first.discard("again")
    assert [("ecdsa.ot_setup_discarded", 1, 2, "OtConsistencyFailure")] == [
        (e["event"], e["me"], e["peer"], e["reason"]) for e in events]
