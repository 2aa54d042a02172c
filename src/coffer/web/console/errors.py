"""Errors of the operations console (answered as 403 by the app: they are `Refused`)."""

from __future__ import annotations

from coffer.errors import Refused

__all__ = ["ConsoleError", "CeremonyRefused", "OperatorRefused"]


class ConsoleError(Refused):
    """Root of the console's refusals."""

    default_rule = "console"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message, rule=rule or self.default_rule)


class CeremonyRefused(ConsoleError):
    """A WebAuthn ceremony is unknown, expired, or its answer does not verify."""

    default_rule = "console.webauthn"


class OperatorRefused(ConsoleError):
    """The signed-in operator lacks the role, or is not an operator at all."""

    default_rule = "console.role"
