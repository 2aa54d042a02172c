"""`coffer exchange-sim`: run the trading simulator as its own process, with its HTTP API."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Deterministic perpetuals trading simulator (demo and tests).")


@app.command("run")
def run(
    seed: int = typer.Option(1, help="seed: the same seed gives the same fills"),
    accounts: int = typer.Option(10, help="number of trading accounts"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8090, help="HTTP port"),
    tick_ms: int = typer.Option(0, help="match trades every tick_ms milliseconds (0: only on POST /step)"),
    trades_per_tick: int = typer.Option(5, help="trades matched per tick"),
    halt_url: str = typer.Option("", help="coordinator's halt notice URL; empty: no halt gate"),
    halt_public_key: str = typer.Option("", help="hex Ed25519 public key that signs halt notices (pinned)"),
    halt_max_age_s: float = typer.Option(5.0, help="refuse to match when the newest notice is older"),
) -> None:
    """Serve the simulator; with --halt-url it stops matching while halted or cut off (fail closed)."""
    from collections.abc import Callable

    from coffer.exchange.http import SimulatorServer
    from coffer.exchange.simulator import ExchangeSimulator
    from coffer.log import configure_logging

    configure_logging()

    gate: Callable[[], None] | None = None
    if halt_url:
        from coffer.recon.notice import HaltWatcher, http_notice_fetcher

        if not halt_public_key:
            raise typer.BadParameter("--halt-public-key is required with --halt-url")
        watcher = HaltWatcher(bytes.fromhex(halt_public_key), max_age_s=halt_max_age_s,
                              fetch=http_notice_fetcher(halt_url))
        watcher.start(interval_s=min(1.0, halt_max_age_s / 4))
        gate = watcher.require_clear
    simulator = ExchangeSimulator(seed=seed, accounts=accounts, halt_gate=gate)
    server = SimulatorServer(simulator, host=host, port=port)
    typer.echo(f"exchange-sim listening on {server.url} seed={seed} accounts={accounts}", err=True)
    server.serve_forever(tick_s=tick_ms / 1000, trades_per_tick=trades_per_tick)
