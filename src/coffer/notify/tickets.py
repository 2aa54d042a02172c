"""Secure tickets: encrypted to the security team's keys before they are stored.

A client's ticket (subject, text, attachments) is packed into one MIME document and encrypted
to every security-team key in memory; only the ciphertext is written. A team reply is encrypted
to the client's active key and to the team keys (so the thread stays readable by the team), and
mailed to the client encrypted. The store never holds a plaintext; the team decrypts with its
own secret keys on its own machines (`coffer tickets show`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import pysequoia as sq
import sqlalchemy as sa

from coffer.audit import AuditLog
from coffer.notify import pgp
from coffer.notify import tables as t
from coffer.notify.errors import NoActiveKey, TeamKeyMissing, TicketRefused
from coffer.notify.notifier import Notifier
from coffer.notify.store import KeyStore

__all__ = ["TicketService", "Attachment", "Ticket", "TicketMessage", "SUBJECT_CHARS_MAX", "BODY_CHARS_MAX",
           "ATTACHMENTS_MAX", "ATTACHMENT_BYTES_MAX", "ATTACHMENTS_BYTES_MAX", "REPLY_CHARS_MAX",
           "OPEN_TICKETS_MAX"]

SUBJECT_CHARS_MAX = 200
BODY_CHARS_MAX = 20_000
REPLY_CHARS_MAX = 20_000
ATTACHMENTS_MAX = 5
ATTACHMENT_BYTES_MAX = 1024 * 1024
ATTACHMENTS_BYTES_MAX = 4 * 1024 * 1024
OPEN_TICKETS_MAX = 20
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()-]{0,99}$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"Attachment(filename={self.filename!r}, bytes={len(self.data)})"


@dataclass(frozen=True, slots=True)
class TicketMessage:
    id: int
    ticket_id: int
    author: str
    at_s: int
    ciphertext: str
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    client_id: str
    status: str
    created_at_s: int
    updated_at_s: int
    messages: int


def _check(subject: str, body: str, attachments: Sequence[Attachment]) -> None:
    if not subject.strip() or len(subject) > SUBJECT_CHARS_MAX or "\n" in subject or "\r" in subject:
        raise TicketRefused(f"the subject must be one line of 1..{SUBJECT_CHARS_MAX} characters")
    if not body.strip() or len(body) > BODY_CHARS_MAX:
        raise TicketRefused(f"the message must be 1..{BODY_CHARS_MAX} characters")
    if len(attachments) > ATTACHMENTS_MAX:
        raise TicketRefused(f"at most {ATTACHMENTS_MAX} attachments")
    total = 0
    for attachment in attachments:
        if not _FILENAME.fullmatch(attachment.filename):
            raise TicketRefused("attachment names: letters, digits, space, . _ ( ) -, at most 100 characters")
        if not _CONTENT_TYPE.fullmatch(attachment.content_type):
            raise TicketRefused("bad attachment content type")
        if len(attachment.data) > ATTACHMENT_BYTES_MAX:
            raise TicketRefused(f"an attachment is larger than {ATTACHMENT_BYTES_MAX // 1024} KiB")
        total += len(attachment.data)
    if total > ATTACHMENTS_BYTES_MAX:
        raise TicketRefused(f"attachments exceed {ATTACHMENTS_BYTES_MAX // (1024 * 1024)} MiB in total")


def pack_ticket(client_id: str, subject: str, body: str, attachments: Sequence[Attachment], at_s: int) -> bytes:
    """The plaintext MIME document that gets encrypted (never stored)."""
    message = EmailMessage()
    message["From"] = f"client:{client_id}"
    message["Subject"] = subject
    message["Date"] = formatdate(at_s, usegmt=True)
    message.set_content(body)
    for attachment in attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message.as_bytes()


def _ticket(row: Any, messages: int) -> Ticket:
    return Ticket(int(row.id), row.client_id, row.status, int(row.created_at_s), int(row.updated_at_s), messages)


class TicketService:
    """Encrypted ticket store for clients (write, read own) and the team (list, reply)."""

    def __init__(self, keys: KeyStore, notifier: Notifier, *, audit: AuditLog | None = None) -> None:
        self._keys = keys
        self._engine = keys.engine
        self._notifier = notifier
        self._audit = audit or AuditLog(keys.engine)

    def _team_recipients(self) -> list[str]:
        team = self._keys.team_keys()
        if not team:
            raise TeamKeyMissing("no security-team key is registered: tickets cannot be encrypted")
        return [key.armored for key in team]

    def open(self, client_id: str, subject: str, body: str, attachments: Sequence[Attachment] = (), *,
             now: datetime) -> int:
        """Encrypt a new ticket to the team and store only the ciphertext. Needs the client's active key."""
        _check(subject, body, attachments)
        if self._keys.active(client_id) is None:
            raise NoActiveKey("add and confirm your OpenPGP key first: replies are encrypted to it")
        recipients = self._team_recipients()
        at = int(now.timestamp())
        ciphertext = pgp.encrypt(pack_ticket(client_id, subject, body, attachments, at), recipients)
        fingerprints = ",".join(key.fingerprint for key in self._keys.team_keys())
        with self._engine.begin() as conn:
            open_count = conn.execute(sa.select(sa.func.count()).select_from(t.tickets).where(
                t.tickets.c.client_id == client_id, t.tickets.c.status != "closed")).scalar_one()
            if int(open_count) >= OPEN_TICKETS_MAX:
                raise TicketRefused(f"at most {OPEN_TICKETS_MAX} open tickets")
            result = conn.execute(t.tickets.insert().values(client_id=client_id, status="open",
                                                            created_at_s=at, updated_at_s=at))
            ticket_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            conn.execute(t.ticket_messages.insert().values(ticket_id=ticket_id, author=f"client:{client_id}",
                                                           at_s=at, ciphertext=ciphertext, recipients=fingerprints))
            self._audit.append(f"client:{client_id}", "notify.ticket_opened",
                               {"ticket_id": ticket_id, "client_id": client_id}, at=now, connection=conn)
        self._notifier.notify(client_id, "ticket_opened", {"ticket_id": ticket_id}, now=now)
        self._notifier.notify_team("ticket_opened", {"client_id": client_id, "ticket_id": ticket_id}, now=now)
        return ticket_id

    def reply(self, ticket_id: int, body: str, *, by: str, now: datetime, signer: sq.PySigner | None = None) -> int:
        """A team reply: encrypted to the client's active key and the team keys, and mailed encrypted."""
        if not body.strip() or len(body) > REPLY_CHARS_MAX:
            raise TicketRefused(f"the reply must be 1..{REPLY_CHARS_MAX} characters")
        ticket = self.ticket(ticket_id)
        active = self._keys.active(ticket.client_id)
        if active is None:
            raise NoActiveKey(f"client {ticket.client_id} has no active key: a reply cannot be encrypted")
        team = self._keys.team_keys()
        ciphertext = pgp.encrypt(body.encode(), [active.armored, *self._team_recipients()], signer=signer)
        at = int(now.timestamp())
        with self._engine.begin() as conn:
            result = conn.execute(t.ticket_messages.insert().values(
                ticket_id=ticket_id, author=f"team:{by}", at_s=at, ciphertext=ciphertext,
                recipients=",".join([active.fingerprint, *(key.fingerprint for key in team)])))
            message_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            conn.execute(t.tickets.update().where(t.tickets.c.id == ticket_id)
                         .values(status="answered", updated_at_s=at))
            self._audit.append(f"team:{by}", "notify.ticket_replied", {"ticket_id": ticket_id, "message_id": message_id},
                               at=now, connection=conn)
            self._notifier.send(ticket.client_id, "ticket_reply", {"ticket_id": ticket_id, "message": body},
                                recipients=[active.armored], now=now, connection=conn)
        return message_id

    def close(self, ticket_id: int, *, by: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(t.tickets.update().where(t.tickets.c.id == ticket_id)
                         .values(status="closed", updated_at_s=int(now.timestamp())))
            self._audit.append(by, "notify.ticket_closed", {"ticket_id": ticket_id}, at=now, connection=conn)

    def ticket(self, ticket_id: int, *, client_id: str | None = None) -> Ticket:
        """One ticket; with `client_id`, only if it is that client's (else it does not exist for them)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.tickets).where(t.tickets.c.id == ticket_id)).first()
            if row is None or (client_id is not None and row.client_id != client_id):
                raise TicketRefused(f"no ticket {ticket_id}")
            count = conn.execute(sa.select(sa.func.count()).select_from(t.ticket_messages)
                                 .where(t.ticket_messages.c.ticket_id == ticket_id)).scalar_one()
        return _ticket(row, int(count))

    def tickets(self, *, client_id: str | None = None, status: str | None = None, limit: int = 200) -> list[Ticket]:
        counts = (sa.select(t.ticket_messages.c.ticket_id, sa.func.count().label("n"))
                  .group_by(t.ticket_messages.c.ticket_id).subquery())
        query = (sa.select(t.tickets, counts.c.n).outerjoin(counts, counts.c.ticket_id == t.tickets.c.id)
                 .order_by(t.tickets.c.id.desc()).limit(limit))
        if client_id is not None:
            query = query.where(t.tickets.c.client_id == client_id)
        if status is not None:
            query = query.where(t.tickets.c.status == status)
        with self._engine.connect() as conn:
            return [_ticket(row, int(row.n or 0)) for row in conn.execute(query)]

    def messages(self, ticket_id: int, *, client_id: str | None = None) -> list[TicketMessage]:
        self.ticket(ticket_id, client_id=client_id)
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.ticket_messages).where(t.ticket_messages.c.ticket_id == ticket_id)
                                .order_by(t.ticket_messages.c.id)).all()
        return [TicketMessage(int(r.id), int(r.ticket_id), r.author, int(r.at_s), r.ciphertext,
                              tuple(filter(None, r.recipients.split(",")))) for r in rows]


def utc(at_s: int) -> str:
    return datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%d %H:%M:%S")
