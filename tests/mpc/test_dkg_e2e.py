"""End-to-end DKG for secp256k1 (ChillDKG) and Ed25519: consistent, recoverable Shamir shares."""

from __future__ import annotations

import itertools
import random

import coincurve
import pytest
from nacl import bindings as sodium

from coffer.mpc.dkg import chilldkg, ed25519, secp256k1_untweaked
from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.errors import InvalidArgument
from coffer.mpc.dkg.local import LocalDkgResult, run_local_dkg
from coffer.mpc.dkg.protocol import SessionParams
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.dkg.verify import interpolate_public, verify_output
from coffer.mpc.dkg.vss import lagrange_coefficient

PROTOCOLS = [pytest.param(chilldkg, id="secp256k1"), pytest.param(ed25519, id="ed25519"),
             pytest.param(secp256k1_untweaked, id="secp256k1-untweaked")]


def rng_for(seed: int) -> random.Random:
    return random.Random(seed)


def run(dkg: DkgProtocol, n: int, t: int, seed: int = 7) -> tuple[list[bytes], LocalDkgResult]:
    rng = rng_for(seed)
    keys = [rng.randbytes(32) for _ in range(n)]
    return keys, run_local_dkg(dkg, keys, t, rng.randbytes)


def reconstruct(order: int, shares: list[SecretShare]) -> int:
    """Test only: Lagrange interpolation of the secret from t shares."""
    identifiers = [share.identifier for share in shares]
    return sum(share.value * lagrange_coefficient(identifiers, share.identifier, order) for share in shares) % order


def independent_public_key(dkg: DkgProtocol, secret: int) -> bytes:
    """The public key of `secret` computed by the curve library directly, not by our group layer."""
    if dkg.suite.name == "secp256k1":
        return coincurve.PrivateKey(secret.to_bytes(32, "big")).public_key.format(compressed=True)
    return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(secret.to_bytes(32, "little")))


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_five_participants_threshold_three(dkg: DkgProtocol) -> None:
    """A 3-of-5 DKG: everyone agrees, any 3 public shares interpolate to the group key."""
    _, result = run(dkg, 5, 3)
    outputs = result.participant_outputs
    first = outputs[0]
    for output in (*outputs, result.coordinator_output):
        assert first.group_public_key == output.group_public_key
        assert first.public_shares == output.public_shares
        verify_output(dkg.suite, output)
    assert [1, 2, 3, 4, 5] == [output.secret_share.identifier for output in outputs if output.secret_share]
    for subset in itertools.combinations(range(1, 6), 3):
        assert first.group_public_key == interpolate_public(dkg.suite, first.public_shares, list(subset))


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_shares_reconstruct_the_group_secret(dkg: DkgProtocol) -> None:
    """Test only: any 3 of the 5 shares reconstruct the secret whose public key is the group key."""
    _, result = run(dkg, 5, 3, seed=11)
    shares = [output.secret_share for output in result.participant_outputs if output.secret_share]
    group_key = result.coordinator_output.group_public_key
    for subset in itertools.combinations(shares, 3):
        assert group_key == independent_public_key(dkg, reconstruct(dkg.suite.order, list(subset)))
    assert group_key != independent_public_key(dkg, reconstruct(dkg.suite.order, shares[:2]))


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_recovery_from_host_key_and_transcript(dkg: DkgProtocol) -> None:
    """Each participant's output is rebuilt from its host secret key and the recovery data alone."""
    keys, result = run(dkg, 4, 2, seed=3)
    for key, output in zip(keys, result.participant_outputs, strict=True):
        recovered, params = dkg.participant_recover(key, result.recovery_data)
        assert output == recovered
        assert result.params == params
    recovered_public, _ = dkg.coordinator_recover(result.recovery_data)
    assert result.coordinator_output == recovered_public


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_recovery_acknowledgments(dkg: DkgProtocol) -> None:
    """Every participant acknowledges the recovery data; the acknowledgments verify."""
    keys, result = run(dkg, 3, 2, seed=5)
    acks = [dkg.participant_recovery_ack_sign(key, result.recovery_data, result.params, bytes([i + 1]) * 32)
            for i, key in enumerate(keys)]
    dkg.participant_recovery_acks_verify(result.recovery_data, result.params, acks)


