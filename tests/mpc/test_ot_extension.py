"""KOS OT extension: correlations (property tests), the GF(2^208) check field, cheating receivers."""

from __future__ import annotations

import secrets
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.mpc.ecdsa import gf2
from coffer.mpc.ecdsa.base_ot import KAPPA
from coffer.mpc.ecdsa.curve import Q, system_rng
from coffer.mpc.ecdsa.errors import OtConsistencyFailure
from coffer.mpc.ecdsa.ot_extension import (
    BATCH,
    COLUMN_BYTES,
    WIDTH,
    ExtensionMessage,
    correlate,
    receiver_extend,
    receiver_output,
    sender_extend,
)


@lru_cache(maxsize=1)
def _base() -> tuple[list[bytes], list[bytes], np.ndarray, list[bytes]]:
    """Ideal base OTs (random seeds) so these tests isolate the extension."""
    seeds0 = [secrets.token_bytes(32) for _ in range(KAPPA)]
    seeds1 = [secrets.token_bytes(32) for _ in range(KAPPA)]
    delta = np.unpackbits(np.frombuffer(secrets.token_bytes(KAPPA // 8), dtype=np.uint8), bitorder="little")
    chosen = [s1 if bit else s0 for s0, s1, bit in zip(seeds0, seeds1, delta.tolist(), strict=True)]
    return seeds0, seeds1, delta, chosen


def _irreducible(modulus: int, degree: int) -> bool:
    def mulmod(a: int, b: int) -> int:
        return gf2.reduce(gf2.clmul(a, b))

    x = 2
    power = x
    for _ in range(degree):
        power = mulmod(power, power)
    if power != x:
        return False
    for prime in (2, 13):
        power = x
        for _ in range(degree // prime):
            power = mulmod(power, power)
        a, b = modulus, power ^ x
        while b:
            while a and a.bit_length() >= b.bit_length():
                a ^= b << (a.bit_length() - b.bit_length())
            a, b = b, a
        if a != 1:
            return False
    return True


def test_check_field_modulus_is_irreducible() -> None:
    """x^208 + x^9 + x^3 + x + 1 is irreducible (Rabin's test), so GF(2^208) is a field."""
    assert _irreducible(gf2.MODULUS, gf2.FIELD_BITS)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 208) - 1), st.integers(0, (1 << 208) - 1))
def test_table_multiplier_matches_carryless_product(left: int, right: int) -> None:
    """The byte-table multiplier equals the reference carry-less product, reduced."""
    expected = gf2.reduce(gf2.clmul(left, right))
    actual = gf2.reduce(gf2.Multiplier(left).unreduced(right.to_bytes(gf2.FIELD_BYTES, "little")))
    assert expected == actual


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 208) - 1), st.integers(0, (1 << 208) - 1),
       st.binary(min_size=COLUMN_BYTES, max_size=COLUMN_BYTES))
def test_column_hash_is_the_universal_hash_in_gf2_208(first: int, second: int, column: bytes) -> None:
    """The table-driven column hash equals chunk1*chi1 + chunk2*chi2 + chunk3 in GF(2^208)."""
    size = gf2.FIELD_BYTES
    chunks = [int.from_bytes(column[k * size:(k + 1) * size], "little") for k in range(3)]
    expected = gf2.reduce(gf2.clmul(chunks[0], first) ^ gf2.clmul(chunks[1], second)) ^ chunks[2]
    packed = np.frombuffer(column, dtype=np.uint8)[None, :]
    actual = gf2.hash_columns(packed, gf2.hash_tables(first, second))[0].tobytes()
    assert expected.to_bytes(size, "little") == actual


@pytest.mark.slow  # a whole protocol run per example
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=BATCH // 8, max_size=BATCH // 8),
       st.lists(st.integers(0, Q - 1), min_size=WIDTH, max_size=WIDTH),
       st.binary(min_size=8, max_size=8))
def test_correlated_ot_outputs_sum_to_choice_times_correlation(
        choice_bytes: bytes, correlations: list[int], session: bytes) -> None:
    """For every OT j and width k: z_A[j][k] + z_B[j][k] = x_j * alpha_k (mod q)."""
    seeds0, seeds1, delta, chosen = _base()
    choices = np.unpackbits(np.frombuffer(choice_bytes, dtype=np.uint8), bitorder="little")
    message, keep = receiver_extend(session, seeds0, seeds1, choices, system_rng)
    pads0, pads1 = sender_extend(session, delta, chosen, message, counterparty=2)
    z_alice, taus = correlate(pads0, pads1, correlations)
    z_bob = receiver_output(keep, taus)
    for j in range(BATCH):
        for k in range(WIDTH):
            assert (int(choices[j]) * correlations[k]) % Q == (z_alice[j][k] + z_bob[j][k]) % Q


def test_tampered_matrix_fails_the_consistency_check() -> None:
    """One flipped bit of u changes the Fiat-Shamir challenges: the sender aborts naming Bob."""
    seeds0, seeds1, delta, chosen = _base()
    choices = np.zeros(BATCH, dtype=np.uint8)
    message, _ = receiver_extend(b"s", seeds0, seeds1, choices, system_rng)
    columns = bytearray(message.columns)
    columns[100] ^= 1
    with pytest.raises(OtConsistencyFailure) as caught:
        sender_extend(b"s", delta, chosen, ExtensionMessage(bytes(columns), message.check_x,
                                                             message.check_t), counterparty=7)
    assert 7 == caught.value.counterparty


def _polychrome_message(column: int) -> ExtensionMessage:
    """A cheating receiver: column `column` uses other choice bits, check values computed honestly."""
    from coffer.mpc.ecdsa import ot_extension as ote

    seeds0, seeds1, _, _ = _base()
    extended = np.zeros(ote.EXTENDED, dtype=np.uint8)
    t0 = ote._expand(b"s", seeds0)
    t1 = ote._expand(b"s", seeds1)
    u = t0 ^ t1 ^ extended
    u[column, 3] ^= 1  # in this column the receiver pretends x_3 = 1
    columns = np.packbits(u, axis=1, bitorder="little").tobytes()
    tables = ote._challenges(b"s", columns)
    check_x = gf2.hash_columns(np.packbits(extended, bitorder="little")[None, :], tables).tobytes()
    check_t = gf2.hash_columns(np.packbits(t0, axis=1, bitorder="little"), tables).tobytes()
    return ExtensionMessage(columns, check_x, check_t)


def test_inconsistent_rows_are_caught_when_the_correlation_bit_is_one() -> None:
    """A polychrome row fails the check exactly when the sender's bit is 1 (why aborts are final)."""
    _, _, delta, chosen = _base()
    ones = [i for i in range(KAPPA) if delta[i]]
    zeros = [i for i in range(KAPPA) if not delta[i]]
    with pytest.raises(OtConsistencyFailure):
        sender_extend(b"s", delta, chosen, _polychrome_message(ones[0]), counterparty=2)
    if zeros:
        sender_extend(b"s", delta, chosen, _polychrome_message(zeros[0]), counterparty=2)


def test_wrong_dimensions_are_refused() -> None:
    """A matrix of the wrong size is an abort, not an exception from numpy."""
    _, _, delta, chosen = _base()
    message = ExtensionMessage(bytes(KAPPA * COLUMN_BYTES - 1), bytes(26), bytes(KAPPA * 26))
    with pytest.raises(OtConsistencyFailure):
        sender_extend(b"s", delta, chosen, message, counterparty=2)
