"""Strict parsing of canonical JSON documents: one encoding per value, nothing unexpected.

Refuses oversize input, non-UTF-8, duplicate keys, floats, unknown or missing fields, and any
byte string that is not the canonical encoding of what it decodes to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from coffer.canonical import NotCanonical, canonical_json
from coffer.policy.errors import MalformedDocument

__all__ = ["parse_canonical_object", "expect_str", "expect_int", "expect_bool", "expect_hex",
           "ID_PATTERN"]

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._:@-]{0,63}$")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedDocument("duplicate key", field=key)
        result[key] = value
    return result


def _no_float(_text: str) -> float:
    raise MalformedDocument("floats are not allowed; amounts are integers of minor units")


def _no_constant(name: str) -> float:
    raise MalformedDocument(f"{name} is not allowed")


def parse_canonical_object(data: bytes, *, fields: frozenset[str], bytes_max: int,
                           what: str) -> dict[str, Any]:
    """Decode `data` as a canonical JSON object with exactly `fields`."""
    if not isinstance(data, bytes | bytearray):
        raise MalformedDocument(f"{what} must be bytes")
    if len(data) > bytes_max:
        raise MalformedDocument(f"{what} larger than {bytes_max} bytes")
    try:
        text = bytes(data).decode("utf-8", errors="strict")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                           parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, MalformedDocument):
            raise
        raise MalformedDocument(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedDocument(f"{what} must be a JSON object")
    keys = frozenset(value)
    if keys - fields:
        raise MalformedDocument("unknown field", field=sorted(keys - fields)[0])
    if fields - keys:
        raise MalformedDocument("missing field", field=sorted(fields - keys)[0])
    try:
        if canonical_json(value) != bytes(data):
            raise MalformedDocument(f"{what} is not in canonical encoding")
    except NotCanonical as exc:
        raise MalformedDocument(str(exc)) from None
    return value


def expect_str(doc: Mapping[str, Any], field: str, *, chars_max: int,
               pattern: re.Pattern[str] | None = None) -> str:
    value = doc[field]
    if not isinstance(value, str):
        raise MalformedDocument("must be a string", field=field)
    if not value or len(value) > chars_max:
        raise MalformedDocument(f"must be 1..{chars_max} characters", field=field)
    if pattern is not None and not pattern.fullmatch(value):
        raise MalformedDocument("has characters that are not allowed", field=field)
    return value


def expect_int(doc: Mapping[str, Any], field: str, *, minimum: int, maximum: int) -> int:
    value = doc[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedDocument("must be an integer", field=field)
    if not minimum <= value <= maximum:
        raise MalformedDocument(f"must be in {minimum}..{maximum}", field=field)
    return value


def expect_bool(doc: Mapping[str, Any], field: str) -> bool:
    value = doc[field]
    if not isinstance(value, bool):
        raise MalformedDocument("must be true or false", field=field)
    return value


def expect_hex(doc: Mapping[str, Any], field: str, *, length_bytes: int) -> bytes:
    value = doc[field]
    if not isinstance(value, str) or len(value) != 2 * length_bytes or value != value.lower():
        raise MalformedDocument(f"must be {length_bytes} bytes of lowercase hex", field=field)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedDocument("is not hex", field=field) from None
