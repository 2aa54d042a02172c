"""Fuzzing the PGP key gate: random bytes and one-byte changes to a real key only ever give KeyRejected."""

from __future__ import annotations

from datetime import UTC, datetime

import pysequoia as sq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.notify import KeyRejected, check_public_key

NOW = datetime.now(UTC)
CERT = str(sq.Tsk.generate("Fuzz <fuzz@example.com>").extract_certificate()).encode()
BINARY = bytes(sq.Cert.from_bytes(CERT))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_are_rejected_with_a_reason(data: bytes) -> None:
    """Arbitrary bytes: KeyRejected with a reason, never another exception."""
    try:
        check_public_key(data, now=NOW)
    except KeyRejected as refused:
        assert refused.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(BINARY) - 1), st.integers(min_value=1, max_value=255))
def test_one_changed_byte_of_a_real_key_is_typed(position: int, flip: int) -> None:
    """A real key with one byte changed is either still a valid key or rejected with a reason."""
    mutated = bytearray(BINARY)
    mutated[position] ^= flip
    try:
        checked = check_public_key(bytes(mutated), now=NOW)
    except KeyRejected as refused:
        assert refused.reason
        return
    assert checked.fingerprint
