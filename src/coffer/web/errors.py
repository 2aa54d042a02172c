"""Errors of the web layer."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["WebError", "NotSignedIn", "CsrfRefused", "RateLimited", "RequestTooLarge"]


class WebError(CofferError):
    """Root of the web layer's errors."""


class NotSignedIn(WebError):
    """No valid session (missing, expired or revoked)."""


class CsrfRefused(WebError):
    """A state-changing request without the session's CSRF token."""


class RateLimited(WebError):
    """Too many attempts; `retry_after_s` says when to try again."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestTooLarge(WebError):
    """The request body is larger than the limit."""
