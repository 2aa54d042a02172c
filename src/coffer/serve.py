"""`coffer serve`: binds its port before anything slow (a taken port fails at once), opens the
coordinator, builds the app of web/console/serve.py (security centre, operations console, public
proof of reserves, /metrics), then listens and logs "listening on …". Kept outside coffer.web,
whose package imports FastAPI: the heavy imports happen after the port is bound."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final

import typer

from coffer.commandline import HomeOption, home_config
from coffer.errors import CofferError

__all__ = ["serve", "LISTEN_BACKLOG"]

LISTEN_BACKLOG: Final = 512


def serve(home: Path | None = HomeOption,
          host: str | None = typer.Option(None, "--host", help="default: host in the web section of coffer.toml"),
          port: int | None = typer.Option(None, "--port", help="default: port in the web section of coffer.toml"),
          por_dir: Path | None = typer.Option(None, "--por-dir", help="published snapshot directory (default HOME/por)"),
          no_recon: bool = typer.Option(False, "--no-recon", help="do not run the reconciliation scheduler"),
          origin: str | None = typer.Option(None, "--origin", help="the console's public origin for security keys, "
                                            "e.g. https://ops.example (default: http://localhost:PORT on loopback)"),
          ) -> None:
    """Serve the coordinator: security centre, operations console, public proof of reserves, /metrics.

    On loopback, open the console at http://localhost:PORT/console (security keys need a host name)."""
    config = home_config(home)
    host = host or config.web.host
    port = port or config.web.port
    # Bound first (a taken port is a one-line error before anything slow), listening only once the app
    # is built: a client that sees the port open is answered at once.
    listener = _bind(host, port)
    # Heavy (FastAPI, SQLAlchemy, the parts) and only needed once the port is bound.
    import uvicorn

    from coffer.coordinator import Coordinator
    from coffer.log import get_logger
    from coffer.web.console.serve import build_app

    coordinator = Coordinator.open(config.home)
    try:
        coordinator.start_notice_server()
        served = build_app(coordinator, host=host, port=port, por_dir=por_dir, recon=not no_recon, origin=origin)
        get_logger("coffer.serve").info("serve.start", host=host, port=port, home=str(coordinator.home))
        server = uvicorn.Server(uvicorn.Config(served.app, log_level="warning", access_log=False))
        listener.listen(LISTEN_BACKLOG)
        print(f"listening on http://{host}:{listener.getsockname()[1]}", flush=True)
        server.run(sockets=[listener])
    finally:
        coordinator.close()


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to HOST:PORT, not yet listening (a taken port is a one-line error, not a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise CofferError(f"cannot listen on {host}:{port} ({exc.strerror}): stop what uses it, or give "
                          "--port / [web] port another one") from None
    return listener
