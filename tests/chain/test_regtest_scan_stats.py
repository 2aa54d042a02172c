"""scantxoutset's scan-object expansion and gettxoutsetinfo's statistics (pure: no node)."""

from __future__ import annotations

import hashlib

import pytest

from coffer.chain.descriptors import add_checksum
from coffer.chain.regtest.index import Coin
from coffer.chain.regtest.jsonrpc import RpcFault
from coffer.chain.regtest.scan import parse_range, scan_scripts
from coffer.chain.regtest.utxostats import utxo_stats

# BIP-32 test vector 1 (published): master from seed 000102…0f, and its child m/0H.
BIP32_MASTER = ("xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJg"
                "k33yuGBxrMPHi")
BIP32_MASTER_FINGERPRINT = "3442193e"
BIP32_CHILD_0H_PUBKEY = "035a784662a4a20a65bf6aab9ae98a6c068a81c52e4b032c0fb5400c706cfccc56"
KEY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # generator point G


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


@pytest.mark.parametrize(("value", "message"), [
    (-1, "End of range is too high"),
    ([-1, 10], "Range should be greater or equal than 0"),
    ([2, 1], "Range specified as [begin,end] must not have begin after end"),
    ([0, 1_000_001], "Range is too large"),
    ([4294967296 - 10, 4294967296], "End of range is too high"),
    ("x", "Range must be specified as end or as [begin,end]"),
])
def test_range_errors(value: object, message: str) -> None:
    """Bad ranges get -8 with Core's texts, in Core's order of checks."""
    with pytest.raises(RpcFault) as caught:
        parse_range(value)
    assert (-8, message) == (caught.value.code, caught.value.message)


def test_range_is_inclusive() -> None:
    """A range N means [0, N], both ends included."""
    assert ((0, 1499), (5, 7)) == (parse_range(1499), parse_range([5, 7]))


def test_combo_of_compressed_key_gives_four_scripts() -> None:
    """combo() of a compressed key scans P2PK, P2PKH, P2WPKH and P2SH-P2WPKH, each reported as its own descriptor."""
    key = bytes.fromhex(KEY)
    found = scan_scripts(f"combo({KEY})", 0, 1000)
    wpkh = b"\x00\x14" + _hash160(key)
    assert {b"\x21" + key + b"\xac": add_checksum(f"pk({KEY})"),
            b"\x76\xa9\x14" + _hash160(key) + b"\x88\xac": add_checksum(f"pkh({KEY})"),
            wpkh: add_checksum(f"wpkh({KEY})"),
            b"\xa9\x14" + _hash160(wpkh) + b"\x87": add_checksum(f"sh(wpkh({KEY}))")} == found


def test_inferred_descriptor_carries_key_origin() -> None:
    """A key derived from an extended private key is reported with [fingerprint/path] and hardened as h."""
    found = scan_scripts(f"pkh({BIP32_MASTER}/0')", 0, 1000)
    assert [add_checksum(f"pkh([{BIP32_MASTER_FINGERPRINT}/0h]{BIP32_CHILD_0H_PUBKEY})")] == list(found.values())


def test_multipath_expands_both_branches() -> None:
    """<0;1> in a path scans both branches."""
    found = scan_scripts(f"wpkh({BIP32_MASTER}/<0;1>/*)", 0, 1)
    assert 4 == len(found)


def test_hardened_step_from_public_key_is_refused() -> None:
    """Hardened derivation below an extended public key is -5 "Cannot derive script without private keys"."""
    xpub = ("xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EG"
            "Mcet8")
    with pytest.raises(RpcFault) as caught:
        scan_scripts(f"pkh({xpub}/0h)", 0, 10)
    assert -5 == caught.value.code
    assert caught.value.message.startswith("Cannot derive script without private keys")


def _coin(value: int, height: int = 5) -> Coin:
    return Coin(value, b"\x00\x14" + bytes(20), height, True)


def test_stats_count_and_sum() -> None:
    """txouts, distinct transactions, bogosize (50 + script bytes each) and the total are Core's."""
    coins = [((b"\x01" * 32, 0), _coin(100)), ((b"\x01" * 32, 1), _coin(200)), ((b"\x02" * 32, 0), _coin(300))]
    stats = utxo_stats(coins, "hash_serialized_3")
    assert (3, 2, 3 * (50 + 22), 600) == (stats.txouts, stats.transactions, stats.bogosize, stats.total_sats)


@pytest.mark.parametrize("hash_type", ["hash_serialized_3", "muhash"])
def test_hash_commits_to_every_coin_in_any_order(hash_type: str) -> None:
    """The set hash ignores listing order and changes when one coin's value changes."""
    coins = [((b"\x01" * 32, 0), _coin(100)), ((b"\x02" * 32, 0), _coin(300))]
    first = utxo_stats(coins, hash_type).hash_hex
    assert first == utxo_stats(list(reversed(coins)), hash_type).hash_hex
    assert first != utxo_stats([coins[0], ((b"\x02" * 32, 0), _coin(301))], hash_type).hash_hex
    assert None is utxo_stats(coins, "none").hash_hex
