"""Limits every HTTP edge shares (key holders and `coffer serve`): body size, JSON nesting depth,
and the interpreter's recursion limit.

Pure functions, no I/O. The depth check runs before any JSON parser sees a body, without
recursion, so a deeply nested body is refused in time linear in its size and can never exhaust
a stack. Never raise the recursion limit in a server process: libraries of the Ethereum stack do
when imported (py_ecc to 100,000, py-evm to 12,288), so the modules that import them call
`restore_recursion_limit()` right after.
"""

from __future__ import annotations

import itertools
import re
import sys
from typing import Final

from coffer.keyholder.errors import BodyTooLarge, JsonTooDeep

__all__ = ["BODY_BYTES_MAX", "JSON_DEPTH_MAX", "RECURSION_LIMIT", "json_depth", "check_body",
           "restore_recursion_limit"]

BODY_BYTES_MAX: Final = 4 * 1024 * 1024
JSON_DEPTH_MAX: Final = 32
RECURSION_LIMIT: Final = 1000  # the interpreter's own default
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: linear time
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in `data` (brackets inside strings not counted)."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate((_STEP[b] for b in brackets), initial=0))


def check_body(data: bytes, *, bytes_max: int = BODY_BYTES_MAX, depth_max: int = JSON_DEPTH_MAX) -> None:
    """Raise `BodyTooLarge` or `JsonTooDeep` for a body past the limits; never parse it."""
    if len(data) > bytes_max:
        raise BodyTooLarge(f"body of {len(data)} bytes is over {bytes_max}")
    if json_depth(data) > depth_max:
        raise JsonTooDeep(f"JSON nested deeper than {depth_max}")


def restore_recursion_limit() -> None:
    """Put the interpreter's recursion limit back to its default if an import raised it."""
    if sys.getrecursionlimit() > RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
