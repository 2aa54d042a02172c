"""BIP-340 vectors for the plain Schnorr verification the Taproot ciphersuite uses."""

from __future__ import annotations

import csv

import coincurve
import pytest

from coffer.mpc.errors import InvalidSignature
from coffer.mpc.frost.taproot import bip340_verify

from .frost_helpers import VECTORS

with (VECTORS / "bip340" / "test-vectors.csv").open() as handle:
    ROWS = list(csv.DictReader(handle))


@pytest.mark.parametrize("row", ROWS, ids=[row["index"] for row in ROWS])
def test_bip340_vector(row: dict[str, str]) -> None:
    """Our verification accepts exactly the signatures the vector marks TRUE."""
    public_key = bytes.fromhex(row["public key"])
    message = bytes.fromhex(row["message"])
    signature = bytes.fromhex(row["signature"])
    if row["verification result"] == "TRUE":
        bip340_verify(public_key, message, signature)
    else:
        with pytest.raises(InvalidSignature):
            bip340_verify(public_key, message, signature)


@pytest.mark.parametrize("row", [row for row in ROWS if row["secret key"] and len(row["message"]) == 64],
                         ids=lambda row: row["index"])
def test_bip340_vector_signatures_agree_with_libsecp256k1(row: dict[str, str]) -> None:
    """libsecp256k1 (coincurve) makes the vector's signature from its key and aux randomness."""
    key = coincurve.PrivateKey(bytes.fromhex(row["secret key"]))
    message = bytes.fromhex(row["message"])
    signature = key.sign_schnorr(message, bytes.fromhex(row["aux_rand"]))
    assert row["signature"] == signature.hex().upper()
    bip340_verify(bytes.fromhex(row["public key"]), message, signature)
