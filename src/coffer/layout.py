"""Where each party keeps its files: every key holder is its own host.

The coordinator's data directory (HOME) holds nothing a key holder keeps secret. Each key holder
(cold signer N, co-signer N) has a directory of its own OUTSIDE HOME — its HSM token, PIN files,
TLS key, database and pins — owned by its own Unix user with mode 0700 where the site is
provisioned with users (`coffer demo` as root does it). The local certificate authority's key lives
in the ceremony directory, beside the key holders and never in HOME: the ceremony issues every
certificate from it and the coordinator only ever holds the CA's public certificate.

The key-holder directories are in `[keyholders] dir` of HOME's coffer.toml; empty means
`HOME-keyholders` beside HOME. A key-holder process started with `--dir` never reads the
coordinator's home (it cannot, where each party is its own Unix user).

This module must never place a key holder's file under HOME.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from coffer.config import load_config
from coffer.errors import CofferError
from coffer.tls import TlsFiles, issue_certificate, make_ca

__all__ = ["KeyholderKind", "KeyholderSite", "LayoutError", "keyholders_root", "keyholder_home",
           "ceremony_directory", "coordinator_tls", "keyholder_tls", "certify_keyholder", "provision_user",
           "own_directory", "unix_user_name", "use_own_directory", "KEYHOLDER_DIR_ENV", "sites", "keyholder_directories", "keyholder_of_user", "hand_over", "reachable_by_others",
           "COORDINATOR_USER", "KEYHOLDERS_SUFFIX", "CEREMONY_DIR"]

KEYHOLDERS_SUFFIX: Final = "-keyholders"
CEREMONY_DIR: Final = "ceremony"
USER_PREFIX: Final = "coffer-"
COORDINATOR_USER: Final = "coffer-coordinator"
KEYHOLDER_DIR_ENV: Final = "COFFER_KEYHOLDER_DIR"
PRIVATE_DIR_MODE: Final = 0o700


class LayoutError(CofferError):
    """A party's directory is missing, misplaced or cannot be provisioned."""


class KeyholderKind(StrEnum):
    SIGNER = "signer"
    COSIGNER = "cosigner"


@dataclass(frozen=True, slots=True)
class KeyholderSite:
    """One key holder: what it is, its number and its own directory."""

    kind: KeyholderKind
    number: int
    home: Path

    @property
    def name(self) -> str:
        return f"{self.kind.value}-{self.number}"

    @property
    def user(self) -> str:
        return unix_user_name(self.kind, self.number)

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "id": self.number, "home": str(self.home)}


def unix_user_name(kind: KeyholderKind, number: int) -> str:
    return f"{USER_PREFIX}{kind.value}-{number}"


def keyholder_of_user(name: str) -> tuple[KeyholderKind, int] | None:
    """The key holder a Unix user name stands for (`coffer-signer-3`), or None."""
    for kind in KeyholderKind:
        prefix = f"{USER_PREFIX}{kind.value}-"
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return kind, int(name[len(prefix):])
    return None


def keyholders_root(home: Path) -> Path:
    """The directory holding every key holder's own directory: `[keyholders] dir` of HOME's
    configuration, else HOME-keyholders beside HOME. Never HOME itself nor a directory inside it."""
    configured = load_config(home).keyholders.dir
    root = home.resolve().with_name(home.resolve().name + KEYHOLDERS_SUFFIX) if not configured else Path(configured)
    resolved = root.resolve()
    if resolved == home.resolve() or home.resolve() in resolved.parents:
        raise LayoutError(f"key holders must live outside the coordinator's home, not in {resolved}")
    return resolved


def keyholder_home(home: Path, kind: KeyholderKind, number: int) -> Path:
    """Key holder KIND-NUMBER's own directory. Inside a key-holder process started with its own
    directory (`--dir`, or COFFER_KEYHOLDER_DIR), that directory: the process never reads HOME."""
    own = os.environ.get(KEYHOLDER_DIR_ENV)
    if own:
        return Path(own).resolve()
    return keyholders_root(home) / f"{kind.value}-{number}"


def use_own_directory(directory: Path) -> Path:
    """In a key-holder process: resolve every key-holder path to DIRECTORY (see keyholder_home)."""
    resolved = directory.resolve()
    os.environ[KEYHOLDER_DIR_ENV] = str(resolved)
    return resolved


