"""Strict parsing of the JSON bodies the coordinator and the co-signers exchange.

Every body is a JSON object with exactly the expected fields; bytes travel as lowercase hex of
a checked length; integers are bounded. Any fault raises `ProtocolViolation` naming the sender
(a co-signer identifier, or None for the coordinator), and nothing is changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final

from coffer.mpc.service.errors import ProtocolViolation

__all__ = ["BODY_BYTES_MAX", "Body", "parse_body", "encode_body"]

BODY_BYTES_MAX: Final = 4 * 1024 * 1024
HEX_BYTES_MAX: Final = 1024 * 1024
LIST_ITEMS_MAX: Final = 4096
_HEX: Final = re.compile(r"^(?:[0-9a-f]{2})*$")
_IDENT: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def encode_body(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_body(data: bytes, *, sender: int | None, fields: Iterable[str],
               optional: Iterable[str] = ()) -> Body:
    """Parse a JSON object with exactly `fields` (plus any of `optional`)."""
    if len(data) > BODY_BYTES_MAX:
        raise ProtocolViolation("body too large", sender=sender)
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_reject_duplicates,
                           parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolViolation(f"body is not strict JSON ({error})", sender=sender) from None
    return Body(value, sender=sender, fields=fields, optional=optional)


def _no_float(text: str) -> Any:
    raise ValueError(f"non-integer number {text[:20]!r}")


class Body:
    """A parsed object whose fields are read through typed, bounded accessors."""

    def __init__(self, value: Any, *, sender: int | None, fields: Iterable[str],
                 optional: Iterable[str] = (), what: str = "body") -> None:
        self.sender = sender
        self.what = what
        if not isinstance(value, dict):
            raise self.fault(f"{what} must be a JSON object")
        required, allowed = set(fields), set(fields) | set(optional)
        missing, unknown = sorted(required - set(value)), sorted(set(value) - allowed)
        if missing:
            raise self.fault(f"{what} misses field(s) {missing}")
        if unknown:
            raise self.fault(f"{what} has unknown field(s) {unknown}")
        self.value: dict[str, Any] = value

    def fault(self, message: str) -> ProtocolViolation:
        return ProtocolViolation(message, sender=self.sender)

    def has(self, name: str) -> bool:
        return name in self.value

    def integer(self, name: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
        value = self.value[name]
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fault(f"{name} must be an integer in {minimum}..{maximum}")
        return value

    def string(self, name: str, *, pattern: re.Pattern[str] = _IDENT) -> str:
        value = self.value[name]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fault(f"{name} is not an allowed string")
        return value

    def hexbytes(self, name: str, *, length: int | None = None, length_max: int = HEX_BYTES_MAX) -> bytes:
        return _hex(self.value[name], name, self, length, length_max)

    def hexlist(self, name: str, *, length: int | None = None, items_max: int = LIST_ITEMS_MAX) -> list[bytes]:
        value = self.value[name]
        if not isinstance(value, list) or len(value) > items_max:
            raise self.fault(f"{name} must be a list of at most {items_max} items")
        return [_hex(item, f"{name}[{index}]", self, length, HEX_BYTES_MAX) for index, item in enumerate(value)]

    def intlist(self, name: str, *, minimum: int = 1, maximum: int = 255, unique: bool = True) -> list[int]:
        value = self.value[name]
        if not isinstance(value, list) or not value or len(value) > LIST_ITEMS_MAX:
            raise self.fault(f"{name} must be a non-empty list")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or not minimum <= item <= maximum:
                raise self.fault(f"{name} items must be integers in {minimum}..{maximum}")
        if unique and len(set(value)) != len(value):
            raise self.fault(f"{name} lists an identifier twice")
        return list(value)

    def objects(self, name: str, *, fields: Iterable[str], optional: Iterable[str] = (),
                items_max: int = LIST_ITEMS_MAX) -> list[Body]:
        value = self.value[name]
        if not isinstance(value, list) or len(value) > items_max:
            raise self.fault(f"{name} must be a list of at most {items_max} objects")
        fields, optional = tuple(fields), tuple(optional)
        return [Body(item, sender=self.sender, fields=fields, optional=optional, what=f"{name}[{index}]")
                for index, item in enumerate(value)]

    def child(self, name: str, *, fields: Iterable[str], optional: Iterable[str] = ()) -> Body:
        return Body(self.value[name], sender=self.sender, fields=fields, optional=optional, what=name)

    def raw(self, name: str) -> Any:
        return self.value[name]

    def by_identifier(self, name: str, *, maximum: int = 255) -> dict[int, Any]:
        """An object keyed by decimal identifiers ("1".."255"), canonical spelling only."""
        value = self.value[name]
        if not isinstance(value, dict) or not value:
            raise self.fault(f"{name} must be a non-empty object keyed by identifier")
        out: dict[int, Any] = {}
        for key, item in value.items():
            if not key.isdigit() or str(int(key)) != key or not 1 <= int(key) <= maximum:
                raise self.fault(f"{name} has a bad identifier key {key[:8]!r}")
            out[int(key)] = item
        return out


def _hex(value: Any, name: str, body: Body, length: int | None, length_max: int) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise body.fault(f"{name} must be lowercase hex")
    data = bytes.fromhex(value)
    if length is not None and len(data) != length:
        raise body.fault(f"{name} must be {length} bytes, got {len(data)}")
    if len(data) > length_max:
        raise body.fault(f"{name} longer than {length_max} bytes")
    return data
