"""Valid regtest block headers for tests: a chain of proof-of-work headers from the genesis block."""

from __future__ import annotations

import hashlib
import struct
import time

from coffer.cold.tip import GENESIS

__all__ = ["mine_headers"]


def mine_headers(count: int, *, prev_hash: str | None = None, network: str = "regtest", salt: bytes = b"",
                 time_s: int | None = None) -> list[bytes]:
    """`count` linked headers after `prev_hash` (default: the genesis block), each meeting regtest's proof of
    work, the last one stamped `time_s` (default: now)."""
    last = int(time.time()) if time_s is None else time_s
    genesis, bits, limit = GENESIS[network]
    prev = bytes.fromhex(prev_hash or genesis)[::-1]
    merkle = hashlib.sha256(b"coffer-test-headers" + salt).digest()
    headers = []
    for height in range(count):
        for nonce in range(1 << 16):
            raw = struct.pack("<i", 0x20000000) + prev + merkle + struct.pack("<III", last - count + 1 + height, bits,
                                                                                nonce)
            digest = hashlib.sha256(hashlib.sha256(raw).digest()).digest()
            if int.from_bytes(digest, "little") <= limit:
                break
        headers.append(raw)
        prev = digest
    return headers
