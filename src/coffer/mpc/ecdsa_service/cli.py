"""`coffer ecdsa-cosigner --id N`: one threshold-ECDSA co-signer process."""

from __future__ import annotations

from pathlib import Path

import typer

from coffer.commandline import HomeOption, resolve_home

__all__ = ["ecdsa_cosigner"]


def ecdsa_cosigner(cosigner_id: int = typer.Option(..., "--id", min=1, max=255, help="co-signer number"),
                   home: Path | None = HomeOption,
                   port: int | None = typer.Option(None, "--port", help="TCP port on 127.0.0.1 (default: any free)"),
                   ) -> None:
    """Run one threshold-ECDSA (DKLs23) co-signer in co-signer N's own directory (ecdsa/), mutual TLS
    with the coordinator."""
    from coffer.log import configure_logging
    from coffer.mpc.ecdsa_service.server import run_ecdsa_cosigner

    configure_logging()
    run_ecdsa_cosigner(resolve_home(home), cosigner_id, port)
