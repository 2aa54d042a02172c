"""GF(2^208) for the KOS consistency check: x^208 + x^9 + x^3 + x + 1 (irreducible; tested).

Elements are `int`s below 2^208, bit k the coefficient of x^k. The check hashes every column
with byte tables in numpy (`hash_tables`, `hash_columns`); `Multiplier` and `clmul` are references.

hazmat: used by `coffer.mpc.ecdsa.ot_extension` only.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["FIELD_BITS", "FIELD_BYTES", "MODULUS", "reduce", "clmul", "Multiplier", "hash_tables",
           "hash_columns"]

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


def _times_x(value: int) -> int:
    value <<= 1
    if value >> FIELD_BITS:
        value ^= MODULUS
    return value


def hash_tables(first: int, second: int) -> npt.NDArray[np.uint64]:
    """Byte tables of the GF(2)-linear map v -> v[0:208]*first + v[208:416]*second + v[416:624].

    The image of bit j is first * x^j, second * x^(j-208) or x^(j-416); table[p][b] is the XOR of
    the images of the bits set in byte value b at byte position p (four Russians), so hashing many
    columns is one gather and one XOR reduction in numpy (no BLAS, no floating point).
    """
    images = []
    for factor in (first, second):
        value = factor
        for _ in range(FIELD_BITS):
            images.append(value)
            value = _times_x(value)
    images.extend(1 << j for j in range(FIELD_BITS))
    raw = b"".join(v.to_bytes(32, "little") for v in images)
    words = np.frombuffer(raw, dtype="<u8").reshape(len(images) // 8, 8, 4)
    tables = np.zeros((len(images) // 8, 256, 4), dtype=np.uint64)
    for bit in range(8):
        size = 1 << bit
        tables[:, size:2 * size] = tables[:, :size] ^ words[:, bit][:, None, :]
    return tables


def hash_columns(packed: npt.NDArray[np.uint8], tables: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Hashes each packed column (n x 78 bytes, little-endian bits) to n x FIELD_BYTES bytes."""
    positions = np.arange(tables.shape[0])[None, :]
    gathered = tables[positions, packed]  # n x 78 x 4
    words = np.bitwise_xor.reduce(gathered, axis=1).astype("<u8")
    hashed: npt.NDArray[np.uint8] = words.view(np.uint8).reshape(packed.shape[0], 32)[:, :FIELD_BYTES]
    return hashed
