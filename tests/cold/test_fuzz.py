"""Fuzzing the cold signer's outside inputs: PSBTs and signing bundles only ever get typed errors."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.cold.bundle import SigningBundle
from coffer.cold.descriptor import ColdWallet, KeyOrigin
from coffer.cold.errors import BundleInvalid, DescriptorError, DrawMismatch, PsbtInvalid
from coffer.cold.psbt import Payment, Utxo, build_batch_psbt, parse_psbt


def _valid_psbt() -> bytes:
    from embit import bip32
    from embit.networks import NETWORKS

    keys = []
    for seed in (b"\x01", b"\x02", b"\x03"):
        root = bip32.HDKey.from_seed(seed * 32, version=NETWORKS["regtest"]["xprv"])
        account = root.derive("m/48h/1h/0h/2h").to_public()
        account.version = NETWORKS["regtest"]["xpub"]
        keys.append(KeyOrigin(root.my_fingerprint.hex(), "48h/1h/0h/2h", account.to_base58()))
    wallet = ColdWallet(2, tuple(keys))
    utxo = Utxo(hashlib.sha256(b"coin").hexdigest(), 0, 10_000_000, 0, 0)
    plan = build_batch_psbt(wallet, [utxo], [Payment("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 100_000)],
                            fee_rate_sat_vb=2, change_index=0)
    return bytes(plan.psbt.serialize())


VALID = _valid_psbt()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_are_a_typed_error(data: bytes) -> None:
    """Arbitrary bytes never crash the PSBT parser: PsbtInvalid or a PSBT."""
    try:
        parse_psbt(b"psbt\xff" + data)
    except PsbtInvalid:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(min_value=1, max_value=255))
def test_one_changed_byte_is_a_typed_error_or_a_psbt(position: int, flip: int) -> None:
    """Any single changed byte gives PsbtInvalid or a PSBT that still round-trips."""
    mutated = bytearray(VALID)
    mutated[position] ^= flip
    try:
        psbt = parse_psbt(bytes(mutated))
    except PsbtInvalid:
        return
    assert bytes(psbt.serialize()) == parse_psbt(bytes(psbt.serialize())).serialize()


def test_valid_psbt_round_trips() -> None:
    """A built PSBT parses back to the same bytes."""
    assert VALID == bytes(parse_psbt(VALID).serialize())


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_random_json_bundles_are_a_typed_error(value: object) -> None:
    """Any JSON document is refused as a bundle with a typed error, never a crash."""
    import json

    try:
        SigningBundle.from_json(json.dumps(value).encode())
    except (BundleInvalid, DrawMismatch, DescriptorError):
        pass
