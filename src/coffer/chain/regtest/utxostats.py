"""Core's gettxoutsetinfo statistics over the UTXO set: counts, bogosize, hash_serialized_3, MuHash3072.

Pure functions over (outpoint, coin) pairs; the hashes follow Core's kernel/coinstats.cpp and
crypto/muhash.cpp: each coin serialised as outpoint, height*2+coinbase (uint32) and the output.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from coffer.chain.regtest.index import Coin, Outpoint
from coffer.chain.regtest.wire import compact_size, sha256d

__all__ = ["UtxoStats", "utxo_stats", "HASH_TYPES"]

HASH_TYPES = ("hash_serialized_3", "muhash", "none")
MUHASH_MODULUS = 2**3072 - 1103717
MUHASH_BYTES = 384


@dataclass(frozen=True, slots=True)
class UtxoStats:
    txouts: int
    transactions: int
    bogosize: int
    total_sats: int
    serialized_bytes: int  # the UTXO set as Core's coins database serialises it (its "disk_size")
    hash_hex: str | None  # display order, as Core's uint256::GetHex


def _serialise(outpoint: Outpoint, coin: Coin) -> bytes:
    code = (coin.height << 1) | int(coin.coinbase)
    return (outpoint[0] + struct.pack("<I", outpoint[1]) + struct.pack("<I", code)
            + struct.pack("<q", coin.value_sats) + compact_size(len(coin.script_pubkey)) + coin.script_pubkey)


def _muhash_element(data: bytes) -> int:
    key = hashlib.sha256(data).digest()
    encryptor = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), mode=None).encryptor()
    return int.from_bytes(encryptor.update(b"\x00" * MUHASH_BYTES), "little")


def _muhash(serialised: Iterable[bytes]) -> bytes:
    numerator = 1
    for data in serialised:
        numerator = numerator * _muhash_element(data) % MUHASH_MODULUS
    return hashlib.sha256(numerator.to_bytes(MUHASH_BYTES, "little")).digest()


def utxo_stats(coins: Iterable[tuple[Outpoint, Coin]], hash_type: str) -> UtxoStats:
    """Statistics of a UTXO set in Core's order (by txid bytes, then output index)."""
    ordered = sorted(coins, key=lambda item: (item[0][0], item[0][1]))
    serialised = [_serialise(outpoint, coin) for outpoint, coin in ordered]
    digest: bytes | None = None
    if hash_type == "hash_serialized_3":
        digest = sha256d(b"".join(serialised))
    elif hash_type == "muhash":
        digest = _muhash(serialised)
    return UtxoStats(
        txouts=len(ordered), transactions=len({outpoint[0] for outpoint, _coin in ordered}),
        bogosize=sum(50 + len(coin.script_pubkey) for _outpoint, coin in ordered),
        total_sats=sum(coin.value_sats for _outpoint, coin in ordered),
        serialized_bytes=sum(len(data) for data in serialised),
        hash_hex=None if digest is None else digest[::-1].hex())
