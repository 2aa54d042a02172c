"""OpenPGP mail and secure tickets for clients and the security team.

- `check_public_key` (pgp.py): the gate every client/team public key passes (Sequoia).
- `KeyService`: submit a key, prove it decrypts (challenge), replace/remove with two-factor.
- `Notifier.notify(client_id, event, fields, now=...)`: encrypted when the client has an active
  key (no plaintext fallback), queued in the durable `Outbox`; `Notifier.notify_team(...)`.
- `OutboxWorker` + `SmtpSender`: delivery with bounded retries and backoff.
- `TicketService`: tickets encrypted to the team's keys before storage; replies to the client's key.

Never: hold a secret key in the coordinator, store a plaintext ticket, or mail a client who has
an active key in plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.config import Config
from coffer.notify.errors import (
    ChallengeRefused,
    KeyRejected,
    MailFailed,
    NoActiveKey,
    NotifyError,
    TeamKeyMissing,
    TicketRefused,
)
from coffer.notify.keys import KeyService, KeyStatus, KeySubmission, TwoFactorRequired
from coffer.notify.notifier import EVENTS, TEAM_EVENTS, Notifier
from coffer.notify.outbox import Outbox, OutboxItem, OutboxWorker
from coffer.notify.pgp import KEY_BYTES_MAX, RSA_BITS_MIN, CheckedKey, check_public_key
from coffer.notify.smtp import SmtpSender, build_message
from coffer.notify.store import KeyStore, StoredKey, TeamKey
from coffer.notify.tickets import Attachment, Ticket, TicketMessage, TicketService

__all__ = [
    "ChallengeRefused", "KeyRejected", "MailFailed", "NoActiveKey", "NotifyError", "TeamKeyMissing",
    "TicketRefused", "TwoFactorRequired",
    "KeyService", "KeyStatus", "KeySubmission", "EVENTS", "TEAM_EVENTS", "Notifier", "Outbox", "OutboxItem",
    "OutboxWorker", "KEY_BYTES_MAX", "RSA_BITS_MIN", "CheckedKey", "check_public_key", "SmtpSender",
    "build_message", "KeyStore", "StoredKey", "TeamKey", "Attachment", "Ticket", "TicketMessage", "TicketService",
    "NotifyParts", "open_notify", "smtp_sender",
]


@dataclass(frozen=True, slots=True)
class NotifyParts:
    """The notify part wired over one database: what the web app and other parts use."""

    keys: KeyStore
    key_service: KeyService
    outbox: Outbox
    notifier: Notifier
    tickets: TicketService


def open_notify(engine: Engine, *, address_of: Callable[[str], str],
                team_address: str = "security-team@coffer.invalid", audit: AuditLog | None = None) -> NotifyParts:
    """Wire the notify part. `address_of(client_id)` gives the client's mail address."""
    audit = audit or AuditLog(engine)
    keys = KeyStore(engine, audit=audit)
    outbox = Outbox(engine, audit=audit)
    notifier = Notifier(keys, outbox, address_of=address_of, team_address=team_address, audit=audit)
    return NotifyParts(keys, KeyService(keys, notifier, audit=audit), outbox, notifier,
                       TicketService(keys, notifier, audit=audit))


def smtp_sender(config: Config) -> SmtpSender:
    """The SMTP sender configured in the `[mail]` section."""
    return SmtpSender(config.mail.smtp_host, config.mail.smtp_port,
                      config.mail.sender, timeout_s=float(config.mail.smtp_timeout_s))
