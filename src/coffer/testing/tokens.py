"""SoftHSM2 tokens for tests: one token directory per process, one token per test."""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from coffer.hsm import SOFTHSM_MODULE, Hsm, init_token, write_config

__all__ = ["TokenHandle", "make_token", "process_softhsm_conf"]

_PROCESS_CONF: list[Path] = []


def process_softhsm_conf() -> Path:
    """This process's SoftHSM2 configuration, set in SOFTHSM2_CONF before the module loads."""
    if not _PROCESS_CONF:
        existing = os.environ.get("SOFTHSM2_CONF")
        if existing and Path(existing).exists():
            _PROCESS_CONF.append(Path(existing))
        else:
            directory = Path(tempfile.mkdtemp(prefix="coffer-softhsm-"))
            conf = write_config(directory)
            os.environ["SOFTHSM2_CONF"] = str(conf)
            _PROCESS_CONF.append(conf)
    return _PROCESS_CONF[0]


@dataclass(frozen=True, slots=True)
class TokenHandle:
    label: str
    pin: str
    so_pin: str
    conf: Path

    def __repr__(self) -> str:
        return f"TokenHandle(label={self.label!r}, pin=<redacted>)"

    def open(self) -> Hsm:
        return Hsm(module=SOFTHSM_MODULE, token_label=self.label, pin=self.pin)


def make_token(label: str | None = None) -> TokenHandle:
    conf = process_softhsm_conf()
    handle = TokenHandle(label or f"t-{secrets.token_hex(6)}", secrets.token_hex(8), secrets.token_hex(8), conf)
    init_token(conf, handle.label, so_pin=handle.so_pin, pin=handle.pin)
    return handle
