"""Configuration: a data directory holding coffer.toml, the database, the HSM tokens and the
per-signer / per-co-signer directories.

Every setting has a documented default (`SETTINGS`), may be set in `coffer.toml` under its
section, and may be overridden by the environment variable `COFFER_<SECTION>_<KEY>`. A bad file
gets a `ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coffer.errors import ConfigError

__all__ = ["Setting", "SETTINGS", "Config", "load_config", "default_home", "render_default_toml",
           "CONFIG_FILE"]

CONFIG_FILE = "coffer.toml"
CONFIG_BYTES_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class Setting:
    default: object
    doc: str


# section -> key -> Setting. The type of each setting is the type of its default.
SETTINGS: dict[str, dict[str, Setting]] = {
    "database": {
        "url": Setting("", "SQLAlchemy URL; empty means the SQLite file coffer.db in the data directory"),
    },
    "hsm": {
        "module": Setting("/usr/lib/softhsm/libsofthsm2.so", "path of the PKCS#11 module"),
        "token_label": Setting("coffer-coordinator", "label of the coordinator's token"),
        "pin_file": Setting("hsm/pin", "file holding the token user PIN, relative to the data directory"),
        "softhsm_conf": Setting("hsm/softhsm2.conf", "SoftHSM2 configuration (when the module is SoftHSM2)"),
    },
    "bitcoin": {
        "backend": Setting("embedded", "embedded (regtest in-process) or rpc (Bitcoin Core JSON-RPC)"),
        "network": Setting("regtest", "regtest, testnet, signet or main"),
        "rpc_url": Setting("http://127.0.0.1:18443", "Bitcoin Core JSON-RPC URL when backend = rpc"),
        "rpc_cookie_file": Setting("", "Bitcoin Core cookie file when backend = rpc"),
        "confirmations": Setting(3, "confirmations before a deposit is credited"),
    },
    "ethereum": {
        "backend": Setting("embedded", "embedded (py-evm) or rpc (any JSON-RPC node)"),
        "rpc_url": Setting("http://127.0.0.1:8545", "JSON-RPC URL when backend = rpc"),
        "confirmations": Setting(3, "confirmations before a deposit is credited"),
    },
    "cold": {
        "signers": Setting(5, "number of cold multisig signers (n)"),
        "threshold": Setting(3, "signatures required (m)"),
        "batch_max": Setting(1000, "withdrawals per batch at most"),
        "batch_interval_s": Setting(60, "seconds between batch seals"),
        "signer_port_base": Setting(18600, "signer N listens on 127.0.0.1:(base + N)"),
    },
    "mpc": {
        "cosigners": Setting(5, "number of MPC co-signers"),
        "frost_threshold": Setting(3, "FROST threshold (t of cosigners)"),
        "ecdsa_parties": Setting(3, "co-signers holding the ECDSA key"),
        "ecdsa_threshold": Setting(2, "threshold ECDSA t"),
    },
    "recon": {
        "positions_interval_s": Setting(15, "seconds between position and margin checks"),
        "onchain_interval_s": Setting(600, "seconds between on-chain balance checks"),
        "notice_key_label": Setting("coffer-halt-notice", "HSM label of the Ed25519 key that signs halt notices"),
        "errors_before_halt": Setting(3, "consecutive checks that cannot run before the exchange halts"),
    },
    "mail": {
        "smtp_host": Setting("127.0.0.1", "SMTP server host"),
        "smtp_port": Setting(8025, "SMTP server port"),
        "sender": Setting("security@coffer.invalid", "From address of every mail"),
        "team_address": Setting("security-team@coffer.invalid", "address of the security team (halt/resume, tickets)"),
        "smtp_timeout_s": Setting(10, "seconds before an SMTP connection attempt gives up (the outbox retries)"),
    },
    "web": {
        "host": Setting("127.0.0.1", "address the coordinator's web server binds to"),
        "port": Setting(8080, "port of the coordinator's web server"),
        "notice_port": Setting(8081, "port of the halt-notice endpoint signers and co-signers poll"),
    },
    "halt": {
        "officer_quorum": Setting(2, "security-officer signatures needed to resume"),
        "notice_max_age_s": Setting(30, "a signer refuses when its newest halt notice is older than this"),
    },
    "policy": {
        "admin_quorum": Setting(2, "policy admins (other than the proposer) who must sign a new policy set"),
        "attestation_ttl_s": Setting(900, "seconds an HSM-attested decision stays valid for signers"),
        "attestation_key_label": Setting("coffer-decision-attestation", "label of the HSM attestation key"),
    },
}


def default_home() -> Path:
    return Path(os.environ.get("COFFER_HOME", ".coffer"))


@dataclass(frozen=True, slots=True)
class Config:
    """Resolved settings of one data directory."""

    home: Path
    values: Mapping[str, Mapping[str, Any]]

    def get(self, section: str, key: str) -> Any:
        try:
            return self.values[section][key]
        except KeyError:
            raise ConfigError("no such setting", key=f"{section}.{key}") from None

    @property
    def database_url(self) -> str:
        url = str(self.get("database", "url"))
        return url or f"sqlite:///{self.home / 'coffer.db'}"

    def path(self, relative: str) -> Path:
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.home / candidate


def _line_of(text: str, section: str, key: str | None) -> int | None:
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line.strip("[]").strip()
            if key is None and current == section:
                return number
            continue
        if current == section and key is not None and line.split("=", 1)[0].strip() == key:
            return number
    return None


def _coerce(value: object, setting: Setting) -> object:
    expected = type(setting.default)
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if not isinstance(value, expected):
        raise TypeError(f"expected {expected.__name__}, got {type(value).__name__}")
    return value


def _from_env(section: str, key: str, setting: Setting, environ: Mapping[str, str]) -> object | None:
    name = f"COFFER_{section.upper()}_{key.upper()}"
    raw = environ.get(name)
    if raw is None:
        return None
    if isinstance(setting.default, int):
        try:
            return _coerce(int(raw, 10), setting)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), path=f"${name}", key=f"{section}.{key}") from None
    return raw


def load_config(home: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read `home/coffer.toml` (optional), check it, and apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = home / CONFIG_FILE
    text = ""
    data: dict[str, Any] = {}
    if path.exists():
        if path.stat().st_size > CONFIG_BYTES_MAX:
            raise ConfigError("file too large", path=str(path))
        text = path.read_text(encoding="utf-8", errors="strict")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            if line is None:
                found = re.search(r"at line (\d+)", str(exc))
                line = int(found.group(1)) if found else None
            raise ConfigError(f"not valid TOML: {exc}", path=str(path), line=line) from None
    values: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if section not in SETTINGS:
            raise ConfigError("unknown section", path=str(path), line=_line_of(text, section, None), key=section)
        if not isinstance(table, dict):
            raise ConfigError("must be a table", path=str(path), key=section)
        for key, value in table.items():
            setting = SETTINGS[section].get(key)
            where = {"path": str(path), "line": _line_of(text, section, key), "key": f"{section}.{key}"}
            if setting is None:
                raise ConfigError("unknown setting", **where)  # type: ignore[arg-type]
            try:
                values.setdefault(section, {})[key] = _coerce(value, setting)
            except (TypeError, ValueError) as exc:
                raise ConfigError(str(exc), **where) from None  # type: ignore[arg-type]
    for section, settings in SETTINGS.items():
        resolved = values.setdefault(section, {})
        for key, setting in settings.items():
            override = _from_env(section, key, setting, environ)
            if override is not None:
                resolved[key] = override
            resolved.setdefault(key, setting.default)
    return Config(home=home, values=values)


def render_default_toml() -> str:
    """The documented default configuration, every setting commented with its meaning."""
    lines = ["# Coffer configuration. Every key may be overridden by COFFER_<SECTION>_<KEY>.", ""]
    for section, settings in SETTINGS.items():
        lines.append(f"[{section}]")
        for key, setting in settings.items():
            lines.append(f"# {setting.doc}")
            value = setting.default
            rendered = str(value) if isinstance(value, int) else '"' + str(value).replace('"', '\\"') + '"'
            lines.append(f"{key} = {rendered}")
        lines.append("")
    return "\n".join(lines)
