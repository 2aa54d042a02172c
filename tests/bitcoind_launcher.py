#!/usr/bin/env python3
"""bitcoind's command line mapped onto `coffer regtest`, so a bitcoind-based framework drives Coffer's node.

Use it where a framework expects the bitcoind binary, e.g. Bitcoin Core's functional tests:

    BITCOIND=$PWD/tests/bitcoind_launcher.py python3 test/functional/rpc_generate.py

It reads <datadir>/bitcoin.conf (top level and [regtest], then the command line: a later value wins,
as in Core), keeps Core's layout of the chain directory (<datadir>/regtest/.cookie, debug.log,
wallets/; the node's own files in <datadir>/regtest/chainstate/), and then becomes
`coffer regtest --datadir ... --rpcport P --core-option NAME=VALUE ...` (exec, same process id).
Every bitcoind option is passed on: `coffer regtest` honours the policy, RPC and mock-time ones and
logs the others as ignored. Only regtest is served: another chain is refused as bitcoind refuses a
bad option, with "Error: ..." on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OTHER_CHAINS = frozenset({"testnet", "testnet4", "signet", "main"})
PATH_OPTIONS = frozenset({"datadir", "conf"})


def _option(text: str) -> tuple[str, str]:
    name, sep, value = text.lstrip("-").partition("=")
    return name.strip(), value.strip() if sep else "1"


def conf_options(conf_text: str) -> list[tuple[str, str]]:
    """bitcoin.conf's options that apply to regtest: the top level and the [regtest] section."""
    options, section = [], ""
    for raw_line in conf_text.splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section in ("", "regtest"):
            name, value = _option(line)
            options.append((name[len("regtest."):] if name.startswith("regtest.") else name, value))
    return options


def coffer_argv(argv: list[str]) -> list[str]:
    """The `coffer regtest` arguments for a bitcoind command line (argv without the program name)."""
    command = [_option(arg) for arg in argv if arg.startswith("-")]
    datadir = Path(dict(command).get("datadir", str(Path.home() / ".bitcoin"))).resolve()
    conf = Path(dict(command).get("conf", str(datadir / "bitcoin.conf")))
    options = (conf_options(conf.read_text()) if conf.is_file() else []) + command
    chain = next((name for name, value in reversed(options) if name in OTHER_CHAINS and value != "0"), None)
    if chain is not None or dict(options).get("chain", "regtest") != "regtest":
        raise SystemExit(f"Error: coffer regtest serves only -regtest (asked for {chain or dict(options)['chain']})")
    chain_dir = datadir / "regtest"
    (chain_dir / "wallets").mkdir(parents=True, exist_ok=True)
    settings = dict(options)
    result = ["regtest", "--datadir", str(chain_dir / "chainstate"),
              "--rpcport", settings.get("rpcport", "18443"), "--rpcbind", "127.0.0.1",
              "--core-option", f"rpccookiefile={chain_dir / '.cookie'}",
              "--core-option", f"debuglogfile={chain_dir / 'debug.log'}"]
    for name, value in options:
        if name not in PATH_OPTIONS and name != "chain":
            result += ["--core-option", f"{name}={value}"]
    return result


def _python() -> str:
    venv = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def main() -> None:
    arguments = coffer_argv(sys.argv[1:])
    python = _python()
    os.execv(python, [python, "-m", "coffer.cli", *arguments])


if __name__ == "__main__":
    main()
