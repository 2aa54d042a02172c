#!/usr/bin/env python3
"""A small bitcoin-cli for `coffer regtest`, enough for a bitcoind-based test framework's CLI calls.

    BITCOINCLI=$PWD/tests/bitcoin_cli_launcher.py

Reads the credentials as bitcoin-cli does (rpcuser/rpcpassword from <datadir>/bitcoin.conf, else
<datadir>/regtest/.cookie) and the port from bitcoin.conf, sends one JSON-RPC 1.1 request, and prints
as bitcoin-cli prints: a string as is, null as nothing, anything else as JSON indented by 2; an RPC
error as "error code: N\\nerror message:\\nM" on stderr with exit status |N|; HTTP 503 as
"error: Server response: BODY". Arguments are JSON when they parse as JSON, else strings; -named
turns NAME=VALUE into named parameters; -stdin reads further arguments a line each.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from bitcoind_launcher import conf_options  # type: ignore[import-not-found]

CLIENT_TIMEOUT_S = 900


def _value(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        return text


def _credentials(datadir: Path, settings: dict[str, str]) -> tuple[str, str]:
    if "rpcpassword" in settings:
        return settings.get("rpcuser", ""), settings["rpcpassword"]
    user, _sep, password = (datadir / "regtest" / ".cookie").read_text().strip().partition(":")
    return user, password


def _parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    rest: list[str] = []
    for arg in argv:
        if arg.startswith("-") and not rest:
            name, sep, value = arg.lstrip("-").partition("=")
            if name in ("named", "nonamed"):  # the later of the two wins, as in bitcoin-cli
                name, value, sep = "named", "0" if name == "nonamed" else "1", ""
            options[name] = value if sep else options.get(name, "1") if name != "named" else value
        else:
            rest.append(arg)
    if "stdin" in options:
        rest += [line for line in sys.stdin.read().splitlines() if line]
    return options, rest


def _params(options: dict[str, str], words: list[str]) -> object:
    if options.get("named") == "1":
        named: dict[str, Any] = {}
        for word in words:
            key, _sep, value = word.partition("=")
            named[key] = _value(value)
        return named
    return [_value(word) for word in words]


def _print_reply(status: int, body: bytes) -> int:
    if status == 503:
        sys.stderr.write(f"error: Server response: {body.decode()}\n")
        return 1
    if status == 401:
        sys.stderr.write("error: Authorization failed: Incorrect rpcuser or rpcpassword\n")
        return 1
    reply = json.loads(body, parse_float=Decimal)
    error = reply.get("error")
    if error:
        sys.stderr.write(f"error code: {error['code']}\nerror message:\n{error['message']}\n")
        return abs(int(error["code"])) or 1
    result = reply.get("result")
    if isinstance(result, str):
        sys.stdout.write(result + "\n")
    elif result is not None:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


def main() -> int:
    options, words = _parse(sys.argv[1:])
    datadir = Path(options.get("datadir", str(Path.home() / ".bitcoin")))
    conf = datadir / "bitcoin.conf"
    settings = dict(conf_options(conf.read_text()) if conf.is_file() else [])
    settings.update(options)
    user, password = _credentials(datadir, settings)
    body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": words[0], "params": _params(options, words[1:])},
                      default=str).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", int(settings.get("rpcport", "18443")), timeout=CLIENT_TIMEOUT_S)
    connection.request("POST", "/", body, {"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    response = connection.getresponse()
    return _print_reply(response.status, response.read())


if __name__ == "__main__":
    sys.exit(main())
