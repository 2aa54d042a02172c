"""SoftHSM2: the default PKCS#11 module, one token directory per data directory.

SOFTHSM2_CONF must point at the configuration before the module is loaded in a process, so
each process that uses a token (coordinator, each signer, each co-signer) sets it first.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from coffer.hsm.errors import HsmError, HsmUnavailable

__all__ = ["SOFTHSM_MODULE", "write_config", "init_token", "token_exists", "softhsm_util"]

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_UTIL_TIMEOUT_S = 30


def softhsm_util() -> str:
    for candidate in ("/usr/bin/softhsm2-util", "/usr/local/bin/softhsm2-util"):
        if Path(candidate).exists():
            return candidate
    raise HsmUnavailable("softhsm2-util not found: install the softhsm2 package")


def write_config(directory: Path) -> Path:
    """Write softhsm2.conf with its token directory inside `directory`; return its path."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    conf.chmod(0o600)
    return conf


def token_exists(conf: Path, label: str) -> bool:
    result = subprocess.run(
        [softhsm_util(), "--show-slots"], env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True, text=True, timeout=_UTIL_TIMEOUT_S, check=False,
    )
    return any(line.strip() == f"Label:            {label}" or line.split(":", 1)[-1].strip() == label
               for line in result.stdout.splitlines() if line.strip().startswith("Label:"))


def init_token(conf: Path, label: str, *, so_pin: str, pin: str) -> None:
    """Initialise a new token `label` in the directory of `conf`."""
    if token_exists(conf, label):
        return
    result = subprocess.run(
        [softhsm_util(), "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True, text=True, timeout=_UTIL_TIMEOUT_S, check=False,
    )
    if result.returncode != 0:
        raise HsmError(f"softhsm2-util could not initialise token {label!r}: {result.stderr.strip()[:200]}")
