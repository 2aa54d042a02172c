"""Each key holder is its own host: its files live outside the coordinator's home, owned by its own
Unix user, and the coordinator's user cannot read them (tried for real with runuser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.config import load_config
from coffer.layout import (
    COORDINATOR_USER,
    KeyholderKind,
    LayoutError,
    ceremony_directory,
    hand_over,
    keyholder_home,
    keyholder_of_user,
    keyholders_root,
    sites,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                                reason="making Unix users and switching to them needs root and runuser")


@pytest.fixture
def site() -> Iterator[Path]:
    """A site directory every user can traverse (pytest's own temp root is 0700), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="coffer-layout-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _init_home(home: Path) -> None:
    """`coffer init` in a child (SoftHSM2 is pointed at the home's tokens per process)."""
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    subprocess.run([sys.executable, "-m", "coffer.cli", "init", "--home", str(home)], check=True, timeout=300,
                   env=env, capture_output=True)


def _as(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *argv], capture_output=True, text=True, timeout=60,
                          check=False)


def test_keyholders_live_beside_the_home_by_default(tmp_path: Path) -> None:
    """With no setting, key holders' directories are HOME-keyholders/KIND-N, outside HOME."""
    home = tmp_path / "home"
    home.mkdir()
    assert tmp_path / "home-keyholders" / "signer-2" == keyholder_home(home, KeyholderKind.SIGNER, 2)
    assert tmp_path / "home-keyholders" / "ceremony" == ceremony_directory(home)


def test_keyholders_inside_the_home_are_refused(tmp_path: Path) -> None:
    """A configuration that puts the key holders inside the coordinator's home is refused by name."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "coffer.toml").write_text(f'[keyholders]\ndir = "{home / "keyholders"}"\n')
    with pytest.raises(LayoutError, match="outside the coordinator's home"):
        keyholders_root(home)


def test_user_names_map_to_keyholders() -> None:
    """`coffer-signer-3` is signer 3, `coffer-cosigner-12` co-signer 12; the coordinator's user is no key holder."""
    assert (KeyholderKind.SIGNER, 3) == keyholder_of_user("coffer-signer-3")
    assert (KeyholderKind.COSIGNER, 12) == keyholder_of_user("coffer-cosigner-12")
    assert keyholder_of_user(COORDINATOR_USER) is None
    assert keyholder_of_user("coffer-signer-x") is None


@needs_root
def test_coordinator_user_cannot_read_any_keyholder_file(site: Path) -> None:
    """The demo's layout: each key holder's directory is 0700 and its own user's; the coordinator's user
    reads its own home but no key holder's key, token PIN or directory, nor the CA key."""
    home = site / "coordinator"
    (site / "coordinator").mkdir(mode=0o700)
    (home / "coffer.toml").write_text(f'[keyholders]\ndir = "{site}"\n')
    _init_home(home)
    config = load_config(home)
    holders = sites(home, range(1, config.cold.signers + 1), range(1, config.mpc.cosigners + 1))
    for holder in holders:
        (holder.home / "hsm").mkdir(mode=0o700, exist_ok=True)
        (holder.home / "hsm" / "pin").write_text("1234")  # what the key holder's process makes on first start
        hand_over(holder.home, holder.user)
    hand_over(home, COORDINATOR_USER)
    assert all(site == holder.home.parent and home not in holder.home.parents for holder in holders)
    for holder in holders:
        status = holder.home.stat()
        assert (0o700, holder.user) == (status.st_mode & 0o777, _user_name(status.st_uid))
        assert 0o600 == (holder.home / "tls" / "tls.key").stat().st_mode & 0o777
    assert _as(COORDINATOR_USER, "cat", str(home / "coffer.toml")).returncode == 0  # it can read its own home
    for holder in holders:
        for target in (holder.home / "tls" / "tls.key", holder.home / "hsm" / "pin"):
            refused = _as(COORDINATOR_USER, "cat", str(target))
            assert (1, True) == (refused.returncode, "Permission denied" in refused.stderr), refused.stderr
        assert 0 != _as(COORDINATOR_USER, "ls", str(holder.home)).returncode
    refused = _as(COORDINATOR_USER, "cat", str(ceremony_directory(home) / "ca.key"))
    assert "Permission denied" in refused.stderr
    assert not list(home.rglob("ca.key"))


@needs_root
def test_keyholder_reads_its_own_files_and_no_other(site: Path) -> None:
    """Signer 1's user reads its own TLS key but neither signer 2's nor the coordinator's home."""
    home = site / "coordinator"
    home.mkdir(mode=0o700)
    (home / "coffer.toml").write_text(f'[keyholders]\ndir = "{site}"\n[cold]\nsigners = 2\nthreshold = 2\n'
                                      "[mpc]\ncosigners = 2\nfrost_threshold = 2\necdsa_parties = 2\n")
    _init_home(home)
    first, second = sites(home, (1, 2), ())
    for holder in (first, second):
        hand_over(holder.home, holder.user)
    hand_over(home, COORDINATOR_USER)
    assert 0 == _as(first.user, "cat", str(first.home / "tls" / "tls.key")).returncode
    assert "Permission denied" in _as(first.user, "cat", str(second.home / "tls" / "tls.key")).stderr
    assert "Permission denied" in _as(first.user, "cat", str(home / "coffer.toml")).stderr


def _user_name(uid: int) -> str:
    import pwd

    return pwd.getpwuid(uid).pw_name
