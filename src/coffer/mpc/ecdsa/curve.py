"""secp256k1 arithmetic for DKLs23: scalars are `int`s in [0, Q), points are coincurve keys.

libsecp256k1 cannot hold the point at infinity: every operation whose result would be the identity
raises `IdentityResult`, which the protocol turns into an abort. Nothing here logs or formats a
scalar: scalars are shares, nonces and pads.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from typing import Final

import coincurve

__all__ = [
    "Q",
    "P_FIELD",
    "Rng",
    "Point",
    "IdentityResult",
    "system_rng",
    "random_scalar",
    "random_nonzero_scalar",
    "scalar_to_bytes",
    "base_mul",
    "mul",
    "add",
    "neg",
    "sub",
    "point_bytes",
    "point_from_bytes",
    "point_x",
    "point_y_is_odd",
    "tagged_hash",
    "hash_to_scalars",
    "DOMAIN",
]

Q: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
P_FIELD: Final = (1 << 256) - (1 << 32) - 977
DOMAIN: Final = b"coffer/mpc/ecdsa/dkls23/v1/"

Rng = Callable[[int], bytes]
Point = coincurve.PublicKey


class IdentityResult(ValueError):
    """An operation produced (or was given) the point at infinity; callers abort the protocol."""


def system_rng(length: int) -> bytes:
    """The operating system's CSPRNG; the only randomness production code uses."""
    return secrets.token_bytes(length)


def random_scalar(rng: Rng) -> int:
    """A uniform scalar in [0, Q): 64 random bytes reduced, bias below 2^-256."""
    return int.from_bytes(rng(64), "big") % Q


def random_nonzero_scalar(rng: Rng) -> int:
    """A uniform scalar in [1, Q)."""
    for _ in range(64):
        value = random_scalar(rng)
        if value:
            return value
    raise RuntimeError("randomness source returns zeros")


def scalar_to_bytes(value: int) -> bytes:
    return value.to_bytes(32, "big")


def base_mul(scalar: int) -> Point:
    scalar %= Q
    if scalar == 0:
        raise IdentityResult("base multiplication by zero")
    return coincurve.PublicKey.from_secret(scalar.to_bytes(32, "big"))


def mul(point: Point, scalar: int) -> Point:
    scalar %= Q
    if scalar == 0:
        raise IdentityResult("multiplication by zero")
    return point.multiply(scalar.to_bytes(32, "big"))


def add(points: Sequence[Point]) -> Point:
    if len(points) == 1:
        return points[0]
    try:
        return coincurve.PublicKey.combine_keys(list(points))
    except ValueError as error:
        raise IdentityResult("sum of points is the identity") from error


def neg(point: Point) -> Point:
    encoded = bytearray(point.format(compressed=True))
    encoded[0] ^= 0x01  # 0x02 <-> 0x03 flips the parity of y, i.e. negates the point
    return coincurve.PublicKey(bytes(encoded))


def sub(left: Point, right: Point) -> Point:
    return add([left, neg(right)])


def point_bytes(point: Point) -> bytes:
    """SEC1 compressed encoding (33 bytes)."""
    return bytes(point.format(compressed=True))


def point_from_bytes(data: bytes) -> Point:
    """Strict: exactly 33 bytes, prefix 0x02/0x03, x below p and on the curve. ValueError if not."""
    if len(data) != 33 or data[0] not in (2, 3):
        raise ValueError("not a compressed secp256k1 point")
    if int.from_bytes(data[1:], "big") >= P_FIELD:
        raise ValueError("x coordinate not below the field prime")
    return coincurve.PublicKey(bytes(data))


def point_x(point: Point) -> int:
    return int.from_bytes(point.format(compressed=True)[1:], "big")


def point_y_is_odd(point: Point) -> bool:
    return point.format(compressed=True)[0] == 3


def tagged_hash(tag: str, parts: Sequence[bytes], length: int = 32) -> bytes:
    """SHAKE256 over the domain, the tag and every part, each length-prefixed (unambiguous)."""
    hasher = hashlib.shake_256()
    tag_bytes = DOMAIN + tag.encode()
    hasher.update(len(tag_bytes).to_bytes(4, "big") + tag_bytes)
    for part in parts:
        hasher.update(len(part).to_bytes(4, "big"))
        hasher.update(part)
    return hasher.digest(length)


def hash_to_scalars(tag: str, parts: Sequence[bytes], count: int) -> list[int]:
    """`count` scalars from one hash call, 48 bytes each (bias below 2^-128)."""
    output = tagged_hash(tag, parts, 48 * count)
    return [int.from_bytes(output[48 * k:48 * (k + 1)], "big") % Q for k in range(count)]
