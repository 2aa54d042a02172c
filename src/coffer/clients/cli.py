"""`coffer clients add|show`: register a client (password + TOTP) for the security centre."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from coffer.clients.directory import ClientDirectory
from coffer.clients.errors import BadClientData
from coffer.commandline import HomeOption, home_config
from coffer.db import make_engine

__all__ = ["clients_app"]

clients_app = typer.Typer(no_args_is_help=True, help="Client identities for the security centre.")
console = Console()


def _directory(home: Path | None) -> ClientDirectory:

    config = home_config(home)
    return ClientDirectory(make_engine(config.database_url))


@clients_app.command("add")
def add(client_id: str, email: str = typer.Option(..., "--email"), home: Path | None = HomeOption,
        password_env: str = typer.Option("COFFER_CLIENT_PASSWORD", "--password-env",
                                         help="environment variable holding the initial password")) -> None:
    """Register a client; prints the TOTP secret once (for the client's authenticator app)."""
    password = os.environ.get(password_env)
    if not password:
        raise BadClientData(f"set the initial password in ${password_env}")
    enrollment = _directory(home).register(client_id, email, password, now=datetime.now(UTC))
    console.print(f"client {client_id} registered")
    console.print(f"TOTP secret: {enrollment.secret}")
    console.print(f"TOTP URI: {enrollment.provisioning_uri}", soft_wrap=True)


@clients_app.command("show")
def show(client_id: str, home: Path | None = HomeOption) -> None:
    """Show a client's id, mail address and registration time."""
    client = _directory(home).client(client_id)
    console.print(f"{client.client_id} <{client.email}> since {datetime.fromtimestamp(client.created_at_s, UTC):%Y-%m-%d %H:%M} UTC")