def test_secp256k1_group_key_is_a_valid_taproot_internal_key() -> None:
    """The ChillDKG key is an ordinary compressed point that coincurve parses and can x-only encode."""
    _, result = run(chilldkg, 3, 2, seed=9)
    key = coincurve.PublicKey(result.coordinator_output.group_public_key)
    assert 33 == len(key.format(compressed=True))


def test_secret_share_repr_is_redacted() -> None:
    """Neither a share nor an output with a share shows the secret in its repr."""
    share = SecretShare(3, 123456789)
    output = KeyShareOutput("ed25519", 2, b"\x01" * 32, {3: b"\x02" * 32}, share)
    assert "123456789" not in repr(share)
    assert "123456789" not in repr(output)
    assert "redacted" in repr(output)


def test_threshold_one_and_n_equals_t() -> None:
    """Edge thresholds t = 1 and t = n work for both suites."""
    for dkg in (chilldkg, ed25519):
        for n, t in ((3, 1), (3, 3)):
            _, result = run(dkg, n, t, seed=n * 10 + t)
            verify_output(dkg.suite, result.coordinator_output)


@pytest.mark.parametrize("dkg", PROTOCOLS)
def test_states_survive_a_restart(dkg: DkgProtocol) -> None:
    """Every state is stored as public bytes and parsed back between rounds; the result is the same."""
    rng = rng_for(17)
    keys = [rng.randbytes(32) for _ in range(3)]
    params = SessionParams(tuple(dkg.hostpubkey_gen(key) for key in keys), 2)
    steps1 = [dkg.participant_step1(key, params, rng.randbytes(32)) for key in keys]
    stored1 = [dkg.participant_state1_serialize(state) for state, _ in steps1]
    cstate, cmsg1 = dkg.coordinator_step1([m for _, m in steps1], params)
    cstored = dkg.coordinator_state_serialize(cstate)
    steps2 = [dkg.participant_step2(key, dkg.participant_state1_parse(data), cmsg1, bytes(32))
              for key, data in zip(keys, stored1, strict=True)]
    stored2 = [dkg.participant_state2_serialize(state) for state, _ in steps2]
    cmsg2, coutput, recovery = dkg.coordinator_finalize(dkg.coordinator_state_parse(cstored), [m for _, m in steps2])
    for key, data, (state2, _) in zip(keys, stored2, steps2, strict=True):
        restored = dkg.participant_state2_parse(key, data)
        assert state2 == restored
        output, participant_recovery = dkg.participant_finalize(restored, cmsg2)
        assert recovery == participant_recovery
        assert coutput.group_public_key == output.group_public_key
    with pytest.raises(InvalidArgument):
        dkg.participant_state1_parse(stored1[0][:-1])
    with pytest.raises(InvalidArgument):
        dkg.participant_state2_parse(keys[0], stored2[0] + b"\x00")


def test_untweaked_and_chilldkg_transcripts_differ() -> None:
    """The same host keys and randomness give unrelated first messages in the two secp256k1 suites."""
    rng = rng_for(23)
    keys = [rng.randbytes(32) for _ in range(3)]
    params = SessionParams(tuple(chilldkg.hostpubkey_gen(key) for key in keys), 2)
    random_bytes = rng.randbytes(32)
    _, tweaked = chilldkg.participant_step1(keys[0], params, random_bytes)
    _, plain = secp256k1_untweaked.participant_step1(keys[0], params, random_bytes)
    assert len(tweaked) == len(plain)
    assert tweaked[:33] != plain[:33]
