"""The prime-order group layer: arithmetic, identity handling and strict parsing."""

from __future__ import annotations

import pytest

from coffer.mpc.errors import IdentityElement, InvalidElement, InvalidEncoding, InvalidScalar
from coffer.mpc.hazmat.group import ED25519, SECP256K1, Group

GROUPS = [pytest.param(SECP256K1, id="secp256k1"), pytest.param(ED25519, id="ed25519")]

# Points of edwards25519 of small order (the torsion subgroup), encoded canonically.
ED25519_SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]


@pytest.mark.parametrize("group", GROUPS)
def test_arithmetic_laws(group: Group) -> None:
    """Base and variable-base multiplication agree and addition, negation and sums behave."""
    generator = group.generator()
    five = group.base_mul(5)
    assert five == group.mul(generator, 5)
    assert group.add(group.base_mul(2), group.base_mul(3)) == five
    assert group.sub(five, group.base_mul(2)) == group.base_mul(3)
    assert group.is_identity(group.add(five, group.neg(five)))
    assert group.mul(generator, group.order - 1) == group.neg(generator)
    assert group.sum([five, five, group.neg(five)]) == five
    assert group.sum([]) == group.identity()
    assert group.add(group.identity(), five) == five
    assert group.mul(group.identity(), 7) == group.identity()
    assert group.base_mul(0) == group.identity()
    assert group.add(five, five) == group.base_mul(10)


@pytest.mark.parametrize("group", GROUPS)
def test_element_and_scalar_round_trip(group: Group) -> None:
    """Serialize then deserialize returns the same element and scalar."""
    for value in (1, 2, 12345, group.order - 1):
        element = group.base_mul(value)
        assert element == group.deserialize_element(group.serialize_element(element))
        assert value == group.deserialize_scalar(group.serialize_scalar(value))
    assert 0 == group.deserialize_scalar(bytes(group.scalar_length))


@pytest.mark.parametrize("group", GROUPS)
def test_identity_is_never_serialized_or_parsed(group: Group) -> None:
    """The identity has no wire encoding in either direction."""
    with pytest.raises(IdentityElement):
        group.serialize_element(group.identity())
    with pytest.raises(InvalidElement):
        group.deserialize_element(group.identity().encoding.ljust(group.element_length, b"\x00"))


@pytest.mark.parametrize("group", GROUPS)
def test_scalar_out_of_range_is_refused(group: Group) -> None:
    """A scalar equal to or above the order, or of the wrong length, is refused."""
    big_endian = group is SECP256K1
    for value in (group.order, group.order + 1, 2**256 - 1):
        data = value.to_bytes(32, "big" if big_endian else "little")
        with pytest.raises(InvalidScalar):
            group.deserialize_scalar(data)
    with pytest.raises(InvalidEncoding):
        group.deserialize_scalar(bytes(31))
    with pytest.raises(InvalidEncoding):
        group.deserialize_scalar(bytes(33))


@pytest.mark.parametrize("group", GROUPS)
def test_element_wrong_length_is_refused(group: Group) -> None:
    """Truncated or extended encodings are refused."""
    encoding = group.serialize_element(group.base_mul(9))
    with pytest.raises(InvalidEncoding):
        group.deserialize_element(encoding[:-1])
    with pytest.raises(InvalidEncoding):
        group.deserialize_element(encoding + b"\x00")


def test_secp256k1_off_curve_and_bad_prefix_refused() -> None:
    """A secp256k1 x with no curve point, x >= p, or a bad prefix byte is refused."""
    # x = 5 has no point on secp256k1 (5^3 + 7 = 132 is not a square mod p).
    with pytest.raises(InvalidElement):
        SECP256K1.deserialize_element(b"\x02" + (5).to_bytes(32, "big"))
    with pytest.raises(InvalidElement):
        SECP256K1.deserialize_element(b"\x02" + (SECP256K1.field_prime + 1).to_bytes(32, "big"))
    good = SECP256K1.serialize_element(SECP256K1.base_mul(3))
    for prefix in (0x00, 0x04, 0x06, 0x07, 0xFF):
        with pytest.raises(InvalidElement):
            SECP256K1.deserialize_element(bytes([prefix]) + good[1:])


@pytest.mark.parametrize("encoding", ED25519_SMALL_ORDER)
def test_ed25519_small_order_points_refused(encoding: str) -> None:
    """Every point of small order (the identity included) is refused."""
    with pytest.raises(InvalidElement):
        ED25519.deserialize_element(bytes.fromhex(encoding))


def test_ed25519_mixed_order_and_non_canonical_refused() -> None:
    """A prime-order point plus a torsion point, an off-curve y and y >= p are refused."""
    torsion = bytes.fromhex(ED25519_SMALL_ORDER[4])
    import nacl.bindings as sodium

    mixed = sodium.crypto_core_ed25519_add(ED25519.base_mul(7).encoding, torsion)
    with pytest.raises(InvalidElement):
        ED25519.deserialize_element(mixed)
    # y = 2 is not the y of any curve point.
    with pytest.raises(InvalidElement):
        ED25519.deserialize_element((2).to_bytes(32, "little"))
    # y = p + 1 is the non-canonical encoding of y = 1.
    with pytest.raises(InvalidElement):
        ED25519.deserialize_element((ED25519.field_prime + 1).to_bytes(32, "little"))


def test_secp256k1_x_only_helpers() -> None:
    """lift_x gives the even-y point, and x_bytes / has_even_y read it back."""
    point = SECP256K1.base_mul(11)
    lifted = SECP256K1.lift_x(SECP256K1.x_bytes(point))
    assert SECP256K1.has_even_y(lifted)
    assert lifted in (point, SECP256K1.neg(point))
    with pytest.raises(IdentityElement):
        SECP256K1.x_bytes(SECP256K1.identity())
