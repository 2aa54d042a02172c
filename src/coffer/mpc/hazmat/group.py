"""Prime-order groups for threshold cryptography: secp256k1 (libsecp256k1) and Ed25519 (libsodium).

Scalars are plain `int`s in [0, order). Elements are frozen value types holding their canonical
encoding; the identity is represented explicitly (secp256k1: the SEC1 infinity byte 0x00, which
libsecp256k1 itself cannot hold; Ed25519: its canonical encoding 0x01 || 0^31).

Parsing is strict: `deserialize_element` refuses wrong lengths, non-canonical encodings, points off
the curve, the identity and (Ed25519) points outside the prime-order subgroup; `deserialize_scalar`
refuses values not below the group order. `serialize_element` refuses the identity (RFC 9591 §4).

This module must never log or put into an error message a scalar it was given: scalars are often
secret shares or nonces.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Literal, Protocol, runtime_checkable

import coincurve
from nacl import bindings as sodium
from nacl import exceptions as sodium_exceptions

from coffer.invariant import invariant
from coffer.mpc.errors import IdentityElement, InvalidElement, InvalidEncoding, InvalidScalar

__all__ = [
    "Element",
    "Group",
    "Rng",
    "Secp256k1Group",
    "Ed25519Group",
    "SECP256K1",
    "ED25519",
    "system_rng",
]

Rng = Callable[[int], bytes]
"""A source of randomness: `rng(n)` returns n fresh random bytes. Tests pass a seeded one."""


def system_rng(length: int) -> bytes:
    """The operating system's CSPRNG; the only randomness production code uses."""
    return secrets.token_bytes(length)


@dataclass(frozen=True, slots=True)
class Element:
    """A group element: the name of its group and its canonical encoding (identity included)."""

    group: str
    encoding: bytes

    def __repr__(self) -> str:
        return f"Element({self.group}, {self.encoding.hex()})"


@runtime_checkable
class Group(Protocol):
    """A prime-order group with its scalar field, as RFC 9591 §3.1 describes it."""

    name: str
    order: int
    element_length: int
    scalar_length: int

    def identity(self) -> Element: ...
    def generator(self) -> Element: ...
    def is_identity(self, element: Element) -> bool: ...
    def add(self, left: Element, right: Element) -> Element: ...
    def sub(self, left: Element, right: Element) -> Element: ...
    def neg(self, element: Element) -> Element: ...
    def mul(self, element: Element, scalar: int) -> Element: ...
    def base_mul(self, scalar: int) -> Element: ...
    def sum(self, elements: Iterable[Element]) -> Element: ...
    def serialize_element(self, element: Element) -> bytes: ...
    def deserialize_element(self, data: bytes) -> Element: ...
    def serialize_scalar(self, scalar: int) -> bytes: ...
    def deserialize_scalar(self, data: bytes) -> int: ...
    def scalar_from_int(self, value: int) -> int: ...
    def scalar_add(self, left: int, right: int) -> int: ...
    def scalar_sub(self, left: int, right: int) -> int: ...
    def scalar_mul(self, left: int, right: int) -> int: ...
    def scalar_neg(self, scalar: int) -> int: ...
    def scalar_inv(self, scalar: int) -> int: ...
    def random_scalar(self, rng: Rng = system_rng) -> int: ...


class _ScalarField:
    """Arithmetic modulo a prime group order, shared by both groups."""

    name: str
    order: int
    scalar_length: int

    def scalar_from_int(self, value: int) -> int:
        return value % self.order

    def scalar_add(self, left: int, right: int) -> int:
        return (left + right) % self.order

    def scalar_sub(self, left: int, right: int) -> int:
        return (left - right) % self.order

    def scalar_mul(self, left: int, right: int) -> int:
        return (left * right) % self.order

    def scalar_neg(self, scalar: int) -> int:
        return (-scalar) % self.order

    def scalar_inv(self, scalar: int) -> int:
        if scalar % self.order == 0:
            raise InvalidScalar(f"{self.name}: zero has no inverse")
        return pow(scalar, -1, self.order)

    def random_scalar(self, rng: Rng = system_rng) -> int:
        """A uniformly random non-zero scalar (wide reduction, bias below 2^-128)."""
        for _ in range(RANDOM_SCALAR_ATTEMPTS_MAX):
            value = int.from_bytes(rng(self.scalar_length + 16), "big") % self.order
            if value != 0:
                return value
        raise InvalidScalar(f"{self.name}: the random source returned only zero scalars")

    def _check_scalar(self, scalar: int) -> int:
        invariant(isinstance(scalar, int), f"{self.name}: scalar must be an int")
        invariant(0 <= scalar < self.order, f"{self.name}: scalar must be reduced")
        return scalar


