"""`coffer console enrol-sign`: the operator signs the console's enrolment message with their
Ed25519 operator key file (made by `coffer operator keygen`), on their own machine."""

from __future__ import annotations

from pathlib import Path

import typer

from coffer.errors import CofferError

__all__ = ["console_app", "KEY_FILE_BYTES_MAX", "MESSAGE_BYTES_MAX"]

KEY_FILE_BYTES_MAX = 1024
MESSAGE_BYTES_MAX = 1024
console_app = typer.Typer(no_args_is_help=True, help="Operations console helpers (run on the operator's machine).")


@console_app.callback()
def _group() -> None:
    """Operations console helpers (run on the operator's machine)."""


class EnrolInputRefused(CofferError):
    """The key file or the enrolment message is malformed."""


@console_app.command("enrol-sign")
def enrol_sign(key_file: Path = typer.Option(..., "--key-file", help="the operator's Ed25519 key file"),
               message: str = typer.Option(..., "--message", help="the enrolment message shown by the console (hex)"),
               ) -> None:
    """Print the Ed25519 signature (hex) that proves the enrolling operator holds their key."""
    from coffer.policy import OperatorKey
    from coffer.web.console.auth import ENROL_TAG

    if key_file.stat().st_size > KEY_FILE_BYTES_MAX:
        raise EnrolInputRefused(f"{key_file}: not a key file")
    try:
        key = OperatorKey(bytes.fromhex(key_file.read_text(encoding="ascii").strip()))
        data = bytes.fromhex(message.strip())
    except ValueError:
        raise EnrolInputRefused("the key file and the message must be hex") from None
    if len(data) > MESSAGE_BYTES_MAX or not data.startswith(ENROL_TAG):
        raise EnrolInputRefused("this is not a console enrolment message: nothing signed")
    typer.echo(key.sign(data).hex())
