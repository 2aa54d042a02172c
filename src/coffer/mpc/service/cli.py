"""`coffer cosigner --id N` (one co-signer process, FROST and DKLs23) and `coffer mpc ...` (the coordinator's side)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from coffer.commandline import HomeOption, open_home, resolve_home
from coffer.keyholder.errors import check_listen_host
from coffer.keyholder.hardening import CLOCK_SKEW_S_MAX
from coffer.layout import KeyholderKind, coordinator_tls, keyholder_directories, use_own_directory
from coffer.progress import progress

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from coffer.keyholder.lifecycle import Approver
    from coffer.mpc.service.coordinator import MpcCoordinator

__all__ = ["cosigner", "mpc_app", "open_coordinator"]

T = TypeVar("T")
mpc_app = typer.Typer(no_args_is_help=True, help="Threshold keys held by the MPC co-signers.")


def _home(home: Path | None) -> Path:
    return open_home(home)


def cosigner(cosigner_id: int = typer.Option(..., "--id", min=1, max=255, help="co-signer number"),
             home: Path | None = HomeOption,
             host: str = typer.Option("127.0.0.1", "--host",
                                      help="the one address to listen on (its certificate must name it)"),
             port: int | None = typer.Option(None, "--port", help="TCP port (default: any free)"),
             engine: list[str] = typer.Option(["frost", "ecdsa"], "--engine",
                                              help="frost | ecdsa (repeatable; default: both on one server)"),
             clock_skew: float = typer.Option(CLOCK_SKEW_S_MAX, "--clock-skew-max-s",
                                              help="refuse to act when the coordinator's clock differs by more"),
             own_dir: Path | None = typer.Option(None, "--dir", help="this co-signer's own directory (its host); "
                                                 "then the coordinator's home is never read"),
             ) -> None:
    """Run co-signer N: FROST and DKLs23 on one server, one token and one history; mutual TLS."""
    from coffer.log import configure_logging
    from coffer.mpc.service.server import ENGINES, run_cosigner

    check_listen_host(host)  # before any secret is opened
    unknown = sorted(set(engine) - set(ENGINES))
    if unknown or not engine:
        raise typer.BadParameter(f"--engine takes {' | '.join(ENGINES)}, got {unknown}")
    configure_logging()
    if own_dir is not None:
        use_own_directory(own_dir)
    run_cosigner(resolve_home(home), cosigner_id, port, engines=tuple(dict.fromkeys(engine)), clock_skew_s_max=clock_skew,
                 host=host)


ActionOption = typer.Option(None, "--action", help="governance action file: written as a proposal on the "
                                                  "first run, carried to the co-signers once signed")
DomainOption = typer.Option("coffer", "--domain", help="the governance domain the key holders pinned")


def open_coordinator(home: Path, engine: Engine | None = None, approve: Approver | None = None) -> MpcCoordinator:
    """The coordinator's `MpcCoordinator` over HOME's database (or `engine`) and the running
    co-signers (the port files of the co-signer directories), with the coordinator's certificate."""
    from coffer.config import load_config
    from coffer.db import make_engine
    from coffer.mpc.service.client import CosignerClient
    from coffer.mpc.service.coordinator import MpcCoordinator

    tls = coordinator_tls(home)
    clients = {}
    for cosigner, directory in keyholder_directories(home, KeyholderKind.COSIGNER):
        port_file = directory / "port"
        if port_file.exists():
            clients[cosigner] = CosignerClient(cosigner, int(port_file.read_text()), tls)
    return MpcCoordinator(engine or make_engine(load_config(home).database_url), clients, approve=approve)


def _coordinator(home: Path | None, action: Path | None = None, domain: str = "coffer") -> MpcCoordinator:
    from coffer.keyholder.administrators import FileApprover

    return open_coordinator(_home(home), approve=None if action is None else FileApprover(action, domain))


def _governed(run: Callable[[], T]) -> T:
    """A proposal written for the administrators is news, not a failure: say so, exit 3."""
    from coffer.keyholder.administrators import ProposalWritten

    try:
        return run()
    except ProposalWritten as written:
        typer.echo(str(written), err=True)
        raise typer.Exit(3) from None


