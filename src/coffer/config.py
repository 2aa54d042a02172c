"""Configuration: coffer.toml of a data directory, read into typed, checked sections.

Every setting has a documented default (`SETTINGS`), may be set in `coffer.toml` under its
section, and may be overridden by the environment variable `COFFER_<SECTION>_<KEY>`. Each section
is a frozen dataclass (`config.cold.threshold` is an `int`); ranges and cross-field rules (a
threshold no larger than its signers, intervals above zero, distinct ports) are checked at load. A
bad file gets a `ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from coffer.errors import ConfigError

__all__ = ["Setting", "SETTINGS", "SECTIONS", "Config", "load_config", "default_home", "render_default_toml",
           "CONFIG_FILE", "DatabaseSettings", "HsmSettings", "BitcoinSettings", "EthereumSettings", "ColdSettings",
           "MpcSettings", "ReconSettings", "MailSettings", "WebSettings", "HaltSettings", "PolicySettings",
           "KeyholdersSettings"]

CONFIG_FILE = "coffer.toml"
CONFIG_BYTES_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class Setting:
    default: str | int
    doc: str


T = TypeVar("T", str, int)


def _setting(default: T, doc: str) -> T:
    """A section field with its default and its documentation (rendered into coffer.toml)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = _setting("", "SQLAlchemy URL; empty means the SQLite file coffer.db in the data directory")


@dataclass(frozen=True, slots=True)
class HsmSettings:
    module: str = _setting("/usr/lib/softhsm/libsofthsm2.so", "path of the PKCS#11 module")
    token_label: str = _setting("coffer-coordinator", "label of the coordinator's token")
    pin_file: str = _setting("hsm/pin", "file holding the token user PIN, relative to the data directory")
    softhsm_conf: str = _setting("hsm/softhsm2.conf", "SoftHSM2 configuration (when the module is SoftHSM2)")


@dataclass(frozen=True, slots=True)
class BitcoinSettings:
    backend: str = _setting("embedded", "embedded (regtest in-process) or rpc (Bitcoin Core JSON-RPC)")
    network: str = _setting("regtest", "regtest, testnet, signet or main")
    rpc_url: str = _setting("http://127.0.0.1:18443", "Bitcoin Core JSON-RPC URL when backend = rpc")
    rpc_cookie_file: str = _setting("", "Bitcoin Core cookie file when backend = rpc")
    confirmations: int = _setting(3, "confirmations before a deposit is credited")


@dataclass(frozen=True, slots=True)
class EthereumSettings:
    backend: str = _setting("embedded", "embedded (py-evm) or rpc (any JSON-RPC node)")
    rpc_url: str = _setting("http://127.0.0.1:8545", "JSON-RPC URL when backend = rpc")
    confirmations: int = _setting(3, "confirmations before a deposit is credited")


@dataclass(frozen=True, slots=True)
class ColdSettings:
    signers: int = _setting(5, "number of cold multisig signers (n)")
    threshold: int = _setting(3, "signatures required (m)")
    batch_max: int = _setting(1000, "withdrawals per batch at most")
    batch_interval_s: int = _setting(60, "seconds between batch seals")
    signer_port_base: int = _setting(18600, "signer N listens on 127.0.0.1:(base + N)")


@dataclass(frozen=True, slots=True)
class MpcSettings:
    cosigners: int = _setting(5, "number of MPC co-signers")
    frost_threshold: int = _setting(3, "FROST threshold (t of cosigners)")
    ecdsa_parties: int = _setting(3, "co-signers holding the ECDSA key")
    ecdsa_threshold: int = _setting(2, "threshold ECDSA t")


@dataclass(frozen=True, slots=True)
class ReconSettings:
    positions_interval_s: int = _setting(15, "seconds between position and margin checks")
    onchain_interval_s: int = _setting(600, "seconds between on-chain balance checks")
    notice_key_label: str = _setting("coffer-halt-notice", "HSM label of the Ed25519 key that signs halt notices")
    errors_before_halt: int = _setting(3, "consecutive checks that cannot run before the exchange halts")


