"""The one strict byte reader: short input, trailing bytes, non-canonical sizes and limits are refused."""

from __future__ import annotations

import pytest

from coffer.btc.errors import MalformedBytes
from coffer.btc.reader import ByteReader, compact_size


class Refused(Exception):
    """The caller's own error type."""


@pytest.mark.parametrize("value", [0, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000, 2**64 - 1])
def test_compact_size_round_trips(value: int) -> None:
    """Every CompactSize written reads back to its value and uses all of its bytes."""
    reader = ByteReader(compact_size(value))
    assert value == reader.compact_size()
    reader.finish()


@pytest.mark.parametrize("data", [b"\xfd\xfc\x00", b"\xfe\xff\xff\x00\x00", b"\xff\xff\xff\xff\xff\x00\x00\x00\x00"])
def test_non_canonical_compact_size_is_refused(data: bytes) -> None:
    """A length written longer than it needs to be is refused, with the caller's error."""
    with pytest.raises(Refused, match="non-canonical length"):
        ByteReader(data, error=Refused).compact_size()


def test_truncated_trailing_and_oversized_are_refused() -> None:
    """Reading past the end, leaving bytes unread and an item over its limit each raise MalformedBytes."""
    with pytest.raises(MalformedBytes, match="truncated"):
        ByteReader(b"\x01\x02").uint_be(4)
    reader = ByteReader(b"\x01\x02")
    reader.u8()
    with pytest.raises(MalformedBytes, match="trailing"):
        reader.finish()
    with pytest.raises(MalformedBytes, match="over the limit"):
        ByteReader(b"\x05hello").var_bytes(4)


def test_fields_in_both_byte_orders() -> None:
    """Big-endian (Coffer's own encodings) and little-endian (Bitcoin's) fields read as written."""
    reader = ByteReader(b"\x00\x01\x01\x00\x03hey")
    assert (1, 1, b"hey") == (reader.uint_be(2), reader.uint_le(2), reader.var_bytes(3))
    assert 0 == reader.remaining
