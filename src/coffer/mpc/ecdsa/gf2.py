"""GF(2^208) for the KOS consistency check: x^208 + x^9 + x^3 + x + 1 (irreducible; tested).

Elements are `int`s below 2^208, bit k the coefficient of x^k. Multiplication by a fixed
challenge uses a byte table, so a check over KAPPA columns costs a few milliseconds in Python.

hazmat: used by `coffer.mpc.ecdsa.ot_extension` only.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FIELD_BITS", "FIELD_BYTES", "MODULUS", "reduce", "clmul", "Multiplier"]

FIELD_BITS: Final = 208
FIELD_BYTES: Final = FIELD_BITS // 8
MODULUS: Final = (1 << 208) | (1 << 9) | (1 << 3) | (1 << 1) | 1
_MASK: Final = (1 << FIELD_BITS) - 1


def reduce(value: int) -> int:
    """Reduces a polynomial of degree < 2*208 modulo MODULUS."""
    while value >> FIELD_BITS:
        high = value >> FIELD_BITS
        value = (value & _MASK) ^ high ^ (high << 1) ^ (high << 3) ^ (high << 9)
    return value


def clmul(left: int, right: int) -> int:
    """Carry-less product (no reduction); slow reference used by tests."""
    result = 0
    while right:
        if right & 1:
            result ^= left
        right >>= 1
        left <<= 1
    return result


class Multiplier:
    """Multiplication by one fixed element through a 256-entry byte table."""

    __slots__ = ("_table",)

    def __init__(self, element: int) -> None:
        table = [0] * 256
        for byte in range(1, 256):
            table[byte] = (table[byte >> 1] << 1) ^ (element if byte & 1 else 0)
        self._table = table

    def unreduced(self, data: bytes) -> int:
        """Carry-less product with the little-endian polynomial `data` (no reduction)."""
        table = self._table
        result = 0
        for position, byte in enumerate(data):
            if byte:
                result ^= table[byte] << (8 * position)
        return result