RANDOM_SCALAR_ATTEMPTS_MAX: Final = 8


class _PrimeOrderGroup(_ScalarField):
    """What both groups share: the explicit identity, element bookkeeping and scalar encoding."""

    _identity_encoding: bytes
    _generator_encoding: bytes
    _scalar_byteorder: Literal["big", "little"]

    def identity(self) -> Element:
        return Element(self.name, self._identity_encoding)

    def generator(self) -> Element:
        return Element(self.name, self._generator_encoding)

    def is_identity(self, element: Element) -> bool:
        self._check_element(element)
        return element.encoding == self._identity_encoding

    def serialize_element(self, element: Element) -> bytes:
        if self.is_identity(element):
            raise IdentityElement(f"{self.name}: the identity has no serialization")
        return element.encoding

    def serialize_scalar(self, scalar: int) -> bytes:
        return self._check_scalar(scalar).to_bytes(32, self._scalar_byteorder)

    def deserialize_scalar(self, data: bytes) -> int:
        if len(data) != self.scalar_length:
            raise InvalidEncoding(f"{self.name}: a scalar is {self.scalar_length} bytes, got {len(data)}")
        value = int.from_bytes(data, self._scalar_byteorder)
        if value >= self.order:
            raise InvalidScalar(f"{self.name}: scalar is not below the group order")
        return value

    def _check_element(self, element: Element) -> None:
        invariant(element.group == self.name, f"element of {element.group} used in {self.name}")


