"""Non-hardened deposit-address derivation for threshold ECDSA keys."""

from __future__ import annotations

import secrets

import coincurve
import pytest
from embit.bip32 import HDKey
from embit.ec import PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.mpc.ecdsa import InvalidTweak, derive, ethereum_address
from coffer.mpc.ecdsa.curve import Q


@settings(max_examples=200, deadline=None)
@given(st.integers(1, Q - 1), st.binary(min_size=32, max_size=32),
       st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3))
def test_derivation_matches_bip32_public_derivation(secret: int, chain_code: bytes, path: list[int]) -> None:
    """The derived key equals BIP32 public (non-hardened) derivation as embit computes it."""
    public_key = coincurve.PrivateKey(secret.to_bytes(32, "big")).public_key.format()
    derivation = derive(public_key, chain_code, path)
    reference = HDKey(PublicKey.parse(public_key), chain_code).derive(path)
    assert reference.key.sec() == derivation.public_key
    assert reference.chain_code == derivation.chain_code
    tweaked = coincurve.PrivateKey(((secret + derivation.tweak) % Q).to_bytes(32, "big"))
    assert tweaked.public_key.format() == derivation.public_key


def test_hardened_indices_are_refused() -> None:
    """Hardened derivation needs the secret key, so a threshold key refuses it."""
    public_key = coincurve.PrivateKey(secrets.token_bytes(32)).public_key.format()
    with pytest.raises(InvalidTweak):
        derive(public_key, bytes(32), [2**31])
    with pytest.raises(InvalidTweak):
        derive(public_key, bytes(31), [0])


def test_each_account_gets_its_own_address() -> None:
    """Distinct account indices give distinct checksummed Ethereum deposit addresses."""
    public_key = coincurve.PrivateKey(secrets.token_bytes(32)).public_key.format()
    addresses = {ethereum_address(derive(public_key, bytes(32), [0, index]).public_key) for index in range(20)}
    assert 20 == len(addresses)
    assert all(address.startswith("0x") and len(address) == 42 for address in addresses)
