"""`coffer cosigner --id N` (one co-signer process) and `coffer mpc ...` (the coordinator's side)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from coffer.tls import TlsFiles

__all__ = ["cosigner", "mpc_app", "open_coordinator"]

mpc_app = typer.Typer(no_args_is_help=True, help="Threshold keys held by the MPC co-signers.")
HomeOption = typer.Option(None, "--home", help="data directory (default ./.coffer, env COFFER_HOME)")


def _home(home: Path | None) -> Path:
    from coffer.config import default_home

    return (home or default_home()).resolve()


def cosigner(cosigner_id: int = typer.Option(..., "--id", min=1, max=255, help="co-signer number"),
             home: Path | None = HomeOption,
             port: int | None = typer.Option(None, "--port", help="TCP port on 127.0.0.1 (default: any free)"),
             ) -> None:
    """Run one MPC co-signer: its own directory, token and store; mutual TLS with the coordinator."""
    from coffer.log import configure_logging
    from coffer.mpc.service.server import run_cosigner

    configure_logging()
    run_cosigner(_home(home), cosigner_id, port)


def open_coordinator(home: Path) -> object:
    """The coordinator's `MpcCoordinator` over HOME's database and the co-signers' port files."""
    from coffer.config import load_config
    from coffer.db import make_engine
    from coffer.mpc.service.client import CosignerClient
    from coffer.mpc.service.coordinator import MpcCoordinator

    config = load_config(home)
    tls = TlsFiles(home / "tls" / "ca.pem", home / "tls" / "coordinator" / "tls.pem",
                   home / "tls" / "coordinator" / "tls.key")
    clients = {}
    for directory in sorted((home / "cosigners").glob("*")):
        port_file = directory / "port"
        if directory.name.isdigit() and port_file.exists():
            clients[int(directory.name)] = CosignerClient(int(directory.name), int(port_file.read_text()), tls)
    return MpcCoordinator(make_engine(config.database_url), clients)


def _coordinator(home: Path | None):  # type: ignore[no-untyped-def]
    return open_coordinator(_home(home))


@mpc_app.command("dkg")
def dkg(key_id: str = typer.Option(..., "--key", help="key id, e.g. hot-btc or publication"),
        suite: str = typer.Option("taproot", "--suite", help="taproot | ed25519"),
        threshold: int = typer.Option(3, "--threshold", "-t"),
        home: Path | None = HomeOption) -> None:
    """Generate a threshold key among the running co-signers (no dealer)."""
    mpc = _coordinator(home)
    key = mpc.dkg(key_id, suite, threshold)
    typer.echo(json.dumps({"key_id": key.key_id, "group_public_key": key.group_public_key.hex(),
                           "threshold": key.threshold, "n": len(key.members)}))


@mpc_app.command("refresh")
def refresh(key_id: str = typer.Option(..., "--key"), home: Path | None = HomeOption) -> None:
    """New shares of the same key; old shares deleted after a test signature."""
    key = _coordinator(home).refresh(key_id)
    typer.echo(json.dumps({"key_id": key.key_id, "version": key.version}))


@mpc_app.command("reshare")
def reshare(key_id: str = typer.Option(..., "--key"),
            revoke: list[int] = typer.Option([], "--revoke", help="co-signer id to exclude (repeatable)"),
            threshold: int | None = typer.Option(None, "--threshold", "-t"),
            home: Path | None = HomeOption) -> None:
    """Re-share the key to the co-signers minus the revoked ones (possibly a new threshold)."""
    key = _coordinator(home).reshare(key_id, revoke=revoke, new_threshold=threshold)
    typer.echo(json.dumps({"key_id": key.key_id, "version": key.version, "revoked": list(key.revoked)}))


@mpc_app.command("rotate")
def rotate(key_id: str = typer.Option(..., "--key", help="the compromised key"),
           new_key_id: str = typer.Option(..., "--new-key"),
           threshold: int = typer.Option(3, "--threshold", "-t"),
           home: Path | None = HomeOption) -> None:
    """Make a fresh key among the non-revoked co-signers; print the sweep the funds now need.

    The sweep itself is a hot-wallet SWEEP request (`HotWallet.pay`) with its approvals, like any
    other movement of funds.
    """
    mpc = _coordinator(home)
    old = mpc.key(key_id)
    key = mpc.dkg(new_key_id, old.suite, threshold, revoked=old.revoked)
    from coffer.mpc.service.messages import p2tr_address

    out = {"old_key": key_id, "new_key": key.key_id, "group_public_key": key.group_public_key.hex()}
    if key.suite == "taproot":
        out["sweep_to"] = p2tr_address(key.taproot_output_key())
    typer.echo(json.dumps(out))


@mpc_app.command("status")
def status(home: Path | None = HomeOption) -> None:
    """Keys, versions, revocations and which co-signers answer."""
    typer.echo(json.dumps(_coordinator(home).status(), indent=1, sort_keys=True))
