"""`coffer cold …` (the coordinator's side) and `coffer signer …` (one signer's side)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import typer
from rich.console import Console

from coffer.commandline import HomeOption, open_home, resolve_home
from coffer.keyholder.errors import check_listen_host
from coffer.keyholder.hardening import CLOCK_SKEW_S_MAX
from coffer.progress import progress

__all__ = ["cold_app", "signer_app"]

cold_app = typer.Typer(no_args_is_help=True, help="Cold multisig custody (coordinator side; holds no key).")
signer_app = typer.Typer(help="One cold signer: serve over mutual TLS, or sign offline on files.")
console = Console()
HOME = HomeOption


def _home(home: Path | None) -> Path:
    return open_home(home)


@cold_app.command("setup")
def setup(home: Path | None = HOME, threshold: int | None = typer.Option(None, help="m (default from config)")) -> None:
    """Run the wallet ceremony with the running signers, then pin the policy in each signer's directory."""
    from coffer.cold.service import signer_directory
    from coffer.coordinator import Coordinator

    coordinator = Coordinator.open(_home(home))
    try:
        now = coordinator.now()
        signer_ids = coordinator.signer_ids()
        with progress("cold wallet ceremony", total=1 + len(signer_ids)) as step:
            coordinator.policy.bootstrap_default(now=now)
            wallet = coordinator.cold.setup(threshold or coordinator.config.cold.threshold, now=now)
            step.advance()
            pins = coordinator.signer_pins()
            for signer_id in signer_ids:
                step.describe(f"pinning signer {signer_id}")
                pins.save(signer_directory(coordinator.home, signer_id))
                step.advance()
        console.print(f"cold wallet {wallet.wallet_id}\n{wallet.descriptor()}")
    finally:
        coordinator.close()


@cold_app.command("bsms")
def bsms(home: Path | None = HOME) -> None:
    """Print the BIP-129 (BSMS 1.0) record of the cold wallet."""
    from coffer.coordinator import Coordinator

    coordinator = Coordinator.open(_home(home))
    try:
        console.print(coordinator.cold.bsms(), end="")
    finally:
        coordinator.close()


@cold_app.command("verify-draw")
def verify_draw_command(batch: str, home: Path | None = HOME) -> None:
    """Recompute every quorum draw of BATCH from its public inputs."""
    from coffer.cold.draw import verify_draw
    from coffer.cold.errors import DrawMismatch
    from coffer.coordinator import Coordinator

    coordinator = Coordinator.open(_home(home))
    try:
        draws = coordinator.cold.draws(batch)
        if not draws:
            console.print(f"[red]no draw recorded for {batch}[/]")
            raise typer.Exit(1)
        for draw in draws:
            try:
                verify_draw(draw)
            except DrawMismatch as exc:
                console.print(f"[red]attempt {draw.attempt}: {exc}[/]")
                raise typer.Exit(1) from None
            typer.echo(json.dumps({**draw.as_dict(), "verified": True}, sort_keys=True))
    finally:
        coordinator.close()


@cold_app.command("export-bundle")
def export_bundle(batch: str, out: Path = typer.Option(..., "--out"), home: Path | None = HOME) -> None:
    """Write the signing bundle of BATCH (PSBT, requests, attestations, draw) for an air-gapped signer."""
    from coffer.coordinator import Coordinator

    coordinator = Coordinator.open(_home(home))
    try:
        bundle = coordinator.cold.prepare_offline(batch, now=coordinator.now())
        out.write_bytes(bundle.to_json())
        console.print(f"nominated signers: {list(bundle.draw.nominated)}")
    finally:
        coordinator.close()


@cold_app.command("import-signed")
def import_signed(batch: str, psbt: list[Path] = typer.Option(..., "--psbt", help="a signed PSBT (repeat)"),
                  home: Path | None = HOME) -> None:
    """Combine the PSBTs signed offline by the nominees; the batch is then ready to broadcast."""
    from coffer.coordinator import Coordinator

    coordinator = Coordinator.open(_home(home))
    try:
        raw = coordinator.cold.submit_signatures(batch, [path.read_bytes() for path in psbt], now=coordinator.now())
        typer.echo(raw.hex())
    finally:
        coordinator.close()


@signer_app.callback(invoke_without_command=True)
def serve(ctx: typer.Context, signer_id: int = typer.Option(..., "--id", help="signer number"),
          home: Path | None = HOME, port: int | None = typer.Option(None, "--port"),
          host: str = typer.Option("127.0.0.1", "--host",
                                   help="the one address to listen on (its certificate must name it)"),
          network: str = typer.Option("regtest", "--network"),
          clock_skew: float = typer.Option(CLOCK_SKEW_S_MAX, "--clock-skew-max-s",
                                           help="refuse to act when the coordinator's clock differs by more"),
          own_dir: Path | None = typer.Option(None, "--dir", help="this signer's own directory (its host); "
                                              "then neither HOME nor its configuration is read")) -> None:
    """Serve signer ID over mutual TLS on HOST (127.0.0.1 unless told; default port: cold.signer_port_base + ID)."""
    from coffer.layout import use_own_directory

    if own_dir is not None:
        use_own_directory(own_dir)
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"signer_id": signer_id, "home": resolve_home(home), "network": network}
        return
    from coffer.cold.service import SignerProcess, serve_signer, signer_tls
    from coffer.config import load_config
    from coffer.keyholder.process import prepare_process, serve_until_stopped
    from coffer.log import configure_logging

    check_listen_host(host)  # before any secret is opened
    configure_logging()
    prepare_process("cold-signer", signer_id)
    resolved = resolve_home(home)  # a key holder never needs the coordinator's home to exist
    process = SignerProcess(resolved, signer_id, network=network)
    listen = port or load_config(resolved).cold.signer_port_base + signer_id
    server = serve_signer(process, host=host, port=listen, tls=signer_tls(resolved, signer_id),
                          clock_skew_s_max=clock_skew)
    console.print(f"signer {signer_id} ready on https://{host}:{listen}")
    serve_until_stopped(server, kind="cold-signer", number=signer_id)


@signer_app.command("sign")
def sign_offline(ctx: typer.Context, bundle: Path = typer.Option(..., "--bundle", help="signing bundle JSON"),
                 psbt_in: Path | None = typer.Option(None, "--in", help="the PSBT (must equal the bundle's)"),
                 out: Path = typer.Option(..., "--out", help="signed PSBT (binary)")) -> None:
    """Air-gapped signing: judge the bundle exactly as online, write this signer's partial signatures."""
    import datetime as dt

    from coffer.cold.bundle import SigningBundle
    from coffer.cold.service import SignerProcess
    from coffer.keyholder.process import prepare_process

    options = ctx.obj
    prepare_process("cold-signer", options["signer_id"])
    process = SignerProcess(options["home"], options["signer_id"], network=options["network"])
    document = SigningBundle.from_json(bundle.read_bytes())
    if psbt_in is not None:
        raw = psbt_in.read_bytes()
        if raw[:5] != b"psbt\xff":
            raw = base64.b64decode(raw.strip(), validate=True)
        if raw != document.psbt:
            raise typer.BadParameter("--in is not the PSBT the bundle carries")
    signed = process.signer.sign(document, dt.datetime.now(dt.UTC))
    out.write_bytes(signed)
    console.print(f"signed by signer {options['signer_id']}: {out}")
