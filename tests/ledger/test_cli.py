"""`coffer ledger`: balances, statement, totals and check, on a data directory's SQLite database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from coffer.db import make_engine
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.ledger.cli import ledger_app
from coffer.testing.homes import bare_home
from tests.ledger.conftest import T0


def _home(tmp_path: Path) -> Path:
    bare_home(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'coffer.db'}")
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=T0)
    ledger.open_client("alice", ["BTC"], at=T0)
    ledger.apply(Transfer("d1", Kind.DEPOSIT, (debit(AccountKey.custody("hot", "BTC"), 1234),
                                               credit(AccountKey.available("alice", "BTC"), 1234)), T0))
    engine.dispose()
    return tmp_path


def test_cli_shows_balances_statement_and_totals(tmp_path: Path) -> None:
    """The read-only commands print the client's balance, statement lines and balanced totals."""
    home = _home(tmp_path)
    runner = CliRunner()
    balances = runner.invoke(ledger_app, ["balances", "--home", str(home), "--client", "alice"])
    assert 0 == balances.exit_code, balances.output
    assert "client:alice:BTC:available" in balances.output and "1234" in balances.output
    statement = runner.invoke(ledger_app, ["statement", "alice", "BTC", "--home", str(home)])
    assert 0 == statement.exit_code, statement.output
    assert "deposit" in statement.output
    totals = runner.invoke(ledger_app, ["totals", "--home", str(home)])
    assert 0 == totals.exit_code and "yes" in totals.output


def test_cli_check_fails_on_tampering(tmp_path: Path) -> None:
    """`coffer ledger check` exits 0 on a sound ledger and 1 once a balance is edited behind its back."""
    home = _home(tmp_path)
    runner = CliRunner()
    assert 0 == runner.invoke(ledger_app, ["check", "--home", str(home)]).exit_code
    engine = make_engine(f"sqlite:///{home / 'coffer.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_accounts SET balance = '99' WHERE account_key = 'custody:hot:BTC'"))
    engine.dispose()
    result = runner.invoke(ledger_app, ["check", "--home", str(home)])
    assert 1 == result.exit_code
    assert "INCONSISTENT" in result.output
