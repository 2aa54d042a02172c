"""BIP-340 signing and verification under a tag prefix: the published vectors, byte for byte."""

from __future__ import annotations

import csv
from pathlib import Path

import coincurve
import pytest

from coffer.btc import schnorr, taproot
from coffer.btc.errors import InvalidTweak

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bip340" / "test-vectors.csv"
with VECTORS.open() as handle:
    ROWS = list(csv.DictReader(handle))


@pytest.mark.parametrize("row", ROWS, ids=[row["index"] for row in ROWS])
def test_verify_vectors(row: dict[str, str]) -> None:
    """Verification accepts exactly the vectors marked TRUE, and names the others InvalidSchnorrSignature."""
    args = bytes.fromhex(row["public key"]), bytes.fromhex(row["message"]), bytes.fromhex(row["signature"])
    if row["verification result"] == "TRUE":
        schnorr.verify(*args)
    else:
        with pytest.raises(schnorr.InvalidSchnorrSignature):
            schnorr.verify(*args)


@pytest.mark.parametrize("row", [row for row in ROWS if row["secret key"]], ids=lambda row: row["index"])
def test_sign_vectors(row: dict[str, str]) -> None:
    """Signing with the vector's key and aux randomness gives the vector's signature."""
    signature = schnorr.sign(bytes.fromhex(row["message"]), int(row["secret key"], 16), bytes.fromhex(row["aux_rand"]))
    assert row["signature"] == signature.hex().upper()


def test_another_tag_prefix_is_another_signature() -> None:
    """A signature under ChillDKG's prefix verifies under that prefix only, never as plain BIP-340."""
    secret, message, aux = 7, b"\x01" * 32, b"\x02" * 32
    key_x = coincurve.PrivateKey(secret.to_bytes(32, "big")).public_key.format()[1:]
    signed = schnorr.sign(message, secret, aux, tag_prefix="BIP DKG/")
    schnorr.verify(key_x, message, signed, tag_prefix="BIP DKG/")
    with pytest.raises(schnorr.InvalidSchnorrSignature):
        schnorr.verify(key_x, message, signed)


def test_taproot_output_key_and_secret_agree() -> None:
    """The tweaked secret's public key is the output key (BIP-86), and a bad merkle root is refused."""
    secret = b"\x11" * 32
    internal = coincurve.PrivateKey(secret).public_key.format()[1:]
    tweaked = coincurve.PrivateKey(taproot.tweak_secret(secret)).public_key.format()[1:]
    assert taproot.output_key(internal) == tweaked
    with pytest.raises(InvalidTweak):
        taproot.tap_tweak(internal, b"\x00" * 31)