@mpc_app.command("dkg")
def dkg(key_id: str = typer.Option(..., "--key", help="key id, e.g. hot-btc or publication"),
        suite: str = typer.Option("taproot", "--suite", help="taproot | ed25519"),
        threshold: int = typer.Option(3, "--threshold", "-t"),
        action: Path | None = ActionOption, domain: str = DomainOption,
        home: Path | None = HomeOption) -> None:
    """Generate a threshold key among the running co-signers (no dealer), as the administrators signed."""
    mpc = _coordinator(home, action, domain)
    with progress(f"distributed key generation of {key_id} ({suite}, threshold {threshold})"):
        key = _governed(lambda: mpc.dkg(key_id, suite, threshold))
    typer.echo(json.dumps({"key_id": key.key_id, "group_public_key": key.group_public_key.hex(),
                           "threshold": key.threshold, "n": len(key.members)}))


@mpc_app.command("refresh")
def refresh(key_id: str = typer.Option(..., "--key"), action: Path | None = ActionOption,
            domain: str = DomainOption, home: Path | None = HomeOption) -> None:
    """New shares of the same key; old shares deleted after a test signature."""
    mpc = _coordinator(home, action, domain)
    key = _governed(lambda: mpc.refresh(key_id))
    typer.echo(json.dumps({"key_id": key.key_id, "version": key.version}))


@mpc_app.command("reshare")
def reshare(key_id: str = typer.Option(..., "--key"),
            revoke: list[int] = typer.Option([], "--revoke", help="co-signer id to exclude (repeatable)"),
            threshold: int | None = typer.Option(None, "--threshold", "-t"),
            action: Path | None = ActionOption, domain: str = DomainOption,
            home: Path | None = HomeOption) -> None:
    """Re-share the key to the co-signers minus the revoked ones (possibly a new threshold)."""
    mpc = _coordinator(home, action, domain)
    key = _governed(lambda: mpc.reshare(key_id, revoke=revoke, new_threshold=threshold))
    typer.echo(json.dumps({"key_id": key.key_id, "version": key.version, "revoked": list(key.revoked)}))


@mpc_app.command("provision")
def provision(cosigners: int = typer.Option(5, "--cosigners", "-n", min=1, max=255),
              home: Path | None = HomeOption) -> None:
    """Write every co-signer's pins (attestation key, operators, policy, halt key and URL) from
    this coordinator into HOME/cosigners/N/pins.json; start the co-signers after this."""
    from coffer.coordinator import Coordinator
    from coffer.mpc.service.server import cosigner_dir

    resolved = _home(home)
    coordinator = Coordinator.open(resolved)
    try:
        pins = coordinator.signer_pins()
        for cosigner in range(1, cosigners + 1):
            pins.save(cosigner_dir(resolved, cosigner))
    finally:
        coordinator.close()
    typer.echo(json.dumps({"provisioned": list(range(1, cosigners + 1))}))


@mpc_app.command("rotate")
def rotate(key_id: str = typer.Option(..., "--key", help="the compromised key"),
           new_key_id: str = typer.Option(..., "--new-key"),
           threshold: int = typer.Option(3, "--threshold", "-t"),
           sweep_request: str | None = typer.Option(None, "--sweep-request",
                                                    help="digest of an approved SWEEP to the new key's address"),
           action: Path | None = ActionOption, domain: str = DomainOption,
           home: Path | None = HomeOption) -> None:
    """Make a fresh key among the non-revoked co-signers (unless it exists) and, given an approved
    SWEEP request to its address, sweep the hot funds to it and retire the old key.

    The sweep is a withdrawal request like any other (`coffer request` / `coffer approve`), so its
    approvals and the HSM attestation are checked by every co-signer before it signs.
    """
    from coffer.mpc.service.errors import UnknownKey
    from coffer.mpc.service.messages import p2tr_address

    resolved = _home(home)
    mpc = _coordinator(home, action, domain)
    old = mpc.key(key_id)
    try:
        key = mpc.key(new_key_id)
    except UnknownKey:
        key = _governed(lambda: mpc.dkg(new_key_id, old.suite, threshold, revoked=old.revoked))
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
                           network=coordinator.config.bitcoin.network)
        return wallet.pay(request, signed, client_id=None, now=now).txid
    finally:
        coordinator.close()


@mpc_app.command("status")
def status(home: Path | None = HomeOption) -> None:
    """Keys, versions, revocations and which co-signers answer."""
    typer.echo(json.dumps(_coordinator(home).status(), indent=1, sort_keys=True))
