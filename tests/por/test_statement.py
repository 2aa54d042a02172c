"""Solvency statements: computed solvency, Ed25519 signature, insolvency never hidden."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from coffer.por.statement import sign_statement, solvency_statement
from coffer.por.verify import PublishedRoot, VerificationFailed, verify_statement

KEY = SigningKey(bytes([3]) * 32)


def _sign(message: bytes) -> bytes:
    return bytes(KEY.sign(message).signature)


def _reserves(total: int) -> dict[str, object]:
    return {"asset": "BTC", "height": 10, "total": total, "entries": []}


def test_solvent_statement_verifies() -> None:
    """A statement with reserves above liabilities is signed and verifies under the group key."""
    statement = solvency_statement("regtest", "aa" * 32, PublishedRoot("BTC", 10, b"\x01" * 32, 500, 8), _reserves(900))
    assert statement["solvent"] is True
    verify_statement(statement, sign_statement(statement, _sign), bytes(KEY.verify_key))


def test_insolvent_statement_fails_verification() -> None:
    """Reserves below liabilities are stated as such, and the verifier reports insolvency."""
    statement = solvency_statement("regtest", "aa" * 32, PublishedRoot("BTC", 10, b"\x01" * 32, 500, 8), _reserves(499))
    assert statement["solvent"] is False
    with pytest.raises(VerificationFailed, match="solvency"):
        verify_statement(statement, sign_statement(statement, _sign), bytes(KEY.verify_key))


def test_flipped_solvent_flag_fails() -> None:
    """A statement claiming solvency against its own totals is refused even when signed."""
    statement = solvency_statement("regtest", "aa" * 32, PublishedRoot("BTC", 10, b"\x01" * 32, 500, 8), _reserves(499))
    statement["solvent"] = True
    with pytest.raises(VerificationFailed, match="contradicts"):
        verify_statement(statement, sign_statement(statement, _sign), bytes(KEY.verify_key))
