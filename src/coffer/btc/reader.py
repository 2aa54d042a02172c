"""One strict byte reader for every binary format Coffer parses.

It refuses short input, non-canonical CompactSize prefixes, oversized items and (at `finish`)
trailing bytes. Each caller names the error it wants raised, so a parse failure stays the
caller's typed error (a co-signer's `InvalidEncoding`, the verifier's `VerificationFailed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from embit import compact as embit_compact

from coffer.btc.errors import MalformedBytes

__all__ = ["ByteReader", "ErrorFactory", "compact_size", "TRUNCATED", "TRAILING", "NON_CANONICAL"]

ErrorFactory = Callable[[str], Exception]
"""Builds the exception to raise from a reason ("truncated", "unexpected trailing bytes", …)."""

TRUNCATED: Final = "truncated"
TRAILING: Final = "unexpected trailing bytes"
NON_CANONICAL: Final = "non-canonical length"
_COMPACT_MINIMUM: Final = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}


def compact_size(value: int) -> bytes:
    """Bitcoin's CompactSize encoding of a length (embit's)."""
    if not 0 <= value < 2**64:
        raise MalformedBytes(f"a CompactSize holds 0 to 2^64-1, not {value}")
    encoded: bytes = embit_compact.to_bytes(value)
    return encoded


class ByteReader:
    """Reads `data` front to back; every failure raises `error(reason)`."""

    __slots__ = ("data", "offset", "_error")

    def __init__(self, data: bytes, *, error: ErrorFactory = MalformedBytes, offset: int = 0) -> None:
        self.data = bytes(data)
        self.offset = offset
        self._error = error

    def fail(self, reason: str) -> Exception:
        return self._error(reason)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if size < 0 or end > len(self.data):
            raise self._error(TRUNCATED)
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def uint_le(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def uint_be(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def compact_size(self) -> int:
        """A canonical CompactSize (the shortest encoding, as Bitcoin Core requires)."""
        first = self.u8()
        if first < 0xFD:
            return first
        size, minimum = _COMPACT_MINIMUM[first]
        value = self.uint_le(size)
        if value < minimum:
            raise self._error(NON_CANONICAL)
        return value

    def var_bytes(self, size_max: int) -> bytes:
        """A CompactSize length and that many bytes, at most `size_max`."""
        size = self.compact_size()
        if size > size_max:
            raise self._error(f"an item of {size} bytes is over the limit of {size_max}")
        return self.take(size)

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise self._error(TRAILING)
