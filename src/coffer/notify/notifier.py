"""Notices to clients and to the security team, encrypted before they reach the outbox.

`Notifier.notify(client_id, event, fields, now=...)` renders a notice and queues it. When the
client has an active OpenPGP key the body is encrypted to it first and there is no plaintext
fallback: if encryption fails, nothing is queued and the error is raised. Without an active key
the notice goes in plain text. `notify_team` encrypts to every registered security-team key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from coffer.audit import AuditLog
from coffer.notify import pgp
from coffer.notify.errors import NotifyError, TeamKeyMissing
from coffer.notify.outbox import Outbox
from coffer.notify.store import KeyStore

__all__ = ["Notifier", "EVENTS", "TEAM_EVENTS", "render", "ENCRYPTED_SUBJECT", "FIELD_CHARS_MAX"]

FIELD_CHARS_MAX = 64 * 1024
ENCRYPTED_SUBJECT = "Coffer security notice"
_FIELD = re.compile(r"\{([a-z_]+)\}")

# event -> (title, body). Bodies name their fields as {field}.
EVENTS: dict[str, tuple[str, str]] = {
    "withdrawal_requested": ("Withdrawal requested",
                             "A withdrawal of {amount} {asset} to {destination} was requested (request {request_id})."),
    "withdrawal_approved": ("Withdrawal approved", "Your withdrawal request {request_id} was approved."),
    "withdrawal_sent": ("Withdrawal sent",
                        "Your withdrawal request {request_id} was broadcast in transaction {txid}."),
    "whitelist_added": ("New withdrawal address",
                        "The address {destination} ({asset}) was added to your withdrawal whitelist. "
                        "It can be used from {unlocks_at} UTC. If this was not you, open a secure ticket now."),
    "two_factor_changed": ("Two-factor authentication changed",
                           "The two-factor authentication of your account was changed at {at} UTC."),
    "sign_in": ("New sign-in", "A new sign-in to your account at {at} UTC from {address}."),
    "halt": ("Withdrawals halted", "Coffer halted withdrawals and trading at {at} UTC: {cause}."),
    "resume": ("Withdrawals resumed", "Coffer resumed withdrawals and trading at {at} UTC."),
    "key_challenge": ("Confirm your OpenPGP key",
                      "Enter this code in the security centre to activate the key {fingerprint}:\n\n"
                      "    {code}\n\nThe code expires at {expires_at} UTC."),
    "key_replacement_started": ("A new OpenPGP key was submitted",
                                "A new key {fingerprint} was submitted to replace this one. "
                                "If this was not you, open a secure ticket now."),
    "key_activated": ("OpenPGP key activated",
                      "From now on every mail to you is encrypted to the key {fingerprint}."),
    "key_removed": ("OpenPGP key removed",
                    "The key {fingerprint} was removed from your account. Mails are no longer encrypted."),
    "ticket_opened": ("Secure ticket received", "Your secure ticket #{ticket_id} was received."),
    "ticket_reply": ("Reply to your secure ticket", "Ticket #{ticket_id}:\n\n{message}"),
}
TEAM_EVENTS: dict[str, tuple[str, str]] = {
    "halt": ("HALT", "Coffer halted at {at} UTC: {cause}."),
    "resume": ("Resumed", "Coffer resumed at {at} UTC by {by}."),
    "ticket_opened": ("New secure ticket", "Client {client_id} opened ticket #{ticket_id}."),
    "alert": ("Alert", "{kind} at {at} UTC: {subject}.\n\n{detail}"),
}


def render(templates: Mapping[str, tuple[str, str]], event: str, fields: Mapping[str, object]) -> tuple[str, str]:
    """(title, body) of `event`; every field the template names must be given, and nothing else."""
    if event not in templates:
        raise NotifyError(f"unknown notice event {event!r}")
    title, template = templates[event]
    names = set(_FIELD.findall(template))
    missing = names - set(fields)
    unknown = set(fields) - names
    if missing or unknown:
        raise NotifyError(f"notice {event!r}: missing fields {sorted(missing)}, unknown fields {sorted(unknown)}")
    values = {name: str(value) for name, value in fields.items()}
    if any(len(value) > FIELD_CHARS_MAX for value in values.values()):
        raise NotifyError(f"notice {event!r}: a field is too long")
    body = _FIELD.sub(lambda match: values[match.group(1)], template)
    return title, f"{title}\n\n{body}\n\n-- \nCoffer security team\n"


class Notifier:
    """Renders, encrypts and queues notices. Holds public keys only."""

    def __init__(self, keys: KeyStore, outbox: Outbox, *, address_of: Callable[[str], str],
                 team_address: str, audit: AuditLog | None = None) -> None:
        self._keys = keys
        self._outbox = outbox
        self._address_of = address_of
        self._team_address = team_address
        self._audit = audit or AuditLog(keys.engine)

    def notify(self, client_id: str, event: str, fields: Mapping[str, object], *, now: datetime | None = None,
               idempotency_key: str | None = None) -> int:
        """Queue a notice to the client; encrypted to their active key when they have one. Returns the outbox id."""
        now = now or datetime.now(UTC)
        active = self._keys.active(client_id)
        return self.send(client_id, event, fields, recipients=None if active is None else [active.armored],
                         now=now, idempotency_key=idempotency_key)

    def send(self, client_id: str, event: str, fields: Mapping[str, object], *, recipients: Sequence[str] | None,
             now: datetime, idempotency_key: str | None = None, connection: Connection | None = None) -> int:
        """Queue a notice encrypted to `recipients` (armored public keys), or plain when None."""
        title, body = render(EVENTS, event, fields)
        address = self._address_of(client_id)
        encrypted = recipients is not None
        if recipients is not None:
            body = pgp.encrypt(body.encode(), recipients)  # raises: never a plaintext fallback
        subject = ENCRYPTED_SUBJECT if encrypted else f"Coffer: {title}"
        item_id = self._outbox.enqueue(recipient=address, subject=subject, body=body, encrypted=encrypted,
                                       event=event, client_id=client_id, now=now,
                                       idempotency_key=idempotency_key, connection=connection)
        self._audit.append("notify", "notify.queued", {"outbox_id": item_id, "event": event,
                                                       "client_id": client_id, "encrypted": encrypted},
                           at=now, connection=connection)
        return item_id

    def notify_team(self, event: str, fields: Mapping[str, object], *, now: datetime | None = None,
                    idempotency_key: str | None = None) -> int:
        """Queue a notice to the security team, encrypted to every team key (halt, resume, tickets)."""
        now = now or datetime.now(UTC)
        team = self._keys.team_keys()
        if not team:
            raise TeamKeyMissing("no security-team OpenPGP key is registered")
        _title, body = render(TEAM_EVENTS, event, fields)
        ciphertext = pgp.encrypt(body.encode(), [key.armored for key in team])
        item_id = self._outbox.enqueue(recipient=self._team_address, subject=ENCRYPTED_SUBJECT, body=ciphertext,
                                       encrypted=True, event=f"team.{event}", client_id=None, now=now,
                                       idempotency_key=idempotency_key)
        self._audit.append("notify", "notify.queued", {"outbox_id": item_id, "event": f"team.{event}",
                                                       "client_id": None, "encrypted": True}, at=now)
        return item_id
