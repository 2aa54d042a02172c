"""A local SMTP server that files every message into a Maildir: the demo's and tests' mail
server (`python -m coffer.testing.smtp_sink --port P --maildir DIR`). Loopback only."""

from __future__ import annotations

import argparse
import mailbox
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MaildirSink", "main"]


class _Handler:
    def __init__(self, maildir: Path) -> None:
        for sub in ("cur", "new", "tmp"):  # an existing empty folder is not yet a Maildir
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(str(maildir), create=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self._lock:
            self._box.add(mailbox.MaildirMessage(envelope.original_content or envelope.content))
        return "250 OK"


class MaildirSink:
    def __init__(self, maildir: Path, *, port: int, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the sink binds to loopback only")
        self.maildir = maildir
        self._controller = Controller(_Handler(maildir), hostname=host, port=port)

    def start(self) -> MaildirSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[bytes]:
        box = mailbox.Maildir(str(self.maildir), create=True)
        return [bytes(message.as_bytes()) for message in box]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args()
    sink = MaildirSink(args.maildir, port=args.port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"smtp sink ready on 127.0.0.1:{args.port} maildir={args.maildir}", flush=True)
    done.wait()
    sink.stop()


if __name__ == "__main__":
    main()
