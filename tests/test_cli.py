"""The `coffer` command as a separate process: init, doctor, version, and an operator's first
hour: every mishap gets a one-line answer that says what to do next, and changes nothing."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from coffer import __version__
from coffer.testing.homes import bare_home
from coffer.testing.processes import free_port


def _coffer(*args: str, env_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if env_home is not None:
        import os

        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        env["COFFER_HOME"] = str(env_home)
    return subprocess.run([sys.executable, "-m", "coffer.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def test_version() -> None:
    """`coffer version` prints the package version."""
    result = _coffer("version")
    assert 0 == result.returncode
    assert __version__ in result.stdout


def test_init_then_doctor_passes(tmp_path: Path) -> None:
    """`coffer init` makes a private data directory (0700; database, PIN and keys 0600) in which `coffer
    doctor` finds every required part; key holders' files and the CA key are outside it."""
    home = tmp_path / "home"
    result = _coffer("init", "--home", str(home), env_home=home)
    assert 0 == result.returncode, result.stdout + result.stderr
    for name in ("coffer.toml", "coffer.db", "hsm/softhsm2.conf", "tls/ca.pem", "tls/coordinator/tls.pem"):
        assert (home / name).exists(), name
    assert 0o700 == home.stat().st_mode & 0o777
    for name in ("coffer.db", "hsm/pin", "hsm/so-pin", "tls/coordinator/tls.key"):
        assert 0o600 == (home / name).stat().st_mode & 0o777, name
    assert [] == sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.name in {"ca.key", "seed.sealed"}
                        or p.parent.name in {"signers", "cosigners"})
    keyholders = tmp_path / "home-keyholders"
    assert (keyholders / "ceremony" / "ca.key").exists() and (keyholders / "signer-5" / "tls" / "tls.key").exists()
    doctor = _coffer("doctor", "--home", str(home), env_home=home)
    assert 0 == doctor.returncode, doctor.stdout + doctor.stderr
    assert "coordinator token" in doctor.stdout
    again = _coffer("init", "--home", str(home), env_home=home)
    assert 0 == again.returncode, again.stdout + again.stderr


def test_doctor_fails_without_init(tmp_path: Path) -> None:
    """Without `coffer init` the coordinator token is missing and doctor exits non-zero."""
    result = _coffer("doctor", "--home", str(tmp_path), env_home=tmp_path)
    assert 0 != result.returncode


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    """A bad coffer.toml makes the command fail with the file, line and key, not a traceback."""
    (tmp_path / "coffer.toml").write_text("[cold]\nthreshold = \"x\"\n")
    result = _coffer("doctor", "--home", str(tmp_path), env_home=tmp_path)
    assert 2 == result.returncode
    assert "coffer.toml:2" in result.stderr
    assert "Traceback" not in result.stderr


MISSING_HOME_COMMANDS = [("ledger", "totals"), ("doctor",), ("recon", "status"), ("policy", "show"),
                         ("clients", "show", "client-1"), ("cold", "bsms"), ("mpc", "status"), ("por", "nonce", "1")]


