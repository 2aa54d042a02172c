"""Polling instead of sleeping: wait until a predicate holds, with a bound."""

from __future__ import annotations

import time
from collections.abc import Callable

from coffer.errors import CofferError

__all__ = ["wait_until", "WaitTimeout"]


class WaitTimeout(CofferError):
    """The predicate did not hold within the timeout."""


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, *, interval: float = 0.02,
               what: str = "condition") -> object:
    """Poll `predicate` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the predicate may fail while a service is still starting
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise WaitTimeout(f"{what} not reached within {timeout:.1f}s{detail}")
        time.sleep(interval)
