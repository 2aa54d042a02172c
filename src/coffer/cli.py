"""The `coffer` command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from coffer import __version__
from coffer.commandline import EXIT_FAILED, EXIT_USAGE, HomeOption, home_config, one_line, resolve_home
from coffer.errors import CofferError
from coffer.progress import set_quiet

__all__ = ["app", "main", "resolve_home"]

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Coffer: custody and security core. Global flags, anywhere on the line: --debug (show "
                       "the traceback of an error), --quiet (no progress bars).")
console = Console()
errors = Console(stderr=True, soft_wrap=True)
GLOBAL_FLAGS = ("--debug", "--quiet")


@app.command()
def version() -> None:
    """Print Coffer's version."""
    console.print(f"coffer {__version__}")


@app.command()
def init(home: Path | None = HomeOption) -> None:
    """Create the data directory: config, database, HSM token, local CA."""
    from coffer.home import init_home
    from coffer.layout import keyholders_root

    config = init_home(resolve_home(home))
    console.print(f"initialised {config.home} (key holders' directories in {keyholders_root(config.home)})")


@app.command()
def doctor(home: Path | None = HomeOption) -> None:
    """Check each real part: HSM module and token, database, kernel library, chromium, nodes."""
    from coffer.doctor import run_checks

    config = home_config(home)
    checks = run_checks(config)
    table = Table(title="coffer doctor")
    for column in ("check", "ok", "detail"):
        table.add_column(column)
    for check in checks:
        mark = "[green]ok[/]" if check.ok else ("[red]MISSING[/]" if check.required else "[yellow]missing[/]")
        table.add_row(check.name, mark, check.detail)
    console.print(table)
    if any(not check.ok and check.required for check in checks):
        raise typer.Exit(1)


@app.command()
def demo(home: Path = typer.Option(Path(".coffer-demo"), "--home", help="demo site directory (wiped first)"),
         report: Path | None = typer.Option(None, "--report", help="JSON report (default HOME/report.json)"),
         force: bool = typer.Option(False, "--force", help="wipe HOME even if it is not a previous demo site")) -> None:
    """Run the whole life of client funds on one machine and write a JSON report."""
    from coffer.demo import run_demo

    home = home.resolve()
    result = run_demo(home, (report or home / "report.json").resolve(), console, force=force)
    if not result.ok:
        raise typer.Exit(1)


# Sub-commands of the parts: (module, attribute, name). A part registers itself with one line.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("coffer.cold.cli", "cold_app", "cold"),
    ("coffer.cold.cli", "signer_app", "signer"),
    ("coffer.chain.cli", "regtest", "regtest"),
    ("coffer.por.cli", "por", "por"),
    ("coffer.exchange.cli", "app", "exchange-sim"),
    ("coffer.recon.cli", "app", "recon"),
    ("coffer.policy.cli", "policy_app", "policy"),
    ("coffer.policy.cli", "request_app", "request"),
    ("coffer.policy.cli", "approve", "approve"),
    ("coffer.policy.cli", "operator_app", "operator"),
    ("coffer.notify.cli", "tickets_app", "tickets"),
    ("coffer.clients.cli", "clients_app", "clients"),
    ("coffer.mpc.service.cli", "cosigner", "cosigner"),
    ("coffer.mpc.service.cli", "mpc_app", "mpc"),
    ("coffer.keyholder.cli", "gov_app", "gov"),
    ("coffer.ledger.cli", "ledger_app", "ledger"),
    ("coffer.serve", "serve", "serve"),
    ("coffer.web.console.cli", "console_app", "console"),
    ("coffer.integrations.cli", "integrations_app", "integrations"),
]


def _register_subcommands(argv: list[str]) -> None:
    """Import only the part that is invoked (every part for --help): one part's import cost or
    fault never touches another's command."""
    import importlib

    wanted = [entry for entry in SUBCOMMANDS if len(argv) > 1 and entry[2] == argv[1]]
    for module_name, attribute, name in wanted or SUBCOMMANDS:
        module = importlib.import_module(module_name)
        sub = getattr(module, attribute)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
        else:
            app.command(name=name)(sub)


def main(argv: list[str] | None = None) -> None:
    """Run one command. An error is one line on stderr with what to do next (exit 2 for an error
    the operator can fix, 1 for anything unexpected); `--debug` shows its traceback instead."""
    args = list(sys.argv if argv is None else argv)
    debug = "--debug" in args
    quiet = "--quiet" in args
    args = [arg for arg in args if arg not in GLOBAL_FLAGS]
    set_quiet(quiet)
    try:
        _register_subcommands(args)
        app(args=args[1:], prog_name="coffer", standalone_mode=True)
    except CofferError as exc:
        if debug:
            raise
        errors.print(f"error: {one_line(exc)}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # an error nobody planned for: one line, never a traceback unless asked
        if debug:
            raise
        errors.print(f"error: {type(exc).__name__}: {one_line(exc)} (run again with --debug for the traceback)",
                     markup=False, highlight=False)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
