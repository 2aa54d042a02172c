"""Errors of the notify part: OpenPGP keys, challenges, mail and tickets.

Messages never echo what a client pasted (it may be a secret key) and never carry a plaintext.
"""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["NotifyError", "KeyRejected", "ChallengeRefused", "NoActiveKey", "TicketRefused",
           "MailFailed", "TeamKeyMissing"]


class NotifyError(CofferError):
    """Root of the notify part's errors."""


class KeyRejected(NotifyError):
    """An OpenPGP key was refused; `reason` is a stable code (e.g. `weak_rsa`, `expired`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ChallengeRefused(NotifyError):
    """A key challenge answer is wrong, expired, used up or there is no pending key."""


class NoActiveKey(NotifyError):
    """The client has no active (confirmed) OpenPGP key."""


class TeamKeyMissing(NotifyError):
    """No security-team OpenPGP key is registered, so nothing can be encrypted to the team."""


class TicketRefused(NotifyError):
    """A ticket or a reply was refused (size, count, unknown ticket, another client's ticket)."""


class MailFailed(NotifyError):
    """Handing a mail to the SMTP server failed; the outbox will retry."""
