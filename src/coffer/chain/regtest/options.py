"""bitcoind's options as `coffer regtest` honours them: policy, RPC, mock time; the rest are logged.

Pure: `parse_core_options(["datacarriersize=83", "noacceptnonstdtxn", ...])` gives typed settings
and the names it ignored. "-name" means name=1 and "-noname" name=0, as in Core's ArgsManager;
a later value of the same option wins. Bad values get Core's init error text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from coffer.chain.errors import ChainError
from coffer.chain.regtest.policy import DEFAULT_POLICY, PolicySettings

__all__ = ["CoreOptions", "OptionError", "parse_core_options", "IGNORED_QUIETLY"]

# Options that only steer parts this node does not have (P2P, wallet, logging format, indexes).
IGNORED_QUIETLY = frozenset({
    "regtest", "server", "debug", "debugexclude", "logtimemicros", "logthreadnames", "logsourcelocations",
    "loglevel", "nologratelimit", "logratelimit", "disablewallet", "v2transport", "bind", "port",
    "listen", "listenonion", "discover", "dnsseed", "fixedseeds", "connect", "natpmp", "upnp", "keypool",
    "peertimeout", "printtoconsole", "shrinkdebugfile", "unsafesqlitesync", "rpcservertimeout", "rpcdoccheck",
    "fallbackfee", "datadir", "maxconnections", "whitelist", "checkblocks", "checklevel", "wallet",
})


class OptionError(ChainError):
    """A bitcoind option with a value Core refuses at startup."""


@dataclass(frozen=True, slots=True)
class CoreOptions:
    policy: PolicySettings = DEFAULT_POLICY
    mock_time: int = 0
    rpc_threads: int = 16
    rpc_work_queue: int = 64
    rpc_user: str | None = None
    rpc_password: str | None = None
    rpc_port: int | None = None
    rpc_cookie_file: Path | None = None
    debug_log_file: Path | None = None
    persist_mempool: bool = True
    deprecated_rpc: frozenset[str] = frozenset()
    ua_comments: tuple[str, ...] = ()
    prune_mib: int = 0  # Core's -prune: 0 off, 1 manual, >= 550 a target; reported (the node keeps every block)
    stop_at_height: int = 0
    ignored: tuple[str, ...] = ()


def _split(item: str) -> tuple[str, str]:
    name, sep, value = item.lstrip("-").partition("=")
    if name.startswith("no") and name[2:] and not sep:
        return name[2:], "0"
    if name.startswith("no") and sep and name[2:] in _BOOLEANS:
        return name[2:], "0" if value not in ("0", "") else "1"
    return name, value if sep else "1"


def _money(name: str, value: str) -> int:
    try:
        amount = Decimal(value) * 100_000_000
    except InvalidOperation:
        raise OptionError(f"Invalid amount for -{name}=<amount>: '{value}'") from None
    if not amount.is_finite() or amount != amount.to_integral_value() or not 0 <= amount <= 21_000_000 * 10**8:
        raise OptionError(f"Invalid amount for -{name}=<amount>: '{value}'")
    return int(amount)


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OptionError(f"Invalid value for -{name}: '{value}'") from None


def _flag(value: str) -> bool:
    return value not in ("0", "false", "")


_BOOLEANS = frozenset({"acceptnonstdtxn", "datacarrier", "permitbaremultisig", "persistmempool"})


def _apply_policy(policy: PolicySettings, name: str, value: str) -> PolicySettings | None:
    setters = {
        "acceptnonstdtxn": lambda: replace(policy, require_standard=not _flag(value)),
        "datacarrier": lambda: replace(policy, datacarrier=_flag(value)),
        "datacarriersize": lambda: replace(policy, datacarrier_size=_integer(name, value)),
        "permitbaremultisig": lambda: replace(policy, permit_bare_multisig=_flag(value)),
        "dustrelayfee": lambda: replace(policy, dust_relay_fee_sat_per_kvb=_money(name, value)),
        "minrelaytxfee": lambda: replace(policy, min_relay_fee_sat_per_kvb=_money(name, value)),
        "incrementalrelayfee": lambda: replace(policy, incremental_relay_fee_sat_per_kvb=_money(name, value)),
        "limitclustercount": lambda: replace(policy, cluster_count_max=_integer(name, value)),
        "limitclustersize": lambda: replace(policy, cluster_vsize_max=_integer(name, value) * 1000),
        "maxmempool": lambda: replace(policy, max_mempool_bytes=_integer(name, value) * 1_000_000),
        "bytespersigop": lambda: replace(policy, bytes_per_sigop=_integer(name, value)),
    }
    setter = setters.get(name)
    return None if setter is None else setter()


def parse_core_options(items: list[str]) -> CoreOptions:
    """Typed settings from bitcoind options (without leading dashes or with), in order given."""
    options = CoreOptions()
    ignored: list[str] = []
    for item in items:
        name, value = _split(item)
        policy = _apply_policy(options.policy, name, value)
        if policy is not None:
            options = replace(options, policy=policy)
            continue
        updated = _apply_node(options, name, value)
        if updated is not None:
            options = updated
        elif name not in IGNORED_QUIETLY:
            ignored.append(name)
    policy = options.policy
    if policy.min_relay_fee_sat_per_kvb < policy.incremental_relay_fee_sat_per_kvb:
        # Core: "Increasing minrelaytxfee ... to match incrementalrelayfee"
        policy = replace(policy, min_relay_fee_sat_per_kvb=policy.incremental_relay_fee_sat_per_kvb)
    return replace(options, policy=policy, ignored=tuple(ignored))


PRUNE_TARGET_MIN_MIB = 550
DEPLOYMENT_NAMES = ("segwit", "bip34", "dersig", "cltv", "csv")


def _prune(value: str) -> int:
    mib = _integer("prune", value)
    if mib < 0:
        raise OptionError("Prune cannot be configured with a negative value.")
    if 1 < mib < PRUNE_TARGET_MIN_MIB:
        raise OptionError(f"Prune configured below the minimum of {PRUNE_TARGET_MIN_MIB} MiB.  Please use a higher number.")
    return mib


def _check_activation_height(value: str) -> None:
    """Core's -testactivationheight=name@height checks. The embedded kernel keeps regtest's own
    heights, so a valid value is accepted and has no effect (and is logged)."""
    name, sep, height = value.partition("@")
    if not sep:
        raise OptionError(f"Invalid format ({value}) for -testactivationheight=name@height.")
    try:
        number = int(height)
    except ValueError:
        number = -1
    if not 0 <= number < 2**31:
        raise OptionError(f"Invalid height value ({value}) for -testactivationheight=name@height.")
    if name not in DEPLOYMENT_NAMES:
        raise OptionError(f"Invalid name ({value}) for -testactivationheight=name@height.")


def _apply_node(options: CoreOptions, name: str, value: str) -> CoreOptions | None:
    if name == "mocktime":
        return replace(options, mock_time=_integer(name, value))
    if name in ("rpcthreads", "rpcworkqueue"):
        number = max(_integer(name, value), 1)
        return replace(options, rpc_threads=number) if name == "rpcthreads" else replace(options, rpc_work_queue=number)
    if name == "rpcuser":
        return replace(options, rpc_user=value)
    if name == "rpcpassword":
        return replace(options, rpc_password=value)
    if name == "rpcport":
        return replace(options, rpc_port=_integer(name, value))
    if name == "rpccookiefile":
        return replace(options, rpc_cookie_file=Path(value))
    if name == "debuglogfile":
        return replace(options, debug_log_file=Path(value))
    if name == "prune":
        return replace(options, prune_mib=_prune(value))
    if name == "stopatheight":
        return replace(options, stop_at_height=_integer(name, value))
    if name == "testactivationheight":
        _check_activation_height(value)
        return options
    if name == "uacomment":
        return replace(options, ua_comments=(*options.ua_comments, value))
    if name == "deprecatedrpc":
        return replace(options, deprecated_rpc=options.deprecated_rpc | {value})
    if name == "persistmempool":
        return replace(options, persist_mempool=_flag(value))
    return None
