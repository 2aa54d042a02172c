"""Strict binary encoding of DKLs23 messages.

Every field has a fixed width or a 4-byte length prefix; parsing refuses short data, trailing
bytes, scalars not below the group order and points off the curve, and each failure names the
participant who sent the bytes (`MalformedMessage.sender`).
"""

from __future__ import annotations

from typing import Final

from coffer.btc.reader import ByteReader
from coffer.mpc.ecdsa.curve import Point, Q, point_bytes, point_from_bytes
from coffer.mpc.ecdsa.errors import MalformedMessage

__all__ = ["Writer", "Reader", "MESSAGE_BYTES_MAX", "WIRE_VERSION"]

MESSAGE_BYTES_MAX: Final = 1 << 20
WIRE_VERSION: Final = 1


class Writer:
    """Appends fields; `bytes()` returns the message."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(value.to_bytes(1, "big"))
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append(value.to_bytes(2, "big"))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(value.to_bytes(4, "big"))
        return self

    def fixed(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def scalar(self, value: int) -> Writer:
        self._parts.append(value.to_bytes(32, "big"))
        return self

    def scalars(self, values: list[int]) -> Writer:
        self._parts.append(b"".join(v.to_bytes(32, "big") for v in values))
        return self

    def point(self, value: Point) -> Writer:
        self._parts.append(point_bytes(value))
        return self

    def bytes(self) -> bytes:
        return b"".join(self._parts)


class Reader(ByteReader):
    """Consumes fields in order; every failure raises MalformedMessage naming `sender`."""

    __slots__ = ("sender",)

    def __init__(self, data: bytes, *, sender: int | None) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise MalformedMessage("message is not bytes", sender=sender)
        if len(data) > MESSAGE_BYTES_MAX:
            raise MalformedMessage("message too long", sender=sender)
        super().__init__(data, error=lambda reason: MalformedMessage(reason, sender=sender))
        self.sender = sender

    def fixed(self, length: int) -> bytes:
        return self.take(length)

    def u16(self) -> int:
        return self.uint_be(2)

    def u32(self) -> int:
        return self.uint_be(4)

    def scalar(self) -> int:
        value = int.from_bytes(self.fixed(32), "big")
        if value >= Q:
            raise self.fail("scalar not below the group order")
        return value

    def scalars(self, count: int) -> list[int]:
        raw = self.fixed(32 * count)
        values = [int.from_bytes(raw[32 * k:32 * k + 32], "big") for k in range(count)]
        if any(value >= Q for value in values):
            raise self.fail("scalar not below the group order")
        return values

    def point(self) -> Point:
        raw = self.fixed(33)
        try:
            return point_from_bytes(raw)
        except ValueError as error:
            raise self.fail("invalid curve point") from error

    def expect(self, expected: int, actual: int, what: str) -> None:
        if expected != actual:
            raise self.fail(f"unexpected {what}")

