"""The chain tip a quorum draw uses, checked by the signer itself: block headers with their proof of
work, linked to a header the signer already knows, carrying at least as much work as its own best.

A signer keeps the headers it accepted (starting from its network's genesis) and its best one, so the
coordinator can neither pick an old tip nor invent one: it can only show a chain of valid headers
that extends what the signer saw. Pure: parsing and checking only; the store lives in the signer.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from coffer.cold.errors import DrawMismatch

__all__ = ["Header", "parse_header", "check_headers", "header_work", "GENESIS", "HEADER_BYTES", "HEADERS_MAX",
           "TIP_AGE_S_MAX"]

HEADER_BYTES = 80
HEADERS_MAX = 2016  # headers carried in one bundle; a signer further behind is fed headers first
TIP_AGE_S_MAX = 24 * 3600  # a draw's tip older than this by the signer's clock is refused (offline signing fits)
# network -> (genesis block hash as shown by getblockhash, its header bits, the proof-of-work limit)
GENESIS: dict[str, tuple[str, int, int]] = {
    "regtest": ("0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", 0x207FFFFF, 0x7FFFFF << 232),
}


@dataclass(frozen=True, slots=True)
class Header:
    block_hash: str  # display order (as getblockhash shows it)
    prev_hash: str
    bits: int
    time: int


def _target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000 or mantissa == 0 or exponent > 32:
        raise DrawMismatch("header bits encode no valid target")
    return mantissa >> (8 * (3 - exponent)) if exponent <= 3 else mantissa << (8 * (exponent - 3))


def header_work(bits: int) -> int:
    """Expected hashes for one block at `bits` (Bitcoin Core's GetBlockProof)."""
    return (1 << 256) // (_target(bits) + 1)


def parse_header(raw: bytes, *, network: str) -> Header:
    """Parse an 80-byte header and check its proof of work against its own bits and the network's limit."""
    if network not in GENESIS:
        raise DrawMismatch(f"no pinned genesis for network {network!r}")
    if len(raw) != HEADER_BYTES:
        raise DrawMismatch("a block header is 80 bytes")
    block_hash = hashlib.sha256(hashlib.sha256(raw).digest()).digest()
    bits, = struct.unpack("<I", raw[72:76])
    target = _target(bits)
    if target > GENESIS[network][2]:
        raise DrawMismatch("header target above the network's proof-of-work limit")
    if int.from_bytes(block_hash, "little") > target:
        raise DrawMismatch("header hash does not meet its proof of work")
    time, = struct.unpack("<I", raw[68:72])
    return Header(block_hash[::-1].hex(), raw[4:36][::-1].hex(), bits, time)


def check_headers(raw_headers: Sequence[bytes], *, network: str) -> list[Header]:
    """Every header's proof of work, and each one linked to the one before it."""
    if len(raw_headers) > HEADERS_MAX:
        raise DrawMismatch(f"more than {HEADERS_MAX} headers")
    headers = [parse_header(raw, network=network) for raw in raw_headers]
    for before, after in zip(headers, headers[1:], strict=False):
        if after.prev_hash != before.block_hash:
            raise DrawMismatch("headers are not linked")
    return headers
