"""SMTP delivery of outbox items, as PGP/MIME (RFC 3156) when the body is an OpenPGP message.

An encrypted mail carries a neutral subject: mail headers are not encrypted, so the event and
its details live only inside the OpenPGP message.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.utils import formatdate, make_msgid

from coffer.notify.outbox import OutboxItem

__all__ = ["SmtpSender", "build_message", "SMTP_TIMEOUT_S"]

SMTP_TIMEOUT_S = 10.0


def build_message(item: OutboxItem, sender: str) -> Message:
    """The MIME message for one outbox item."""
    message: Message
    if item.encrypted:
        message = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
        control = MIMEBase("application", "pgp-encrypted")
        control.add_header("Content-Description", "PGP/MIME version identification")
        control.set_payload("Version: 1\n")
        body = MIMEBase("application", "octet-stream", name="encrypted.asc")
        body.add_header("Content-Description", "OpenPGP encrypted message")
        body.add_header("Content-Disposition", "inline", filename="encrypted.asc")
        body.set_payload(item.body)
        message.attach(control)
        message.attach(body)
    else:
        plain = EmailMessage()
        plain.set_content(item.body)
        message = plain
    message["From"] = sender
    message["To"] = item.recipient
    message["Subject"] = item.subject
    message["Date"] = formatdate(item.created_at_s, usegmt=True)
    message["Message-ID"] = make_msgid(idstring=f"outbox-{item.id}", domain=sender.rsplit("@", 1)[-1])
    message["X-Coffer-Outbox-Id"] = str(item.id)
    return message


class SmtpSender:
    """Sends one outbox item per call over a fresh SMTP connection (host/port from the mail config)."""

    def __init__(self, host: str, port: int, sender: str, *, timeout_s: float = SMTP_TIMEOUT_S) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_s = timeout_s

    def send(self, item: OutboxItem) -> None:
        message = build_message(item, self.sender)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            smtp.send_message(message, from_addr=self.sender, to_addrs=[item.recipient])