@pytest.mark.parametrize("command", MISSING_HOME_COMMANDS, ids=[" ".join(c) for c in MISSING_HOME_COMMANDS])
def test_missing_home_is_one_line_and_creates_nothing(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A command other than init, given a home that does not exist, says so in one line (exit 2) and creates nothing."""
    home = tmp_path / "nowhere"
    result = _coffer(*command, "--home", str(home), env_home=home)
    assert (2, False) == (result.returncode, home.exists())
    assert [f"error: no Coffer home at {home}: run `coffer init --home {home}` first, or give --home the right "
            "directory"] == result.stderr.strip().splitlines()


def test_ledger_totals_on_an_empty_directory_makes_no_database(tmp_path: Path) -> None:
    """`coffer ledger totals` on an empty directory refuses in one line instead of creating and migrating a database."""
    result = _coffer("ledger", "totals", "--home", str(tmp_path), env_home=tmp_path)
    assert 2 == result.returncode
    assert [] == list(tmp_path.iterdir())
    assert 1 == len(result.stderr.strip().splitlines())
    assert "is not an initialised Coffer home (no coffer.toml)" in result.stderr


def test_doctor_on_a_wrong_home_creates_nothing(tmp_path: Path) -> None:
    """`coffer doctor` on a directory that is not a home neither creates a database nor calls it ok."""
    (tmp_path / "notes.txt").write_text("not a home")
    result = _coffer("doctor", "--home", str(tmp_path), env_home=tmp_path)
    assert 2 == result.returncode
    assert ["notes.txt"] == sorted(p.name for p in tmp_path.iterdir())
    assert "ok" not in result.stdout


def test_missing_database_is_named(tmp_path: Path) -> None:
    """A home whose SQLite database was removed is refused in one line naming the file, not recreated empty."""
    (tmp_path / "coffer.toml").write_text("")
    result = _coffer("ledger", "totals", "--home", str(tmp_path), env_home=tmp_path)
    assert 2 == result.returncode
    assert f"error: the database {tmp_path / 'coffer.db'} is missing" in result.stderr
    assert not (tmp_path / "coffer.db").exists()


def test_threshold_above_signers_fails_doctor(tmp_path: Path) -> None:
    """`threshold = 9` with 5 signers fails at configuration load, naming file, line and key."""
    (tmp_path / "coffer.toml").write_text("[cold]\nsigners = 5\nthreshold = 9\n")
    result = _coffer("doctor", "--home", str(tmp_path), env_home=tmp_path)
    assert 2 == result.returncode
    assert [f"error: {tmp_path / 'coffer.toml'}:3: cold.threshold: threshold 9 is more than the 5 signers "
            "(cold.signers)"] == result.stderr.strip().splitlines()


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    """An error nobody planned for (the database refuses connections) is one line naming what to do;
    --debug shows the traceback."""
    port = free_port()
    (tmp_path / "coffer.toml").write_text(f'[database]\nurl = "postgresql+psycopg://coffer@127.0.0.1:{port}/coffer"\n')
    result = _coffer("ledger", "totals", "--home", str(tmp_path), env_home=tmp_path)
    assert 1 == result.returncode
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines) and lines[0].startswith("error: OperationalError: ")
    assert lines[0].endswith("(run again with --debug for the traceback)")
    debug = _coffer("ledger", "totals", "--home", str(tmp_path), "--debug", env_home=tmp_path)
    assert 1 == debug.returncode and "Traceback (most recent call last)" in debug.stderr


def test_demo_refuses_a_directory_that_is_not_a_demo_home(tmp_path: Path) -> None:
    """`coffer demo` will not wipe a directory without its demo marker unless told --force."""
    (tmp_path / "precious.txt").write_text("keep me")
    result = _coffer("demo", "--home", str(tmp_path), env_home=tmp_path / "elsewhere")
    assert 2 == result.returncode
    assert [f"error: {tmp_path} is not a demo home (no .coffer-demo in it) and would be wiped; give an empty "
            "directory, or --force to wipe it"] == result.stderr.strip().splitlines()
    assert "keep me" == (tmp_path / "precious.txt").read_text()


def test_demo_never_wipes_the_default_home_even_forced(tmp_path: Path) -> None:
    """`coffer demo --force` on the default production home ($COFFER_HOME) refuses and leaves it as it is."""
    (tmp_path / "coffer.toml").write_text("")
    result = _coffer("demo", "--home", str(tmp_path), "--force", env_home=tmp_path)
    assert 2 == result.returncode
    assert f"error: {tmp_path} is the default home" in result.stderr
    assert (tmp_path / "coffer.toml").exists()


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    """`coffer serve` on a port another process holds says so in one line (exit 2) before opening anything."""
    home = bare_home(tmp_path / "home")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _coffer("serve", "--home", str(home), "--port", str(port), env_home=home)
    assert 2 == result.returncode
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines) and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port} ")
    assert "listening on" not in result.stdout
