"""The root of every error Coffer raises on purpose.

Each part has its own `errors.py` with precise subclasses of `CofferError`. An error about a
misbehaving party names it (`culprits`). Error messages never carry secret material.
"""

from __future__ import annotations

__all__ = ["CofferError", "InvariantViolation", "ConfigError", "NotFound", "Refused"]


class CofferError(Exception):
    """Root of all of Coffer's expected, typed failures."""


class ConfigError(CofferError):
    """A configuration file or setting is invalid; the message names the file, line and key."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        if key is not None:
            message = f"{key}: {message}"
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.key = key


class NotFound(CofferError):
    """A named object does not exist."""


class Refused(CofferError):
    """A request was refused by a rule; `rule` names the rule."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class InvariantViolation(AssertionError):
    """A broken invariant: a bug or an intrusion, never bad input. The process must stop.

    Deliberately not a CofferError: nobody may catch it as an expected failure.
    """
