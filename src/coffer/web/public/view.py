"""What the public proof-of-reserves page shows, computed from the published files: pure functions.

Amounts are integers of the statement's unit (satoshis for BTC; gwei for ETH, whose liabilities
tree counts gwei) and are written exactly in BTC and ETH with their unit, never through a float.
Every yes/no reads "yes" or "no"; every signature "verified", "does NOT verify" or "not checked".
History is the public log, newest first, each entry checked on its own so a broken one is named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from coffer.por.verify import (
    TREE_UNIT_SCALE,
    ZERO_HASH,
    VerificationFailed,
    log_entry_digest,
    verify_log_entry,
    verify_statement,
)

__all__ = ["NATIVE_DECIMALS", "format_amount", "yes_no", "Coverage", "coverage", "StatementView", "statement_view",
           "HistoryRow", "history", "HISTORY_ROWS_MAX", "VERIFIED", "NOT_VERIFIED", "NOT_CHECKED"]

NATIVE_DECIMALS: Final = {"BTC": 8, "ETH": 18}
HISTORY_ROWS_MAX: Final = 1000
COVERAGE_BASIS_POINTS_FULL: Final = 10_000
VERIFIED: Final = "verified"
NOT_VERIFIED: Final = "does NOT verify"
NOT_CHECKED: Final = "not checked: this server knows no publication key"


def _statement_decimals(asset: str) -> int | None:
    """Decimals of the statement's unit: the native decimals less the liabilities tree's scale."""
    if asset not in NATIVE_DECIMALS or asset not in TREE_UNIT_SCALE:
        return None
    return NATIVE_DECIMALS[asset] - (len(str(TREE_UNIT_SCALE[asset])) - 1)


def format_amount(asset: str, amount: int) -> str:
    """`amount` statement units as '1,234.56789012 BTC': exact, every decimal the statement carries."""
    decimals = _statement_decimals(asset)
    if decimals is None:
        return f"{amount:,} {asset} (minor units)"
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**decimals)
    digits = f".{fraction:0{decimals}d}" if decimals else ""
    return f"{sign}{whole:,}{digits} {asset}"


def yes_no(value: object) -> str:
    return "yes" if value is True else "no"


@dataclass(frozen=True, slots=True)
class Coverage:
    """Reserves against client liabilities for one asset, as text and as a bar.

    The bar's scale runs to the coverage (at least 100 %, at most BAR_SCALE_PERCENT_MAX); `mark`
    is where 100 % of liabilities lies on it, `fill` how far the reserves reach, both in percent.
    """

    basis_points: int | None  # reserves / liabilities in 1/100 of a percent, floored; None: no liabilities
    text: str
    fill: int
    mark: int
    covered: bool


BAR_SCALE_PERCENT_MAX: Final = 200


def coverage(liabilities: int, reserves: int) -> Coverage:
    if liabilities <= 0:
        return Coverage(None, "no client liabilities", 100, 100, True)
    points = reserves * COVERAGE_BASIS_POINTS_FULL // liabilities
    percent = points // 100
    scale = min(max(percent, 100), BAR_SCALE_PERCENT_MAX)
    text = f"{percent:,}.{points % 100:02d} % of liabilities"
    return Coverage(points, text, min(percent, scale) * 100 // scale, 100 * 100 // scale, reserves >= liabilities)


@dataclass(frozen=True, slots=True)
class StatementView:
    asset: str
    liabilities: str
    reserves: str
    solvent: str
    coverage: Coverage
    liabilities_root: str
    leaf_count: int
    signature: str


def _int(value: object) -> int:
    if type(value) is not int:
        raise ValueError("not an integer")
    return value


def statement_view(statement: Mapping[str, Any], signature_hex: object, public_key: bytes | None) -> StatementView:
    """One signed statement as the page shows it; its signature checked when the key is known."""
    asset = str(statement.get("asset", "?"))
    liabilities, reserves = _int(statement.get("liabilities_total")), _int(statement.get("reserves_total"))
    status = NOT_CHECKED
    if public_key is not None:
        try:
            verify_statement(statement, bytes.fromhex(str(signature_hex)), public_key)
            status = VERIFIED
        except (VerificationFailed, ValueError):
            status = NOT_VERIFIED
    return StatementView(asset, format_amount(asset, liabilities), format_amount(asset, reserves),
                         yes_no(statement.get("solvent")), coverage(liabilities, reserves),
                         str(statement.get("liabilities_root", "")), _int(statement.get("leaf_count", 0)), status)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    seq: int
    asset: str
    height: str
    liabilities: str
    reserves: str
    solvent: str
    signature: str
    reason: str


def _history_row(number: int, entry: Any, status: str, reason: str) -> HistoryRow:
    statement = entry.get("statement") if isinstance(entry, dict) else None
    if not isinstance(statement, dict):
        return HistoryRow(number, "?", "?", "?", "?", "?", status, reason or "not a statement")
    asset = str(statement.get("asset", "?"))
    try:
        amounts = (format_amount(asset, _int(statement.get("liabilities_total"))),
                   format_amount(asset, _int(statement.get("reserves_total"))))
    except ValueError:
        amounts = ("?", "?")
    return HistoryRow(number, asset, str(statement.get("height", "?")), *amounts, yes_no(statement.get("solvent")),
                      status, reason)


def history(lines: Iterable[str], public_key: bytes | None) -> list[HistoryRow]:
    """Every published statement in the public log, newest first, each checked on its own."""
    rows: list[HistoryRow] = []
    prev = ZERO_HASH
    for number, line in enumerate(lines):
        if number >= HISTORY_ROWS_MAX:
            break
        try:
            entry = json.loads(line)
        except ValueError:
            rows.append(_history_row(number, None, NOT_VERIFIED, "not valid JSON"))
            continue
        status, reason = NOT_CHECKED, ""
        if public_key is not None:
            try:
                verify_log_entry(number, prev, entry, public_key)
                status = VERIFIED
            except VerificationFailed as exc:
                status, reason = NOT_VERIFIED, exc.reason
        rows.append(_history_row(number, entry, status, reason))
        try:
            prev = log_entry_digest(entry)
        except (VerificationFailed, TypeError, ValueError):
            pass  # the next entry cannot link to this one: it is reported as not verifying
    return rows[::-1]
