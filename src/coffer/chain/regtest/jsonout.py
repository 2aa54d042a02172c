"""JSON output with Bitcoin amounts written the way Core writes them (8 decimals, no float noise),
compact as Core's UniValue writes it (no spaces)."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["Btc", "dumps"]


@dataclass(frozen=True, slots=True)
class Btc:
    """An amount in satoshis that serialises as a BTC number: Btc(150) -> 0.00000150."""

    sats: int


def _amount(sats: int) -> str:
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), 100_000_000)
    return f"{sign}{whole}.{frac:08d}"


def dumps(value: object) -> str:
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: object, out: list[str]) -> None:
    if isinstance(value, Btc):
        out.append(_amount(value.sats))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        out.append(str(int(value)))
    else:
        out.append(json.dumps(value))
