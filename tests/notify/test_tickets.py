"""Secure tickets: stored only as ciphertext; the team reads and answers them with its own keys."""

from __future__ import annotations

from pathlib import Path

import pysequoia as sq
import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from coffer.clients import ClientDirectory
from coffer.db import make_engine
from coffer.notify import Attachment, NoActiveKey, NotifyParts, TicketRefused, open_notify
from coffer.notify.cli import tickets_app
from coffer.notify.pgp import decrypt
from coffer.notify.tickets import ATTACHMENT_BYTES_MAX, ATTACHMENTS_MAX
from coffer.testing.homes import bare_home
from tests.notify.conftest import NOW, activate
from tests.notify.helpers import Gpg

ALICE = "Alice <alice@example.com>"
SECRET_TEXT = "my withdrawal to bc1-suspicious was not me"


def _all_text(parts: NotifyParts) -> str:
    with parts.keys.engine.connect() as conn:
        rows = [*conn.execute(sa.text("SELECT * FROM notify_tickets")), *conn.execute(sa.text("SELECT * FROM notify_ticket_messages")),
                *conn.execute(sa.text("SELECT * FROM notify_outbox"))]
    return "\n".join(str(tuple(row)) for row in rows)


def test_ticket_stored_encrypted_and_team_decrypts(notify_any: NotifyParts, client_gpg: Gpg, team_key: sq.Tsk) -> None:
    """Subject, text and attachment are never stored in clear; the team key decrypts all of them."""
    activate(notify_any, client_gpg, "alice", ALICE)
    attachment = Attachment("evidence.txt", "text/plain", b"attachment-secret-content")
    ticket_id = notify_any.tickets.open("alice", "Account takeover?", SECRET_TEXT, [attachment], now=NOW)
    stored = _all_text(notify_any)
    for secret in ("Account takeover?", SECRET_TEXT, "attachment-secret-content"):
        assert secret not in stored
    message = notify_any.tickets.messages(ticket_id)[0]
    plaintext = decrypt(message.ciphertext, bytes(team_key)).decode()
    assert SECRET_TEXT in plaintext and "Account takeover?" in plaintext and "evidence.txt" in plaintext


def test_reply_encrypted_to_client(notify_any: NotifyParts, client_gpg: Gpg, team_key: sq.Tsk) -> None:
    """A reply is stored encrypted to the client (gpg decrypts it) and mailed encrypted."""
    activate(notify_any, client_gpg, "alice", ALICE)
    ticket_id = notify_any.tickets.open("alice", "Help", "please", now=NOW)
    notify_any.tickets.reply(ticket_id, "We froze the address.", by="carol", now=NOW, signer=team_key.signer())
    reply = notify_any.tickets.messages(ticket_id)[-1]
    assert "We froze the address." in client_gpg.decrypt(reply.ciphertext)
    mail = notify_any.outbox.items(client_id="alice")[-1]
    assert "ticket_reply" == mail.event and mail.encrypted
    assert "We froze the address." in client_gpg.decrypt(mail.body)
    assert "We froze the address." not in _all_text(notify_any)
    assert "answered" == notify_any.tickets.ticket(ticket_id).status


def test_ticket_needs_client_key(notify: NotifyParts) -> None:
    """Without an active key a ticket is refused (a reply could not be encrypted to the client)."""
    with pytest.raises(NoActiveKey):
        notify.tickets.open("bob", "Help", "please", now=NOW)


@pytest.mark.parametrize("attachments", [
    [Attachment("big.bin", "application/octet-stream", b"x" * (ATTACHMENT_BYTES_MAX + 1))],
    [Attachment(f"f{i}.txt", "text/plain", b"x") for i in range(ATTACHMENTS_MAX + 1)],
    [Attachment("../etc/passwd", "text/plain", b"x")],
])
def test_attachment_limits(notify: NotifyParts, client_gpg: Gpg, attachments: list[Attachment]) -> None:
    """Too large, too many or badly named attachments are refused and nothing is stored."""
    activate(notify, client_gpg, "alice", ALICE)
    with pytest.raises(TicketRefused):
        notify.tickets.open("alice", "Help", "please", attachments, now=NOW)
    assert [] == notify.tickets.tickets()


def test_client_sees_only_own_tickets(notify: NotifyParts, client_gpg: Gpg) -> None:
    """Another client's ticket does not exist for bob."""
    activate(notify, client_gpg, "alice", ALICE)
    ticket_id = notify.tickets.open("alice", "Help", "please", now=NOW)
    with pytest.raises(TicketRefused):
        notify.tickets.messages(ticket_id, client_id="bob")
    assert [] == notify.tickets.tickets(client_id="bob")


def test_cli_list_show_reply(tmp_path: Path, client_gpg: Gpg, team_key: sq.Tsk) -> None:
    """`coffer tickets list|show|reply` with the team's secret key file, on a data directory."""
    home = bare_home(tmp_path / "home")
    engine = make_engine(f"sqlite:///{home / 'coffer.db'}")
    from argon2 import PasswordHasher
    ClientDirectory(engine, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)).register(
        "alice", "alice@example.com", "correct horse battery", now=NOW)
    parts = open_notify(engine, address_of=ClientDirectory(engine).email)
    activate(parts, client_gpg, "alice", ALICE)
    public = tmp_path / "team.asc"
    public.write_text(str(team_key.extract_certificate()))
    secret = tmp_path / "team-secret.asc"
    secret.write_text(str(team_key))
    root = typer.Typer()
    root.add_typer(tickets_app, name="tickets")

    def run(*args: str) -> str:
        result = CliRunner().invoke(root, ["tickets", *args, "--home", str(home)], catch_exceptions=False)
        assert 0 == result.exit_code, result.output
        return result.output

    run("team-key-add", str(public), "--name", "team")
    ticket_id = parts.tickets.open("alice", "Lost phone", SECRET_TEXT, now=NOW)
    assert "alice" in run("list")
    assert SECRET_TEXT in run("show", str(ticket_id), "--key", str(secret))
    run("reply", str(ticket_id), "--key", str(secret), "--as", "carol", "--message", "Sessions revoked.")
    assert "Sessions revoked." in client_gpg.decrypt(parts.tickets.messages(ticket_id)[-1].ciphertext)
    run("close", str(ticket_id), "--as", "carol")
    assert "closed" == parts.tickets.ticket(ticket_id).status
