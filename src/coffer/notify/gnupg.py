"""GnuPG playing a client: a key made by `gpg --quick-gen-key` in the client's own GnuPG home, and
`gpg --decrypt` of the mail Coffer sent. For the demo and the tests; never used by the coordinator,
which holds public keys only and encrypts with Sequoia (pgp.py).

Every command that needs the secret key starts a `gpg-agent` for that home; `close()` stops it
(`gpgconf --kill all`), so nothing is left running.
"""

from __future__ import annotations

import email
import email.utils
import mailbox
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from types import TracebackType

from coffer.notify.errors import NotifyError

__all__ = ["GnupgHome", "GPG_TIMEOUT_S", "HOME_CHARS_MAX", "MailRead", "read_client_mail"]

GPG_TIMEOUT_S = 60.0


# gpg-agent's sockets live in the home (no /run/user/UID here) and a socket path holds at most 107 characters
HOME_CHARS_MAX = 107 - len("/S.gpg-agent.browser")


class GnupgHome:
    """gpg in one home directory (mode 0700), batch mode, keys without passphrase. A home whose path is too
    long for the agent's sockets is used through a short symlink in the temp directory (removed by close())."""

    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = home
        self._alias: Path | None = None

    def _gnupghome(self) -> str:
        if len(str(self.home.resolve())) <= HOME_CHARS_MAX:
            return str(self.home.resolve())
        if self._alias is None:
            self._alias = Path(tempfile.mkdtemp(prefix="gpg-")) / "home"
            self._alias.symlink_to(self.home.resolve(), target_is_directory=True)
        return str(self._alias)

    def _env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": self._gnupghome()}

    def run(self, *args: str, input_bytes: bytes | None = None) -> bytes:
        result = subprocess.run(["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
                                input=input_bytes, capture_output=True, env=self._env(), timeout=GPG_TIMEOUT_S,
                                check=False)
        if result.returncode != 0:
            raise NotifyError(f"gpg {args[0]} failed: {result.stderr.decode(errors='replace')[-500:]}")
        return result.stdout

    def fingerprint(self, uid: str) -> str:
        out = self.run("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))

    def generate(self, uid: str, algo: str = "future-default", usage: str = "default", expire: str = "1y") -> str:
        """`gpg --quick-gen-key`; returns the new key's fingerprint (lowercase)."""
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

    def close(self) -> None:
        """Stop this home's gpg-agent (and any other GnuPG daemon it started); drop the short alias."""
        subprocess.run(["gpgconf", "--kill", "all"], env=self._env(), capture_output=True, timeout=GPG_TIMEOUT_S,
                       check=False)
        if self._alias is not None:
            self._alias.unlink()
            self._alias.parent.rmdir()
            self._alias = None

    def __enter__(self) -> GnupgHome:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class MailRead:
    """One mail to a client with a GnuPG home: who, the subject, and the text gpg decrypted."""

    recipient: str
    subject: str
    plaintext: str


def _armored_body(message: Message) -> str | None:
    """The OpenPGP part of a PGP/MIME mail (multipart/encrypted), None for a plain mail."""
    if message.get_content_type() != "multipart/encrypted":
        return None
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) != 2 or not isinstance(parts[1], Message):
        raise NotifyError("a multipart/encrypted mail without its two parts")
    payload = parts[1].get_payload()
    return payload if isinstance(payload, str) else None


def _messages(maildir: Path) -> Iterator[Message]:
    box = mailbox.Maildir(str(maildir), create=False)
    for key in sorted(box.keys()):
        yield email.message_from_bytes(box.get_bytes(key))


def read_client_mail(maildir: Path, homes: Mapping[str, GnupgHome]) -> list[MailRead]:
    """Every mail in `maildir` to an address in `homes`, decrypted by that client's gpg; a mail to such a
    client that is not encrypted, or that gpg cannot decrypt, raises NotifyError."""
    read = []
    for message in _messages(maildir):
        recipient = email.utils.parseaddr(str(message.get("To", "")))[1]
        if recipient not in homes:
            continue
        armored = _armored_body(message)
        if armored is None:
            raise NotifyError(f"a mail to {recipient} is not encrypted")
        read.append(MailRead(recipient, str(message.get("Subject", "")), homes[recipient].decrypt(armored)))
    return read
