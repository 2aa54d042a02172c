"""`coffer regtest`: the embedded regtest node with Bitcoin Core's JSON-RPC, bitcoind-like flags."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import typer

from coffer.chain.descriptors import address_to_script
from coffer.chain.errors import DecodeError

__all__ = ["regtest"]


def regtest(
    datadir: Path = typer.Option(..., "--datadir", help="chain data directory (opened, or created when empty)"),
    rpcport: int = typer.Option(18443, "--rpcport", help="JSON-RPC port on 127.0.0.1"),
    rpcuser: str | None = typer.Option(None, "--rpcuser", help="RPC user (default: cookie auth, DATADIR/.cookie)"),
    rpcpassword: str | None = typer.Option(None, "--rpcpassword", help="RPC password (with --rpcuser)"),
    rpcbind: str = typer.Option("127.0.0.1", "--rpcbind", help="loopback address to bind (non-loopback refused)"),
    mine_interval: float = typer.Option(0.0, "--mine-interval", help="mine a block every N seconds (0: on demand)"),
    mine_to: str | None = typer.Option(None, "--mine-to", help="address the timer's blocks pay"),
    core_option: list[str] = typer.Option(  # noqa: B008 - typer's idiom
        [], "--core-option", help="a bitcoind option NAME=VALUE (e.g. datacarriersize=83); repeatable; "
        "policy, RPC and mock-time options are honoured, others logged as ignored"),
) -> None:
    """Run an embedded Bitcoin regtest node judged by libbitcoinkernel, serving Core's JSON-RPC."""
    from coffer.chain.regtest.daemon import open_node_and_server
    from coffer.chain.regtest.node import DEFAULT_PAYOUT_SCRIPT, FutureTip
    from coffer.chain.regtest.options import OptionError, parse_core_options

    payout = DEFAULT_PAYOUT_SCRIPT
    if mine_to is not None:
        try:
            payout = address_to_script(mine_to)
        except DecodeError as exc:
            raise typer.BadParameter(f"--mine-to: {exc}") from exc
    try:
        options = parse_core_options([f"rpcport={rpcport}", *core_option])
        node, server = open_node_and_server(datadir.resolve(), options, host=rpcbind, rpcuser=rpcuser,
                                            rpcpassword=rpcpassword)
    except FutureTip as exc:  # Core prints this one without a caption
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    except (OSError, ValueError, OptionError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if mine_interval > 0:
        node.start_mining(mine_interval, payout)
    done = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stdout.write(f"regtest ready height={node.height} rpc={server.url} datadir={node.datadir}\n")
    sys.stdout.flush()
    while not done.wait(0.2) and not server.stopped.is_set():
        pass
    server.close()
    node.close()
