"""Pure parts of the regtest node: wire parsing, BIP34 pushes, standardness tables, amounts, descriptors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.chain.descriptors import add_checksum, descriptor_scripts, strip_checksum
from coffer.chain.errors import DecodeError
from coffer.chain.regtest import policy
from coffer.chain.regtest.jsonout import Btc, dumps
from coffer.chain.regtest.wire import bip34_push, build_coinbase, parse_block, parse_tx, sha256d
from tests.chain.helpers import Prevout, key, p2tr_script, p2wpkh_script, spend_p2wpkh


def test_parse_round_trips_and_rejects_trailing_bytes() -> None:
    """A segwit spend parses to its own bytes and txid; one extra byte is refused."""
    raw = spend_p2wpkh(Prevout(b"\x01" * 32, 3, 10_000, p2wpkh_script(key(1))), key(1), [(9_000, p2wpkh_script(key(2)))])
    tx = parse_tx(raw)
    assert (raw, 1, 1, 3) == (tx.raw, len(tx.inputs), len(tx.outputs), tx.inputs[0].prev_vout)
    assert tx.wtxid == sha256d(raw) != tx.txid
    assert 110 == tx.vsize
    with pytest.raises(DecodeError):
        parse_tx(raw + b"\x00")
    with pytest.raises(DecodeError):
        parse_tx(raw[:-1])


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_parser_never_crashes_on_garbage(data: bytes) -> None:
    """Arbitrary bytes either parse to a transaction that re-serialises identically or raise DecodeError."""
    try:
        tx = parse_tx(data)
    except DecodeError:
        return
    assert data == tx.raw


@pytest.mark.parametrize(("height", "expected"), [(1, "51"), (16, "60"), (17, "0111"), (127, "017f"),
                                                   (128, "028000"), (255, "02ff00"), (256, "020001"),
                                                   (65536, "03000001")])
def test_bip34_push_matches_core(height: int, expected: str) -> None:
    """The height push is what Core's `CScript() << nHeight` produces."""
    assert expected == bip34_push(height).hex()


def test_coinbase_carries_witness_commitment() -> None:
    """The coinbase has the BIP141 commitment output and the 32-byte reserved witness."""
    coinbase = parse_tx(build_coinbase(5, 50, p2wpkh_script(key(1)), b"\x00" * 32))
    assert coinbase.is_coinbase
    assert coinbase.outputs[1].script_pubkey.startswith(bytes.fromhex("6a24aa21a9ed"))
    assert (b"\x00" * 32,) == coinbase.inputs[0].witness


@pytest.mark.parametrize(("spk", "kind", "dust"), [
    (p2wpkh_script(key(1)), "witness_v0_keyhash", 294),
    (p2tr_script(key(1)), "witness_v1_taproot", 330),
    (bytes.fromhex("0020") + b"\x00" * 32, "witness_v0_scripthash", 330),
    (bytes.fromhex("76a914") + b"\x00" * 20 + bytes.fromhex("88ac"), "pubkeyhash", 546),
    (bytes.fromhex("a914") + b"\x00" * 20 + bytes.fromhex("87"), "scripthash", 540),
    (bytes.fromhex("6a0401020304"), "nulldata", 0),
    (bytes.fromhex("51ae"), "nonstandard", 477),
])
def test_script_types_and_dust_thresholds(spk: bytes, kind: str, dust: int) -> None:
    """Output types and dust thresholds follow Core's Solver and GetDustThreshold at 3 sat/vB."""
    assert (kind, dust) == (policy.script_type(spk), policy.dust_threshold_sats(spk))


def test_amounts_serialise_like_core() -> None:
    """Btc amounts print with 8 decimals and no float noise, in compact JSON as Core's UniValue writes it."""
    assert '{"a":0.00000001,"b":[50.00000000,-1.10000000],"c":null}' == dumps(
        {"a": Btc(1), "b": [Btc(50 * 10**8), Btc(-110_000_000)], "c": None})


def test_descriptor_checksum_is_checked() -> None:
    """A descriptor with the right checksum parses; a wrong checksum is refused."""
    pubkey = key(1).get_public_key().sec().hex()
    body = f"wpkh({pubkey})"
    assert [(p2wpkh_script(key(1)), add_checksum(body))] == descriptor_scripts(add_checksum(body))
    with pytest.raises(DecodeError):
        strip_checksum(body + "#qqqqqqqq")


def test_parse_block_rejects_extra_bytes() -> None:
    """A block with bytes after its last transaction is refused."""
    coinbase = build_coinbase(1, 50, p2wpkh_script(key(1)), None)
    block = b"\x00" * 80 + b"\x01" + coinbase
    assert 1 == len(parse_block(block)[1])
    with pytest.raises(DecodeError):
        parse_block(block + b"\x00")
