"""`coffer integrations`: API keys of the exchange's systems for the exchange API.

A key's secret is printed once, when it is made or rotated; the database keeps it sealed under
the coordinator's HSM. Every change is an audit event naming the operator.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from coffer.clients.seal import HsmSeal
from coffer.commandline import HomeOption, open_home
from coffer.coordinator import Coordinator
from coffer.integrations.store import IntegrationStore

__all__ = ["integrations_app", "INTEGRATION_SECRETS_KEY_LABEL", "open_integrations"]

INTEGRATION_SECRETS_KEY_LABEL = "coffer-integration-secrets"
integrations_app = typer.Typer(no_args_is_help=True, add_completion=False,
                               help="API keys for the exchange API (HMAC-signed requests).")
console = Console()
ByOption = typer.Option(..., "--by", help="the operator doing this (recorded in the audit chain)")


def open_integrations(coordinator: Coordinator) -> IntegrationStore:
    return IntegrationStore(coordinator.engine, HsmSeal(coordinator.hsm, label=INTEGRATION_SECRETS_KEY_LABEL),
                            coordinator.audit)


def _open(home: Path | None) -> Coordinator:
    return Coordinator.open(open_home(home))


@integrations_app.command("create")
def create(name: str, by: str = ByOption, home: Path | None = HomeOption) -> None:
    """Make a key for integration NAME; its secret is shown once."""
    coordinator = _open(home)
    try:
        key = open_integrations(coordinator).create(name, by=by, now=coordinator.now())
    finally:
        coordinator.close()
    console.print(f"key_id: {key.key_id}\nsecret: {key.secret}\n(the secret is not shown again)")


@integrations_app.command("rotate")
def rotate(key_id: str, by: str = ByOption, grace_s: int = typer.Option(0, "--grace-s", help="old key valid for"),
           home: Path | None = HomeOption) -> None:
    """Replace a key; the old one stops working after --grace-s seconds."""
    coordinator = _open(home)
    try:
        key = open_integrations(coordinator).rotate(key_id, by=by, now=coordinator.now(), grace_s=grace_s)
    finally:
        coordinator.close()
    console.print(f"key_id: {key.key_id}\nsecret: {key.secret}\n(the secret is not shown again)")


@integrations_app.command("revoke")
def revoke(key_id: str, by: str = ByOption, home: Path | None = HomeOption) -> None:
    """Revoke a key at once."""
    coordinator = _open(home)
    try:
        open_integrations(coordinator).revoke(key_id, by=by, now=coordinator.now())
    finally:
        coordinator.close()
    console.print(f"revoked {key_id}")


@integrations_app.command("list")
def list_keys(home: Path | None = HomeOption) -> None:
    """Every key with its state and last use."""
    coordinator = _open(home)
    try:
        keys = open_integrations(coordinator).list()
    finally:
        coordinator.close()
    table = Table("key id", "name", "state", "created by", "expires", "replaced by", "last used (epoch s)")
    for key in keys:
        table.add_row(key.key_id, key.name, key.state, key.created_by, str(key.expires_s or ""),
                      key.replaced_by or "", str(key.last_used_s or "never"))
    console.print(table)
