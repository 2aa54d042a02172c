"""A strict byte reader for the session encodings of refresh and re-share."""

from __future__ import annotations

from coffer.btc.reader import ByteReader
from coffer.mpc.dkg.dealing import IDENTIFIER_MAX
from coffer.mpc.errors import InvalidEncoding

__all__ = ["Reader", "u32"]

COUNT_MAX = 1024
"""More holders than this in one session is refused before any allocation."""


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


class Reader(ByteReader):
    """Reads big-endian fields; refuses short input, trailing bytes and out-of-range counts."""

    __slots__ = ()

    def __init__(self, data: bytes) -> None:
        super().__init__(data, error=InvalidEncoding)

    def u32(self) -> int:
        return self.uint_be(4)

    def count(self) -> int:
        value = self.u32()
        if value > COUNT_MAX:
            raise InvalidEncoding(f"count {value} exceeds {COUNT_MAX}")
        return value

    def identifiers_ascending(self, previous: int, value: int) -> int:
        if not previous < value <= IDENTIFIER_MAX:
            raise InvalidEncoding("identifiers must be ascending, non-zero and at most 2^32-1")
        return value
