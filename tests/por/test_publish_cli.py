"""`coffer por publish` from the ledger, then the `coffer-verify` console script on the result."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, Book, Kind, Ledger, Transfer, credit, debit
from coffer.por.adapters import floor_equity, liabilities_from_ledger
from coffer.por.cli import por
from coffer.por.nonces import show_account_nonce
from tests.por.conftest import Published

AT = datetime(2026, 11, 27, tzinfo=UTC)


def _ledger_with_clients(home: Path) -> tuple[Ledger, dict[int, int]]:
    engine = make_engine(f"sqlite:///{home / 'coffer.db'}")
    migrate(engine)
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=AT)
    balances = {}
    for index, amount in enumerate([150_000, 0, 2_500_000, 99]):
        account = ledger.open_client(f"client-{index}", ["BTC"], at=AT, account_number=5000 + index)
        if amount:
            ledger.apply(Transfer(f"dep-{index}", Kind.DEPOSIT, (
                debit(AccountKey.custody("cold", "BTC"), amount),
                credit(AccountKey(Book.CLIENT, "available", "BTC", f"client-{index}"), amount)), AT))
        balances[account.account_number] = amount
    return ledger, balances


def test_liabilities_from_ledger_floor_equity(tmp_path: Path) -> None:
    """Ledger balances become liabilities by account number; negative equity is floored at zero."""
    ledger, balances = _ledger_with_clients(tmp_path)
    assert sorted(balances.items()) == [(item.account_number, item.amount) for item in
                                        liabilities_from_ledger(ledger, "BTC")]
    adjusted = floor_equity([(1, 100), (2, 100)], {1: -500, 2: 50})
    assert [0, 150] == [item.amount for item in adjusted]


def test_publish_command_and_console_verifier(published: Published, tmp_path: Path) -> None:
    """The CLI publishes from the ledger; the stand-alone console script verifies it and a client's proof."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "coffer.toml").write_text("")
    _, balances = _ledger_with_clients(home)
    key_file = tmp_path / "group.key"
    key_file.write_text((bytes([5]) * 32).hex())  # the fixture's statement key
    out, proofs = tmp_path / "snap", tmp_path / "proofs"
    result = CliRunner().invoke(por, ["publish", "--home", str(home), "--out", str(out), "--reserves",
                                      str(published.directory / "reserves-BTC.json"), "--signing-key", str(key_file),
                                      "--log", str(tmp_path / "log.jsonl"), "--proofs-dir", str(proofs)])
    assert 0 == result.exit_code, result.output
    assert "solvent=True" in result.output
    snapshot = json.loads((out / "snapshot.json").read_text())
    assert sum(balances.values()) == snapshot["assets"]["BTC"]["liabilities_total"]
    assert (out / "reserves-BTC.yaml").read_text() == (published.directory / "reserves-BTC.yaml").read_text()
    engine = make_engine(f"sqlite:///{home / 'coffer.db'}")
    nonce = show_account_nonce(engine, 5002)
    script = Path(sys.executable).parent / "coffer-verify"
    run = subprocess.run([str(script), str(out), "--group-key", published.group_key.hex(), "--proof",
                          str(proofs / "BTC" / "5002.bin"), "--account-nonce", nonce, "--balance", "2500000"],
                         capture_output=True, text=True, timeout=60)
    assert 0 == run.returncode, run.stderr
    assert "hold 2500000" in run.stdout


VERIFIER_MODULES = ("coffer", "coffer.errors", "coffer.invariant", "coffer.por", "coffer.por.verify", "coffer.btc",
                    "coffer.btc.errors", "coffer.btc.hashes", "coffer.btc.reader", "coffer.btc.schnorr",
                    "coffer.btc.script", "coffer.btc.bip322")


def _coffer_modules_loaded_by(module: str) -> list[str]:
    code = f"import sys, {module}; print(' '.join(sorted(m for m in sys.modules if m.startswith('coffer'))))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 0 == run.returncode, run.stderr
    return run.stdout.split()


def test_verifier_imports_nothing_else_from_coffer() -> None:
    """The stand-alone verifier loads no Coffer module but the Bitcoin helpers it needs, and no heavy package."""
    code = ("import sys, coffer.por.verify; "
            "print([m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'yaml', 'sqlalchemy', 'typer', 'pbk', 'structlog', 'pkcs11', 'fastapi')])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "[]" == run.stdout.strip(), run.stderr
    assert [] == sorted(set(_coffer_modules_loaded_by("coffer.por.verify")) - set(VERIFIER_MODULES))


@pytest.mark.parametrize("module", ["coffer.cold.signer", "coffer.mpc.service.cosigner"])
def test_key_holders_do_not_load_the_public_verifier(module: str) -> None:
    """Code that signers trust makes its proofs of control with coffer.btc, never loading the public verifier."""
    loaded = _coffer_modules_loaded_by(module)
    assert "coffer.btc.bip322_sign" in loaded
    assert "coffer.por.verify" not in loaded


def test_por_is_registered_in_coffer_command() -> None:
    """`coffer por` is a sub-command of the coffer console script."""
    script = Path(sys.executable).parent / "coffer"
    run = subprocess.run([str(script), "por", "--help"], capture_output=True, text=True, timeout=60)
    assert 0 == run.returncode, run.stderr
    assert "publish" in run.stdout
