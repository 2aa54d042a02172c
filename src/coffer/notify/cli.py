"""`coffer tickets ...`: the security team reads and answers secure tickets with its own keys.

The team member's secret key is read from a file on their machine for this one command and is
never sent to or stored in the coordinator's database.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pysequoia as sq
import typer
from rich.console import Console
from rich.table import Table

from coffer.commandline import HomeOption, home_config
from coffer.db import make_engine
from coffer.notify import open_notify
from coffer.notify.errors import NotifyError
from coffer.notify.pgp import decrypt, sequoia_message
from coffer.notify.tickets import utc

__all__ = ["tickets_app"]

tickets_app = typer.Typer(no_args_is_help=True, help="Secure tickets: list, read and answer (security team).")
console = Console()

KeyOption = typer.Option(..., "--key", help="your OpenPGP SECRET key file (stays on this machine)")
PasswordEnvOption = typer.Option(None, "--password-env", help="environment variable holding the key's password")


def _parts(home: Path | None):  # type: ignore[no-untyped-def]
    from coffer.clients import ClientDirectory

    config = home_config(home)
    engine = make_engine(config.database_url)
    directory = ClientDirectory(engine)
    return open_notify(engine, address_of=directory.email, team_address=config.mail.team_address)


def _secret(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) > 1024 * 1024:
        raise NotifyError("secret key file is too large")
    return data


@tickets_app.command("list")
def list_tickets(home: Path | None = HomeOption, status: str | None = typer.Option(None, help="open, answered or closed")) -> None:
    """List tickets (no content: it is encrypted)."""
    parts = _parts(home)
    table = Table(title="secure tickets")
    for column in ("id", "client", "status", "opened", "updated", "messages"):
        table.add_column(column)
    for ticket in parts.tickets.tickets(status=status):
        table.add_row(str(ticket.id), ticket.client_id, ticket.status, utc(ticket.created_at_s),
                      utc(ticket.updated_at_s), str(ticket.messages))
    console.print(table)


@tickets_app.command("show")
def show_ticket(ticket_id: int, key: Path = KeyOption, home: Path | None = HomeOption,
                password_env: str | None = PasswordEnvOption) -> None:
    """Decrypt and print a ticket's messages with your secret key."""
    parts = _parts(home)
    secret = _secret(key)
    password = os.environ.get(password_env) if password_env else None
    ticket = parts.tickets.ticket(ticket_id)
    console.print(f"ticket #{ticket.id} from {ticket.client_id}, {ticket.status}")
    for message in parts.tickets.messages(ticket_id):
        console.rule(f"{message.author} at {utc(message.at_s)}")
        try:
            text = decrypt(message.ciphertext, secret, password=password).decode("utf-8", errors="replace")
        except NotifyError as exc:
            text = f"[cannot decrypt with this key: {exc}]"
        console.print(text, markup=False, highlight=False)


@tickets_app.command("reply")
def reply_ticket(ticket_id: int, key: Path = KeyOption, home: Path | None = HomeOption,
                 message: str | None = typer.Option(None, "--message", help="reply text"),
                 message_file: Path | None = typer.Option(None, "--message-file", help="file with the reply text"),
                 name: str = typer.Option(..., "--as", help="your name in the security team"),
                 password_env: str | None = PasswordEnvOption) -> None:
    """Reply, encrypted to the client's key (and the team's), signed with your key."""
    if (message is None) == (message_file is None):
        raise NotifyError("give exactly one of --message or --message-file")
    text = message if message is not None else message_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    password = os.environ.get(password_env) if password_env else None
    try:
        signer = sq.Tsk.from_bytes(_secret(key)).signer(password)
    except Exception as exc:
        raise NotifyError(f"cannot sign with this key ({sequoia_message(exc)})") from None
    parts = _parts(home)
    message_id = parts.tickets.reply(ticket_id, text, by=name, now=datetime.now(UTC), signer=signer)
    console.print(f"reply {message_id} stored encrypted and mailed to the client")


@tickets_app.command("close")
def close_ticket(ticket_id: int, home: Path | None = HomeOption, name: str = typer.Option(..., "--as")) -> None:
    """Close a ticket."""
    parts = _parts(home)
    parts.tickets.ticket(ticket_id)
    parts.tickets.close(ticket_id, by=f"team:{name}", now=datetime.now(UTC))
    console.print(f"ticket {ticket_id} closed")


@tickets_app.command("team-key-add")
def team_key_add(path: Path, name: str = typer.Option(..., "--name"), home: Path | None = HomeOption,
                 by: str = typer.Option("cli", "--by")) -> None:
    """Register a security-team member's PUBLIC key (tickets are encrypted to every team key)."""
    key = _parts(home).keys.add_team_key(path.read_bytes()[: 1024 * 1024], name=name, by=by, now=datetime.now(UTC))
    console.print(f"team key {key.fingerprint} ({key.name}) added")


@tickets_app.command("team-keys")
def team_keys(home: Path | None = HomeOption) -> None:
    """List the security team's public keys."""
    for key in _parts(home).keys.team_keys():
        console.print(f"{key.fingerprint}  {key.name}")