class Secp256k1Group(_PrimeOrderGroup):
    """secp256k1 through libsecp256k1 (coincurve). Elements are 33-byte compressed SEC1 points."""

    name = "secp256k1"
    field_prime = 2**256 - 2**32 - 977
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    element_length = 33
    scalar_length = 32
    _identity_encoding = b"\x00"
    _generator_encoding = bytes.fromhex(
        "0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
    _scalar_byteorder = "big"

    def add(self, left: Element, right: Element) -> Element:
        return self.sum((left, right))

    def sub(self, left: Element, right: Element) -> Element:
        return self.sum((left, self.neg(right)))

    def neg(self, element: Element) -> Element:
        if self.is_identity(element):
            return element
        flipped = 0x05 - element.encoding[0]  # 0x02 <-> 0x03: the same x, the other y
        return Element(self.name, bytes([flipped]) + element.encoding[1:])

    def sum(self, elements: Iterable[Element]) -> Element:
        points = [element for element in elements if not self.is_identity(element)]
        if not points:
            return self.identity()
        if len(points) == 1:
            return points[0]
        try:
            combined = coincurve.PublicKey.combine_keys(
                [coincurve.PublicKey(point.encoding) for point in points])
        except ValueError:
            # libsecp256k1 refuses to return infinity; the inputs were valid points, so the sum
            # is the identity.
            return self.identity()
        return Element(self.name, combined.format(compressed=True))

    def mul(self, element: Element, scalar: int) -> Element:
        self._check_scalar(scalar)
        if scalar == 0 or self.is_identity(element):
            return self.identity()
        product = coincurve.PublicKey(element.encoding).multiply(scalar.to_bytes(32, "big"))
        return Element(self.name, product.format(compressed=True))

    def base_mul(self, scalar: int) -> Element:
        self._check_scalar(scalar)
        if scalar == 0:
            return self.identity()
        public = coincurve.PublicKey.from_valid_secret(scalar.to_bytes(32, "big"))
        return Element(self.name, public.format(compressed=True))

    def deserialize_element(self, data: bytes) -> Element:
        data = bytes(data)
        if len(data) != self.element_length:
            raise InvalidEncoding(f"{self.name}: an element is {self.element_length} bytes, got {len(data)}")
        if data[0] not in (0x02, 0x03):
            raise InvalidElement(f"{self.name}: the element prefix must be 0x02 or 0x03")
        if int.from_bytes(data[1:], "big") >= self.field_prime:
            raise InvalidElement(f"{self.name}: the x coordinate is not below the field prime")
        try:
            coincurve.PublicKey(data)
        except ValueError as error:
            raise InvalidElement(f"{self.name}: the point is not on the curve") from error
        return Element(self.name, data)


    # BIP-340 helpers: x-only encodings and the y parity of a point.

    def has_even_y(self, element: Element) -> bool:
        """True when the point's y coordinate is even (BIP-340); the identity has no y."""
        if self.is_identity(element):
            raise IdentityElement(f"{self.name}: the identity has no y coordinate")
        return element.encoding[0] == 0x02

    def x_bytes(self, element: Element) -> bytes:
        """The 32-byte x coordinate (BIP-340 `bytes(P)`)."""
        if self.is_identity(element):
            raise IdentityElement(f"{self.name}: the identity has no x coordinate")
        return element.encoding[1:]

    def lift_x(self, data: bytes) -> Element:
        """The point with x coordinate `data` and even y (BIP-340 `lift_x`), strictly parsed."""
        if len(data) != 32:
            raise InvalidEncoding(f"{self.name}: an x-only key is 32 bytes, got {len(data)}")
        return self.deserialize_element(b"\x02" + bytes(data))


class Ed25519Group(_PrimeOrderGroup):
    """The prime-order subgroup of edwards25519 through libsodium. Elements are 32 bytes."""

    name = "ed25519"
    field_prime = 2**255 - 19
    order = 2**252 + 27742317777372353535851937790883648493
    element_length = 32
    scalar_length = 32
    _identity_encoding = b"\x01" + bytes(31)
    _generator_encoding = bytes.fromhex(
        "5866666666666666666666666666666666666666666666666666666666666666")
    _scalar_byteorder = "little"

    def add(self, left: Element, right: Element) -> Element:
        self._check_element(left)
        self._check_element(right)
        return Element(self.name, sodium.crypto_core_ed25519_add(left.encoding, right.encoding))

    def sub(self, left: Element, right: Element) -> Element:
        self._check_element(left)
        self._check_element(right)
        return Element(self.name, sodium.crypto_core_ed25519_sub(left.encoding, right.encoding))

    def neg(self, element: Element) -> Element:
        return self.sub(self.identity(), element)

    def sum(self, elements: Iterable[Element]) -> Element:
        total = self.identity()
        for element in elements:
            total = self.add(total, element)
        return total

    def mul(self, element: Element, scalar: int) -> Element:
        self._check_scalar(scalar)
        if scalar == 0 or self.is_identity(element):
            return self.identity()
        try:
            product = sodium.crypto_scalarmult_ed25519_noclamp(
                scalar.to_bytes(32, "little"), element.encoding)
        except sodium_exceptions.RuntimeError:
            # libsodium refuses an identity result; for a prime-order point and a non-zero
            # scalar below the order that cannot happen, so the element was not in the subgroup.
            raise InvalidElement(f"{self.name}: element outside the prime-order subgroup") from None
        return Element(self.name, product)

    def base_mul(self, scalar: int) -> Element:
        self._check_scalar(scalar)
        if scalar == 0:
            return self.identity()
        return Element(self.name, sodium.crypto_scalarmult_ed25519_base_noclamp(scalar.to_bytes(32, "little")))

    def deserialize_element(self, data: bytes) -> Element:
        data = bytes(data)
        if len(data) != self.element_length:
            raise InvalidEncoding(f"{self.name}: an element is {self.element_length} bytes, got {len(data)}")
        if int.from_bytes(data, "little") & ((1 << 255) - 1) >= self.field_prime:
            raise InvalidElement(f"{self.name}: the y coordinate is not below the field prime")
        # libsodium's check: canonical, on the curve, not of small order (so not the identity),
        # and in the prime-order subgroup.
        if not sodium.crypto_core_ed25519_is_valid_point(data):
            raise InvalidElement(
                f"{self.name}: not a point of the prime-order subgroup other than the identity")
        return Element(self.name, data)



SECP256K1: Final = Secp256k1Group()
ED25519: Final = Ed25519Group()
