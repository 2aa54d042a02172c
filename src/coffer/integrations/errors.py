"""Errors of the exchange's API integrations."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["IntegrationError", "AuthenticationFailed", "IntegrationNotFound", "IdempotencyConflict"]


class IntegrationError(CofferError):
    """Root of the integrations' typed failures."""


class AuthenticationFailed(IntegrationError):
    """A request's API key, timestamp or HMAC signature does not check out; `rule` says which."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class IntegrationNotFound(IntegrationError):
    """No integration has that key id."""


class IdempotencyConflict(IntegrationError):
    """An idempotency key was reused with a different request body."""