def keyholder_directories(home: Path, kind: KeyholderKind) -> list[tuple[int, Path]]:
    """(number, directory) of each key holder of KIND whose directory exists, by number."""
    found = []
    for directory in keyholders_root(home).glob(f"{kind.value}-*"):
        suffix = directory.name.removeprefix(f"{kind.value}-")
        if suffix.isdigit() and directory.is_dir():
            found.append((int(suffix), directory))
    return sorted(found)


def ceremony_directory(home: Path) -> Path:
    """Where the CA key lives: beside the key holders, never in the coordinator's home."""
    return keyholders_root(home) / CEREMONY_DIR


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def coordinator_tls(home: Path) -> TlsFiles:
    """The coordinator's certificate in HOME/tls (issued by the ceremony's CA on first use); only
    the CA's public certificate is copied into HOME."""
    directory = home / "tls" / "coordinator"
    files = TlsFiles(directory / "ca.pem", directory / "tls.pem", directory / "tls.key")
    if files.cert.exists() and files.ca_cert.exists():
        return files
    ceremony = _private_dir(ceremony_directory(home))
    make_ca(ceremony)
    issued = issue_certificate(ceremony, directory, "coordinator")
    shutil.copyfile(issued.ca_cert, home / "tls" / "ca.pem")
    return issued


def keyholder_tls(directory: Path) -> TlsFiles:
    """A key holder's TLS files, all inside its own directory."""
    tls = directory / "tls"
    return TlsFiles(tls / "ca.pem", tls / "tls.pem", tls / "tls.key")


def certify_keyholder(home: Path, site: KeyholderSite) -> TlsFiles:
    """Ceremony: the key holder's directory and its certificate (CN `signer-N` / `cosigner-N`)."""
    files = keyholder_tls(site.home)
    if files.cert.exists() and files.ca_cert.exists():
        return files
    _private_dir(site.home)
    ceremony = _private_dir(ceremony_directory(home))
    make_ca(ceremony)
    return issue_certificate(ceremony, site.home / "tls", site.name)


def _ids(name: str, database: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid if database == "passwd" else grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def provision_user(name: str) -> tuple[int, int]:
    """A system user and group of that name (created once; idempotent); returns (uid, gid)."""
    if _ids(name, "passwd") is None:
        completed = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                    "--shell", "/usr/sbin/nologin", name],
                                   capture_output=True, text=True, check=False, timeout=60)
        if completed.returncode not in (0, 9) or _ids(name, "passwd") is None:  # 9: exists (a race)
            raise LayoutError(f"could not create Unix user {name}: {completed.stderr.strip()[:200]}")
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def own_directory(path: Path, uid: int, gid: int, *, mode: int = PRIVATE_DIR_MODE) -> None:
    """Give a whole directory tree to one user: directories `mode`, files 0600 (0700 if executable)."""
    for root, directories, files in os.walk(path):
        for name in (*directories, *files):
            child = Path(root) / name
            if child.is_symlink():
                continue
            os.chown(child, uid, gid)
            if child.is_dir():
                child.chmod(mode)
            else:
                child.chmod(0o700 if child.stat().st_mode & 0o100 else 0o600)
    os.chown(path, uid, gid)
    path.chmod(mode)


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach PATH (every ancestor searchable by others):
    only then can each party run as its own user in a directory under it."""
    for directory in (path.resolve(), *path.resolve().parents):
        if directory.exists() and not directory.stat().st_mode & 0o001:
            return False
    return True


def hand_over(directory: Path, user: str) -> tuple[int, int]:
    """Give DIRECTORY (a key holder's, or the coordinator's home) to USER, made if need be; returns (uid, gid)."""
    uid, gid = provision_user(user)
    own_directory(directory, uid, gid)
    return uid, gid


def sites(home: Path, signers: Iterable[int], cosigners: Iterable[int]) -> list[KeyholderSite]:
    """Every key holder of HOME, signers first."""
    return ([KeyholderSite(KeyholderKind.SIGNER, n, keyholder_home(home, KeyholderKind.SIGNER, n)) for n in signers]
            + [KeyholderSite(KeyholderKind.COSIGNER, n, keyholder_home(home, KeyholderKind.COSIGNER, n))
               for n in cosigners])
