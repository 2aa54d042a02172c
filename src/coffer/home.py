"""The data directory: created by `coffer init`, opened by every command.

Layout: coffer.toml, coffer.db (SQLite default), hsm/ (SoftHSM2 conf, tokens, PIN file),
tls/ (local CA and the coordinator's certificate), signers/N/ and cosigners/N/.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from coffer.config import CONFIG_FILE, Config, load_config, render_default_toml
from coffer.db import make_engine, migrate
from coffer.hsm import Hsm, KeyKind, init_token, write_config
from coffer.tls import issue_certificate, make_ca

__all__ = ["init_home", "open_coordinator_hsm", "COORDINATOR_KEK_LABEL", "read_pin", "use_softhsm_conf"]

COORDINATOR_KEK_LABEL = "coffer-kek"


def read_pin(path: Path) -> str:
    return path.read_text().strip()


def _ensure_pin(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return read_pin(path)


def use_softhsm_conf(directory: Path) -> Path:
    """Point this process's SoftHSM2 at `directory` (must happen before the module loads)."""
    conf = directory / "softhsm2.conf"
    if not conf.exists():
        conf = write_config(directory)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def init_home(home: Path) -> Config:
    """Create the data directory (idempotent): config, database schema, HSM token, CA, folders."""
    home.mkdir(parents=True, exist_ok=True)
    config_path = home / CONFIG_FILE
    if not config_path.exists():
        config_path.write_text(render_default_toml())
    config = load_config(home)
    for sub in ("signers", "cosigners", "tls", "mail", "por"):
        (home / sub).mkdir(exist_ok=True)
    engine = make_engine(config.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    hsm_dir = home / "hsm"
    conf = _softhsm_conf(config)
    pin = _ensure_pin(config.path(str(config.get("hsm", "pin_file"))))
    so_pin_path = hsm_dir / "so-pin"
    so_pin = _ensure_pin(so_pin_path)
    label = str(config.get("hsm", "token_label"))
    init_token(conf, label, so_pin=so_pin, pin=pin)
    with open_coordinator_hsm(config) as hsm:
        if not hsm.has_key(COORDINATOR_KEK_LABEL):
            hsm.generate_key(COORDINATOR_KEK_LABEL, KeyKind.AES256)
    make_ca(home / "tls")
    if not (home / "tls" / "coordinator" / "tls.pem").exists():
        issue_certificate(home / "tls", home / "tls" / "coordinator", "coordinator")
    parties = [("signers", int(config.get("cold", "signers"))), ("cosigners", int(config.get("mpc", "cosigners")))]
    for kind, count in parties:
        for number in range(1, count + 1):
            directory = home / kind / str(number)
            if not (directory / "tls" / "tls.pem").exists():
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                issue_certificate(home / "tls", directory / "tls", f"{kind[:-1]}-{number}")
    return config


def _softhsm_conf(config: Config) -> Path:
    """Point this process's SoftHSM2 at the configured file (created with its token directory)."""
    conf = config.path(str(config.get("hsm", "softhsm_conf")))
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        written = write_config(conf.parent)
        if written != conf:
            written.replace(conf)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def open_coordinator_hsm(config: Config) -> Hsm:
    """The coordinator's token, as configured (SoftHSM2 under the data directory by default)."""
    module = str(config.get("hsm", "module"))
    if "softhsm" in module:
        _softhsm_conf(config)
    pin = read_pin(config.path(str(config.get("hsm", "pin_file"))))
    return Hsm(module=module, token_label=str(config.get("hsm", "token_label")), pin=pin)
