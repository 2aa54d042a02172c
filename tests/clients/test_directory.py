"""Client identities: registration rules, password + TOTP sign-in, replay refusal, the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import typer
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from coffer.clients import BadClientData, ClientDirectory, ClientExists, SignInRefused, TwoFactorRefused
from coffer.clients.cli import clients_app
from coffer.db import make_engine, migrate
from coffer.testing.homes import bare_home

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def _cheap(engine: Engine) -> ClientDirectory:
    return ClientDirectory(engine, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def directory(tmp_path: Path) -> ClientDirectory:
    """On SQLite; the replay test also runs on PostgreSQL."""
    engine = make_engine(f"sqlite:///{tmp_path / 'clients.db'}")
    migrate(engine)
    return _cheap(engine)


def test_sign_in_with_password_and_totp(engine: Engine) -> None:
    """The right password and current code sign in; the same code cannot be replayed."""
    directory = _cheap(engine)
    secret = directory.register("alice", "alice@example.com", PASSWORD, now=NOW).secret
    code = pyotp.TOTP(secret).at(NOW.timestamp())
    assert "alice" == directory.authenticate("alice", PASSWORD, code, now=NOW).client_id
    with pytest.raises(SignInRefused):
        directory.authenticate("alice", PASSWORD, code, now=NOW)


@pytest.mark.parametrize(("client_id", "password", "code_offset_s"), [
    ("alice", "wrong password!!", 30), ("nobody", PASSWORD, 30), ("alice", PASSWORD, 120),
])
def test_sign_in_refused(directory: ClientDirectory, client_id: str, password: str, code_offset_s: int) -> None:
    """A wrong password, unknown client or out-of-window code gets the same refusal."""
    secret = directory.register("alice", "alice@example.com", PASSWORD, now=NOW).secret
    code = pyotp.TOTP(secret).at(NOW.timestamp() + code_offset_s)
    with pytest.raises(SignInRefused, match="wrong client id, password or two-factor code"):
        directory.authenticate(client_id, password, code, now=NOW + timedelta(seconds=30 if code_offset_s == 30 else 0))


@pytest.mark.parametrize(("client_id", "email", "password"), [
    ("Alice", "alice@example.com", PASSWORD), ("alice", "not-an-address", PASSWORD), ("alice", "a@example.com", "short"),
])
def test_registration_rules(directory: ClientDirectory, client_id: str, email: str, password: str) -> None:
    """Bad ids, addresses and short passwords are refused."""
    with pytest.raises(BadClientData):
        directory.register(client_id, email, password, now=NOW)


def test_duplicate_and_code_format(directory: ClientDirectory) -> None:
    """A client id is registered once; a non-numeric code is refused before any lookup."""
    directory.register("alice", "alice@example.com", PASSWORD, now=NOW)
    with pytest.raises(ClientExists):
        directory.register("alice", "alice@example.com", PASSWORD, now=NOW)
    with pytest.raises(TwoFactorRefused):
        directory.verify_totp("alice", "12ab56", now=NOW)


def test_enrollment_repr_redacted(directory: ClientDirectory) -> None:
    """The TOTP secret does not appear in the enrollment's repr."""
    enrollment = directory.register("alice", "alice@example.com", PASSWORD, now=NOW)
    assert enrollment.secret not in repr(enrollment)


def test_cli_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`coffer clients add` registers a client and prints the TOTP secret once."""
    home = bare_home(tmp_path / "home")
    monkeypatch.setenv("COFFER_CLIENT_PASSWORD", PASSWORD)
    root = typer.Typer()
    root.add_typer(clients_app, name="clients")
    result = CliRunner().invoke(root, ["clients", "add", "carol", "--email", "carol@example.com", "--home", str(home)],
                                catch_exceptions=False)
    assert 0 == result.exit_code, result.output
    assert "TOTP secret:" in result.output
    shown = CliRunner().invoke(root, ["clients", "show", "carol", "--home", str(home)], catch_exceptions=False)
    assert "carol@example.com" in shown.output


def test_totp_secret_sealed_in_hsm(engine: Engine, token) -> None:  # type: ignore[no-untyped-def]
    """With an HSM seal the stored TOTP secret is ciphertext bound to its client; sign-in and renewal still work."""
    import sqlalchemy as sa

    from coffer.clients import ClientError, HsmSeal

    seal = HsmSeal(token.open())
    directory = ClientDirectory(engine, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1), seal=seal)
    secret = directory.register("alice", "alice@example.com", PASSWORD, now=NOW).secret
    directory.register("bob", "bob@example.com", PASSWORD, now=NOW)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT client_id, totp_secret FROM clients_clients")).all())
    assert secret not in str(stored) and stored["alice"].startswith("sealed:v1:")
    directory.authenticate("alice", PASSWORD, pyotp.TOTP(secret).at(NOW.timestamp()), now=NOW)
    later = NOW + timedelta(seconds=30)
    new_secret = directory.begin_totp_change("alice", pyotp.TOTP(secret).at(later.timestamp()), now=later).secret
    latest = later + timedelta(seconds=30)
    directory.confirm_totp_change("alice", pyotp.TOTP(new_secret).at(latest.timestamp()), now=latest)
    with engine.begin() as conn:  # move alice's sealed secret into bob's row: it must not open there
        conn.execute(sa.text("UPDATE clients_clients SET totp_secret = :s WHERE client_id = 'bob'"),
                     {"s": stored["alice"]})
    with pytest.raises(ClientError):
        directory.verify_totp("bob", pyotp.TOTP(secret).at(latest.timestamp() + 30), now=latest + timedelta(seconds=30))
