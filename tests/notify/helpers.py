"""Test helpers: gpg plays the client (own temp GNUPGHOME), aiosmtpd plays the mail server."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from coffer.notify.gnupg import GnupgHome
from coffer.testing import free_port

Gpg = GnupgHome  # the client side lives in coffer.notify.gnupg (the demo plays clients with it too)


@dataclass
class MailSink:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[arg-type]
        return "250 OK"


class SmtpServer:
    """A local aiosmtpd server on a fixed port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sink = MailSink()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Message]:
        return self.sink.messages


def encrypted_part(message: Message) -> str:
    """The armored OpenPGP body of a PGP/MIME mail."""
    assert message.get_content_type() == "multipart/encrypted"
    parts = message.get_payload()
    assert isinstance(parts, list)
    payload = parts[1].get_payload()
    assert isinstance(payload, str)
    return payload
