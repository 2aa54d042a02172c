"""Scripts, addresses per network, descriptor checksums and the reserves challenge signers accept."""

from __future__ import annotations

import pytest

from coffer.btc.bip322_sign import RESERVES_CHALLENGE
from coffer.btc.descriptors import add_checksum, descriptor_checksum, strip_checksum
from coffer.btc.errors import DescriptorChecksumError, InvalidAddress, InvalidScript
from coffer.btc.script import address_script, multisig_template, p2wpkh_script, script_address
from coffer.por.verify import reserves_challenge

KEY = bytes.fromhex("02" + "11" * 32)


def test_address_round_trips_on_its_network_only() -> None:
    """A regtest address gives its script on regtest and is refused on mainnet and testnet."""
    address = script_address(p2wpkh_script(KEY), "regtest")
    assert p2wpkh_script(KEY) == address_script(address, "regtest")
    for network in ("main", "testnet"):
        with pytest.raises(InvalidAddress, match="another network"):
            address_script(address, network)
    with pytest.raises(InvalidAddress, match="malformed"):
        address_script("bcrt1qnotanaddress", "regtest")


def test_multisig_template_is_strict() -> None:
    """OP_m keys OP_n OP_CHECKMULTISIG parses; an uncompressed-key push or another script is refused."""
    script = bytes([0x52]) + (bytes([33]) + KEY) * 2 + bytes([0x52, 0xAE])
    assert (2, [KEY, KEY]) == multisig_template(script)
    with pytest.raises(InvalidScript, match="compressed"):
        multisig_template(script.replace(bytes([33]) + KEY, bytes([34]) + KEY, 1))
    with pytest.raises(InvalidScript, match="template"):
        multisig_template(b"\x51" + script[1:-1] + b"\xac")


def test_descriptor_checksums() -> None:
    """BIP-380 checksums are added, checked and required on request."""
    assert "raw(deadbeef)#89f8spxm" == add_checksum("raw(deadbeef)")
    assert "89f8spxm" == descriptor_checksum("raw(deadbeef)")
    assert "raw(deadbeef)" == strip_checksum("raw(deadbeef)", required=False)
    with pytest.raises(DescriptorChecksumError, match="no checksum"):
        strip_checksum("raw(deadbeef)", required=True)
    with pytest.raises(DescriptorChecksumError, match="does not match"):
        strip_checksum("raw(deadbeef)#89f8spxn", required=False)


def test_signers_accept_the_challenge_the_verifier_writes() -> None:
    """The reserves challenge the verifier builds is the one format key holders sign, for BTC only."""
    assert RESERVES_CHALLENGE.fullmatch(reserves_challenge("BTC", "regtest", 150, "ab" * 32))
    assert None is RESERVES_CHALLENGE.fullmatch(reserves_challenge("ETH", "regtest", 150, "ab" * 32))
    assert None is RESERVES_CHALLENGE.fullmatch(reserves_challenge("BTC", "regtest", 150, "ab" * 32) + b"pay me")
