"""Test helpers: gpg plays the client (own temp GNUPGHOME), aiosmtpd plays the mail server."""

from __future__ import annotations

import email
import os
import subprocess
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from coffer.testing import free_port


class Gpg:
    """gpg in its own home directory, used only to play clients."""

    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = home

    def run(self, *args: str, input_bytes: bytes | None = None) -> bytes:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        result = subprocess.run(["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
                                input=input_bytes, capture_output=True, env=env, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"gpg {args[0]} failed: {result.stderr.decode(errors='replace')[-500:]}")
        return result.stdout

    def fingerprint(self, uid: str) -> str:
        out = self.run("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))

    def generate(self, uid: str, algo: str = "future-default", usage: str = "default", expire: str = "1y") -> str:
        """Generate a key; returns its fingerprint (lowercase)."""
        self.run("--quick-gen-key", uid, algo, usage, expire)
        return self.fingerprint(uid).lower()

    def add_subkey(self, uid: str, algo: str, usage: str, expire: str = "1y") -> None:
        self.run("--quick-add-key", self.fingerprint(uid), algo, usage, expire)

    def export(self, uid: str) -> bytes:
        return self.run("--armor", "--export", uid)

    def export_secret(self, uid: str) -> bytes:
        return self.run("--armor", "--export-secret-keys", uid)

    def revoke(self, uid: str) -> None:
        path = self.home / "openpgp-revocs.d" / f"{self.fingerprint(uid)}.rev"
        text = path.read_text().replace(":-----BEGIN", "-----BEGIN")
        self.run("--import", input_bytes=text.encode())

    def decrypt(self, armored: str | bytes) -> str:
        data = armored.encode() if isinstance(armored, str) else armored
        return self.run("--decrypt", input_bytes=data).decode()


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
