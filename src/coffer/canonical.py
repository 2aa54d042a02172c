"""Canonical JSON: one byte string per value, for digests, signatures and the audit chain.

Sorted keys, no whitespace, ASCII only; floats are refused (money is integers).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from coffer.errors import CofferError

__all__ = ["canonical_json", "canonical_digest", "NotCanonical"]


class NotCanonical(CofferError):
    """A value that has no canonical encoding (a float, NaN, a non-string key)."""


def _check(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise NotCanonical("nested too deeply")
    if isinstance(value, float):
        raise NotCanonical("floats have no canonical encoding; use integer minor units")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical("object keys must be strings")
            _check(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check(item, depth + 1)
    elif not (value is None or isinstance(value, str | int | bool)):
        raise NotCanonical(f"cannot encode {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def canonical_digest(value: Any, *, tag: str) -> bytes:
    """SHA-256 over a domain tag and the canonical encoding."""
    tag_bytes = tag.encode()
    return hashlib.sha256(len(tag_bytes).to_bytes(2, "big") + tag_bytes + canonical_json(value)).digest()
