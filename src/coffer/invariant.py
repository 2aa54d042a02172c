"""Invariant checks that `python -O` cannot strip.

A broken invariant (ledger does not balance, positions do not net to zero) is a bug or an
intrusion, not bad input: it raises `InvariantViolation`, which no handler treats as expected.
"""

from __future__ import annotations

from typing import NoReturn

from coffer.errors import InvariantViolation

__all__ = ["invariant", "unreachable"]


def invariant(condition: object, message: str) -> None:
    """Raise InvariantViolation when `condition` is false. Not an `assert`: survives -O."""
    if not condition:
        raise InvariantViolation(message)


def unreachable(message: str) -> NoReturn:
    raise InvariantViolation(f"unreachable: {message}")