@dataclass(frozen=True, slots=True)
class MailSettings:
    smtp_host: str = _setting("127.0.0.1", "SMTP server host")
    smtp_port: int = _setting(8025, "SMTP server port")
    sender: str = _setting("security@coffer.invalid", "From address of every mail")
    team_address: str = _setting("security-team@coffer.invalid",
                                 "address of the security team (halt/resume, tickets)")
    smtp_timeout_s: int = _setting(10, "seconds before an SMTP connection attempt gives up (the outbox retries)")


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str = _setting("127.0.0.1", "address the coordinator's web server binds to")
    port: int = _setting(8080, "port of the coordinator's web server")
    notice_port: int = _setting(8081, "port of the halt-notice endpoint signers and co-signers poll")


@dataclass(frozen=True, slots=True)
class HaltSettings:
    officer_quorum: int = _setting(2, "security-officer signatures needed to resume")
    notice_max_age_s: int = _setting(30, "a signer refuses when its newest halt notice is older than this")


@dataclass(frozen=True, slots=True)
class PolicySettings:
    admin_quorum: int = _setting(2, "policy admins (other than the proposer) who must sign a new policy set")
    attestation_ttl_s: int = _setting(900, "seconds an HSM-attested decision stays valid for signers")
    attestation_key_label: str = _setting("coffer-decision-attestation", "label of the HSM attestation key")


@dataclass(frozen=True, slots=True)
class KeyholdersSettings:
    dir: str = _setting("", "directory of the key holders' own directories (signer-N, cosigner-N, ceremony), "
                            "outside the data directory; empty means DATA_DIRECTORY-keyholders beside it")


SECTIONS: dict[str, type[Any]] = {
    "database": DatabaseSettings, "hsm": HsmSettings, "bitcoin": BitcoinSettings, "ethereum": EthereumSettings,
    "cold": ColdSettings, "mpc": MpcSettings, "recon": ReconSettings, "mail": MailSettings, "web": WebSettings,
    "halt": HaltSettings, "policy": PolicySettings, "keyholders": KeyholdersSettings,
}

# section -> key -> Setting, derived from the sections. The type of each setting is the type of its default.
def _settings_of(kind: type[Any]) -> dict[str, Setting]:
    found: dict[str, Setting] = {}
    for item in fields(kind):
        assert isinstance(item.default, str | int), f"{kind.__name__}.{item.name} has no default"
        found[item.name] = Setting(item.default, str(item.metadata["doc"]))
    return found


SETTINGS: dict[str, dict[str, Setting]] = {section: _settings_of(kind) for section, kind in SECTIONS.items()}

# Settings that must be positive (a zero interval or count makes no sense), beyond "not negative".
POSITIVE: frozenset[tuple[str, str]] = frozenset({
    ("bitcoin", "confirmations"), ("ethereum", "confirmations"), ("cold", "signers"), ("cold", "threshold"),
    ("cold", "batch_max"), ("cold", "batch_interval_s"), ("mpc", "cosigners"), ("mpc", "frost_threshold"),
    ("mpc", "ecdsa_parties"), ("mpc", "ecdsa_threshold"), ("recon", "positions_interval_s"),
    ("recon", "onchain_interval_s"), ("recon", "errors_before_halt"), ("mail", "smtp_timeout_s"),
    ("halt", "officer_quorum"), ("halt", "notice_max_age_s"), ("policy", "attestation_ttl_s"),
})
PORTS: frozenset[tuple[str, str]] = frozenset({("mail", "smtp_port"), ("web", "port"), ("web", "notice_port"),
                                               ("cold", "signer_port_base")})
PORT_MAX = 65_535
SIGNERS_MAX = 15  # P2WSH multisig: OP_CHECKMULTISIG in a standard witness script takes at most 15 keys
COSIGNERS_MAX = 255


def default_home() -> Path:
    return Path(os.environ.get("COFFER_HOME", ".coffer"))


