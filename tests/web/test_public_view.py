"""The public proof page's view: exact amounts with units, yes/no wording, coverage, per-entry history."""

from __future__ import annotations

import json

import pytest
from nacl.signing import SigningKey

from coffer.por.statement import PublicLog
from coffer.por.verify import statement_message
from coffer.web.public.view import (
    NOT_CHECKED,
    NOT_VERIFIED,
    VERIFIED,
    coverage,
    format_amount,
    history,
    statement_view,
    yes_no,
)

KEY = SigningKey(b"\x05" * 32)


@pytest.mark.parametrize(("asset", "amount", "text"), [
    ("BTC", 0, "0.00000000 BTC"),
    ("BTC", 1, "0.00000001 BTC"),
    ("BTC", 12_000, "0.00012000 BTC"),
    ("BTC", 100_000_000, "1.00000000 BTC"),
    ("BTC", 123_456_789_012, "1,234.56789012 BTC"),
    ("BTC", 2**64 - 1, "184,467,440,737.09551615 BTC"),
    ("ETH", 1, "0.000000001 ETH"),
    ("ETH", 1_500_000_000, "1.500000000 ETH"),
    ("DOGE", 1234, "1,234 DOGE (minor units)"),
])
def test_amounts_are_exact_with_units(asset: str, amount: int, text: str) -> None:
    """Statement units (satoshis, gwei) are written in BTC and ETH exactly, with the unit named."""
    assert text == format_amount(asset, amount)


def test_yes_no_wording() -> None:
    """Every flag reads yes or no, never True, False or None."""
    assert ("yes", "no", "no") == (yes_no(True), yes_no(False), yes_no(None))


@pytest.mark.parametrize(("liabilities", "reserves", "expected"), [
    (12_000, 20_000, (16_666, "166.66 % of liabilities", 100, 60, True)),
    (10_000, 9_999, (9_999, "99.99 % of liabilities", 99, 100, False)),
    (10_000, 10_000, (10_000, "100.00 % of liabilities", 100, 100, True)),
    (1, 10**6, (10**10, "100,000,000.00 % of liabilities", 100, 50, True)),
    (0, 5, (None, "no client liabilities", 100, 100, True)),
])
def test_coverage_bar(liabilities: int, reserves: int, expected: tuple[object, ...]) -> None:
    """Coverage is reserves over liabilities, floored to 1/100 %, with the 100 % mark on the bar."""
    result = coverage(liabilities, reserves)
    assert expected == (result.basis_points, result.text, result.fill, result.mark, result.covered)


def _statement(seq: int) -> dict[str, object]:
    return {"format": "coffer-por-statement/1", "asset": "BTC", "chain": "regtest", "height": 100 + seq,
            "block_hash": "11" * 32, "liabilities_root": "22" * 32, "liabilities_total": 12_000, "leaf_count": 2,
            "reserves_total": 20_000 + seq, "reserves_digest": "33" * 32, "solvent": True}


def _log_lines(tmp_path, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    log = PublicLog(tmp_path / "log.jsonl", bytes(KEY.verify_key))
    for seq in range(count):
        log.append(_statement(seq), lambda message: bytes(KEY.sign(message).signature))
    return (tmp_path / "log.jsonl").read_text().splitlines()


def test_history_newest_first_and_verified(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every published statement is listed, newest first, each verified against the publication key."""
    rows = history(_log_lines(tmp_path, 3), bytes(KEY.verify_key))
    assert [(2, "102", "0.00020002 BTC", "yes", VERIFIED), (1, "101", "0.00020001 BTC", "yes", VERIFIED),
            (0, "100", "0.00020000 BTC", "yes", VERIFIED)] == [
        (row.seq, row.height, row.reserves, row.solvent, row.signature) for row in rows]


def test_history_names_a_tampered_entry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A changed statement fails its own signature, and the entry after it no longer links to it."""
    lines = _log_lines(tmp_path, 3)
    entry = json.loads(lines[1])
    entry["statement"]["reserves_total"] = 99_000_000
    lines[1] = json.dumps(entry)
    rows = {row.seq: row for row in history(lines, bytes(KEY.verify_key))}
    assert (VERIFIED, NOT_VERIFIED, NOT_VERIFIED) == (rows[0].signature, rows[1].signature, rows[2].signature)
    assert "the Ed25519 signature does not verify under the group key" == rows[1].reason
    assert "previous digest does not match entry 1" in rows[2].reason


def test_history_and_statement_without_a_key_are_not_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Without a publication key nothing is called verified."""
    assert {NOT_CHECKED} == {row.signature for row in history(_log_lines(tmp_path, 2), None)}
    assert NOT_CHECKED == statement_view(_statement(0), "00" * 64, None).signature


def test_statement_signature_checked() -> None:
    """A statement signed by the publication key verifies; another key's signature does not."""
    statement = _statement(0)
    good = KEY.sign(statement_message(statement)).signature.hex()
    other = SigningKey(b"\x06" * 32).sign(statement_message(statement)).signature.hex()
    view = statement_view(statement, good, bytes(KEY.verify_key))
    assert (VERIFIED, "0.00012000 BTC", "0.00020000 BTC", "yes") == (view.signature, view.liabilities, view.reserves,
                                                                view.solvent)
    assert NOT_VERIFIED == statement_view(statement, other, bytes(KEY.verify_key)).signature
