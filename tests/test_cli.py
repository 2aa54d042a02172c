"""The `coffer` command as a separate process: init, doctor, version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coffer import __version__


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
    """`coffer init` makes a data directory in which `coffer doctor` finds every required part."""
    home = tmp_path / "home"
    result = _coffer("init", "--home", str(home), env_home=home)
    assert 0 == result.returncode, result.stdout + result.stderr
    for name in ("coffer.toml", "coffer.db", "hsm/softhsm2.conf", "tls/ca.pem", "tls/coordinator/tls.pem"):
        assert (home / name).exists(), name
    assert 0o600 == (home / "hsm" / "pin").stat().st_mode & 0o777
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
    assert "coffer.toml:2" in result.stdout
    assert "Traceback" not in result.stderr
