"""`coffer ledger`: read-only views of the ledger (balances, a statement, totals) and its check.

It never writes: transfers come from the parts that own them (deposits, withdrawals, fills).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from coffer.commandline import HomeOption, home_config
from coffer.ledger.core import Book
from coffer.ledger.errors import LedgerInconsistent
from coffer.ledger.store import Ledger

__all__ = ["ledger_app"]

ledger_app = typer.Typer(no_args_is_help=True, add_completion=False, help="The client-segregated ledger.")
console = Console()



def _ledger(home: Path | None) -> Ledger:
    from coffer.db import make_engine, migrate

    engine = make_engine(home_config(home).database_url)
    migrate(engine)
    return Ledger(engine)


@ledger_app.command("balances")
def balances(home: Path | None = HomeOption,
             client: str | None = typer.Option(None, "--client", help="only this client's accounts"),
             book: Book | None = typer.Option(None, "--book", help="only this book"),
             asset: str | None = typer.Option(None, "--asset", help="only this asset")) -> None:
    """Balances of the open accounts, in minor units."""
    ledger = _ledger(home)
    table = Table(title="ledger balances")
    table.add_column("account")
    table.add_column("balance", justify="right")
    for key, value in ledger.balances(book=book, asset=asset, client_id=client).items():
        table.add_row(str(key), str(value))
    console.print(table)


@ledger_app.command("statement")
def statement(client: str = typer.Argument(..., help="client id"),
              asset: str = typer.Argument(..., help="asset code, e.g. BTC"),
              home: Path | None = HomeOption) -> None:
    """A client's postings in one asset, with the running balance of each account."""
    ledger = _ledger(home)
    result = ledger.statement(client, asset)
    table = Table(title=f"{client} {asset} (account {result.account_number}): "
                        f"available {result.available}, held {result.held}")
    for column in ("transfer", "at", "kind", "account", "delta", "balance"):
        table.add_column(column)
    for line in result.lines:
        table.add_row(str(line.transfer_id), line.at.isoformat(), str(line.kind), line.account,
                      str(line.delta), str(line.balance_after))
    console.print(table)


@ledger_app.command("totals")
def totals(home: Path | None = HomeOption) -> None:
    """Per asset: client liabilities, company, custody and external totals, and whether they balance."""
    ledger = _ledger(home)
    table = Table(title="ledger totals (minor units)")
    for column in ("asset", "client", "company", "custody", "external", "balanced"):
        table.add_column(column)
    for asset, item in sorted(ledger.totals().items()):
        table.add_row(asset, str(item.client), str(item.company), str(item.custody), str(item.external),
                      "yes" if item.balanced else "[red]NO[/]")
    console.print(table)


@ledger_app.command("check")
def check(home: Path | None = HomeOption) -> None:
    """Re-derive every balance from the postings and re-check every transfer; exit 1 if inconsistent."""
    ledger = _ledger(home)
    try:
        report = ledger.check_consistency()
    except LedgerInconsistent as exc:
        console.print(f"[red]INCONSISTENT:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"consistent: {report.accounts} accounts, {report.transfers} transfers, "
                  f"{report.postings} postings")