@dataclass(frozen=True, slots=True)
class Config:
    """Resolved, checked settings of one data directory, one typed section per table of coffer.toml."""

    home: Path
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    hsm: HsmSettings = field(default_factory=HsmSettings)
    bitcoin: BitcoinSettings = field(default_factory=BitcoinSettings)
    ethereum: EthereumSettings = field(default_factory=EthereumSettings)
    cold: ColdSettings = field(default_factory=ColdSettings)
    mpc: MpcSettings = field(default_factory=MpcSettings)
    recon: ReconSettings = field(default_factory=ReconSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    web: WebSettings = field(default_factory=WebSettings)
    halt: HaltSettings = field(default_factory=HaltSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    keyholders: KeyholdersSettings = field(default_factory=KeyholdersSettings)

    def get(self, section: str, key: str) -> str | int:
        """One setting by name (prefer the typed sections: `config.cold.threshold`)."""
        if section not in SETTINGS or key not in SETTINGS[section]:
            raise ConfigError("no such setting", key=f"{section}.{key}")
        value: object = getattr(getattr(self, section), key)
        assert isinstance(value, str | int)
        return value

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.home / 'coffer.db'}"

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
            line = _line_of(text, section, key)
            if setting is None:
                raise ConfigError("unknown setting", path=str(path), line=line, key=f"{section}.{key}")
            try:
                values.setdefault(section, {})[key] = _coerce(value, setting)
            except (TypeError, ValueError) as exc:
                raise ConfigError(str(exc), path=str(path), line=line, key=f"{section}.{key}") from None
    for section, settings in SETTINGS.items():
        resolved = values.setdefault(section, {})
        for key, setting in settings.items():
            override = _from_env(section, key, setting, environ)
            if override is not None:
                resolved[key] = override
            resolved.setdefault(key, setting.default)
    _check(values, lambda section, key: _where(path, text, section, key, environ))
    return Config(home=home, **{section: SECTIONS[section](**values[section]) for section in SECTIONS})


def _where(path: Path, text: str, section: str, key: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Where a setting's value came from: its environment variable, or the file and line."""
    variable = f"COFFER_{section.upper()}_{key.upper()}"
    if variable in environ:
        return {"path": f"${variable}", "line": None, "key": f"{section}.{key}"}
    return {"path": str(path), "line": _line_of(text, section, key), "key": f"{section}.{key}"}


def _check(values: Mapping[str, Mapping[str, Any]], where: Callable[[str, str], dict[str, Any]]) -> None:
    """Ranges and cross-field rules; the error names the setting at fault and where it was set."""
    for section, key in sorted(POSITIVE):
        if values[section][key] < 1:
            raise ConfigError("must be at least 1", **where(section, key))
    for section, key in sorted(PORTS):
        if not 1 <= values[section][key] <= PORT_MAX:
            raise ConfigError(f"must be a port between 1 and {PORT_MAX}", **where(section, key))
    cold, mpc, web = values["cold"], values["mpc"], values["web"]
    rules: list[tuple[bool, str, str, str]] = [
        (cold["signers"] > SIGNERS_MAX, "cold", "signers", f"at most {SIGNERS_MAX} signers"),
        (cold["threshold"] > cold["signers"], "cold", "threshold",
         f"threshold {cold['threshold']} is more than the {cold['signers']} signers (cold.signers)"),
        (mpc["cosigners"] > COSIGNERS_MAX, "mpc", "cosigners", f"at most {COSIGNERS_MAX} co-signers"),
        (mpc["frost_threshold"] < 2, "mpc", "frost_threshold", "a threshold key needs a threshold of at least 2"),
        (mpc["frost_threshold"] > mpc["cosigners"], "mpc", "frost_threshold",
         f"threshold {mpc['frost_threshold']} is more than the {mpc['cosigners']} co-signers (mpc.cosigners)"),
        (mpc["ecdsa_parties"] > mpc["cosigners"], "mpc", "ecdsa_parties",
         f"{mpc['ecdsa_parties']} parties but only {mpc['cosigners']} co-signers (mpc.cosigners)"),
        (mpc["ecdsa_threshold"] < 2, "mpc", "ecdsa_threshold", "a threshold key needs a threshold of at least 2"),
        (mpc["ecdsa_threshold"] > mpc["ecdsa_parties"], "mpc", "ecdsa_threshold",
         f"threshold {mpc['ecdsa_threshold']} is more than the {mpc['ecdsa_parties']} parties (mpc.ecdsa_parties)"),
        (web["port"] == web["notice_port"], "web", "notice_port", "must differ from web.port"),
        (cold["signer_port_base"] + cold["signers"] > PORT_MAX, "cold", "signer_port_base",
         f"base + {cold['signers']} signers is past port {PORT_MAX}"),
    ]
    for broken, section, key, message in rules:
        if broken:
            raise ConfigError(message, **where(section, key))


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
