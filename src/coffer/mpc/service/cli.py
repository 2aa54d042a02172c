"""`coffer cosigner --id N` (one co-signer process, FROST and DKLs23) and `coffer mpc ...` (the coordinator's side)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from coffer.keyholder.hardening import CLOCK_SKEW_S_MAX
from coffer.tls import TlsFiles

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from coffer.mpc.service.coordinator import MpcCoordinator

__all__ = ["cosigner", "mpc_app", "open_coordinator"]

mpc_app = typer.Typer(no_args_is_help=True, help="Threshold keys held by the MPC co-signers.")
HomeOption = typer.Option(None, "--home", help="data directory (default ./.coffer, env COFFER_HOME)")


def _home(home: Path | None) -> Path:
    from coffer.config import default_home

    return (home or default_home()).resolve()


def cosigner(cosigner_id: int = typer.Option(..., "--id", min=1, max=255, help="co-signer number"),
             home: Path | None = HomeOption,
             port: int | None = typer.Option(None, "--port", help="TCP port on 127.0.0.1 (default: any free)"),
             engine: list[str] = typer.Option(["frost", "ecdsa"], "--engine",
                                              help="frost | ecdsa (repeatable; default: both on one server)"),
             clock_skew: float = typer.Option(CLOCK_SKEW_S_MAX, "--clock-skew-max-s",
                                              help="refuse to act when the coordinator's clock differs by more"),
             ) -> None:
    """Run co-signer N: FROST and DKLs23 on one server, one token and one history; mutual TLS."""
    from coffer.log import configure_logging
    from coffer.mpc.service.server import ENGINES, run_cosigner

    unknown = sorted(set(engine) - set(ENGINES))
    if unknown or not engine:
        raise typer.BadParameter(f"--engine takes {' | '.join(ENGINES)}, got {unknown}")
    configure_logging()
    run_cosigner(_home(home), cosigner_id, port, engines=tuple(dict.fromkeys(engine)), clock_skew_s_max=clock_skew)


def open_coordinator(home: Path, engine: Engine | None = None) -> MpcCoordinator:
    """The coordinator's `MpcCoordinator` over HOME's database (or `engine`) and the running
    co-signers (their port files in HOME/cosigners/N/port), with the coordinator's certificate."""
    from coffer.config import load_config
    from coffer.db import make_engine
    from coffer.mpc.service.client import CosignerClient
    from coffer.mpc.service.coordinator import MpcCoordinator

    tls = TlsFiles(home / "tls" / "ca.pem", home / "tls" / "coordinator" / "tls.pem",
                   home / "tls" / "coordinator" / "tls.key")
    clients = {}
    for directory in sorted((home / "cosigners").glob("*")):
        port_file = directory / "port"
        if directory.name.isdigit() and port_file.exists():
            clients[int(directory.name)] = CosignerClient(int(directory.name), int(port_file.read_text()), tls)
    return MpcCoordinator(engine or make_engine(load_config(home).database_url), clients)


def _coordinator(home: Path | None) -> MpcCoordinator:
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


@mpc_app.command("provision")
def provision(cosigners: int = typer.Option(5, "--cosigners", "-n", min=1, max=255),
              home: Path | None = HomeOption) -> None:
    """Write every co-signer's pins (attestation key, operators, policy, halt key and URL) from
    this coordinator into HOME/cosigners/N/pins.json; start the co-signers after this."""
    from coffer.coordinator import Coordinator

    resolved = _home(home)
    coordinator = Coordinator.open(resolved)
    try:
        pins = coordinator.signer_pins()
        for cosigner in range(1, cosigners + 1):
            pins.save(resolved / "cosigners" / str(cosigner))
    finally:
        coordinator.close()
    typer.echo(json.dumps({"provisioned": list(range(1, cosigners + 1))}))


@mpc_app.command("rotate")
def rotate(key_id: str = typer.Option(..., "--key", help="the compromised key"),
           new_key_id: str = typer.Option(..., "--new-key"),
           threshold: int = typer.Option(3, "--threshold", "-t"),
           sweep_request: str | None = typer.Option(None, "--sweep-request",
                                                    help="digest of an approved SWEEP to the new key's address"),
           home: Path | None = HomeOption) -> None:
    """Make a fresh key among the non-revoked co-signers (unless it exists) and, given an approved
    SWEEP request to its address, sweep the hot funds to it and retire the old key.

    The sweep is a withdrawal request like any other (`coffer request` / `coffer approve`), so its
    approvals and the HSM attestation are checked by every co-signer before it signs.
    """
    from coffer.mpc.service.errors import UnknownKey
    from coffer.mpc.service.messages import p2tr_address

    resolved = _home(home)
    mpc = _coordinator(home)
    old = mpc.key(key_id)
    try:
        key = mpc.key(new_key_id)
    except UnknownKey:
        key = mpc.dkg(new_key_id, old.suite, threshold, revoked=old.revoked)
    out: dict[str, object] = {"old_key": key_id, "new_key": key.key_id,
                              "group_public_key": key.group_public_key.hex()}
    if key.suite == "taproot":
        out["sweep_to"] = p2tr_address(key.taproot_output_key())
    if sweep_request is not None:
        out["sweep_txid"] = _sweep(resolved, mpc, key_id, sweep_request)
        mpc.retire(key_id)
    typer.echo(json.dumps(out))


def _sweep(home: Path, mpc: MpcCoordinator, key_id: str, request_digest: str) -> str:
    from coffer.coordinator import Coordinator
    from coffer.hot import HotWallet

    coordinator = Coordinator.open(home)
    try:
        now = coordinator.now()
        request = coordinator.policy.request(request_digest)
        signed = coordinator.policy.attest(request_digest, now=now)
        wallet = HotWallet(coordinator.engine, coordinator.bitcoin, coordinator.ledger, mpc, key_id=key_id,
                           network=str(coordinator.config.get("bitcoin", "network")))
        return wallet.pay(request, signed, client_id=None, now=now).txid
    finally:
        coordinator.close()


@mpc_app.command("status")
def status(home: Path | None = HomeOption) -> None:
    """Keys, versions, revocations and which co-signers answer."""
    typer.echo(json.dumps(_coordinator(home).status(), indent=1, sort_keys=True))
