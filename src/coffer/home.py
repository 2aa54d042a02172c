"""The data directory: created by `coffer init`, opened by every command.

Layout: coffer.toml, coffer.db (SQLite default), hsm/ (SoftHSM2 conf, token, PIN file), tls/ (the
CA's public certificate and the coordinator's own certificate), mail/, por/. Nothing a key holder
keeps secret is here: each signer and co-signer has its own directory outside this one, and the
CA key stays in the ceremony directory beside them (coffer.layout). The home is 0700; the
database, PINs and keys are 0600.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from coffer.config import CONFIG_FILE, Config, load_config, render_default_toml
from coffer.db import make_engine, migrate
from coffer.hsm import Hsm, KeyKind, init_token, write_config
from coffer.layout import certify_keyholder, coordinator_tls, sites

__all__ = ["init_home", "open_coordinator_hsm", "COORDINATOR_KEK_LABEL", "read_pin", "use_softhsm_conf"]

COORDINATOR_KEK_LABEL = "coffer-kek"


def read_pin(path: Path) -> str:
    return path.read_text().strip()


def _ensure_pin(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(16))
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
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    config_path = home / CONFIG_FILE
    if not config_path.exists():
        config_path.write_text(render_default_toml())
    config = load_config(home)
    for sub in ("tls", "mail", "por"):
        (home / sub).mkdir(exist_ok=True, mode=0o700)
    _private_sqlite_file(config)
    engine = make_engine(config.database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    hsm_dir = home / "hsm"
    conf = _softhsm_conf(config)
    pin = _ensure_pin(config.path(config.hsm.pin_file))
    so_pin_path = hsm_dir / "so-pin"
    so_pin = _ensure_pin(so_pin_path)
    label = config.hsm.token_label
    init_token(conf, label, so_pin=so_pin, pin=pin)
    with open_coordinator_hsm(config) as hsm:
        if not hsm.has_key(COORDINATOR_KEK_LABEL):
            hsm.generate_key(COORDINATOR_KEK_LABEL, KeyKind.AES256)
    coordinator_tls(home)
    for site in sites(home, range(1, config.cold.signers + 1), range(1, config.mpc.cosigners + 1)):
        certify_keyholder(home, site)
    return config


def _private_sqlite_file(config: Config) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask: world-readable)."""
    prefix = "sqlite:///"
    if not config.database_url.startswith(prefix):
        return
    path = Path(config.database_url[len(prefix):])
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)


def _softhsm_conf(config: Config) -> Path:
    """Point this process's SoftHSM2 at the configured file (created with its token directory)."""
    conf = config.path(config.hsm.softhsm_conf)
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        written = write_config(conf.parent)
        if written != conf:
            written.replace(conf)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def open_coordinator_hsm(config: Config) -> Hsm:
    """The coordinator's token, as configured (SoftHSM2 under the data directory by default)."""
    module = config.hsm.module
    if "softhsm" in module:
        _softhsm_conf(config)
    pin = read_pin(config.path(config.hsm.pin_file))
    return Hsm(module=module, token_label=config.hsm.token_label, pin=pin)
