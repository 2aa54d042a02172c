"""Raw HTTP JSON-RPC calls the way bitcoind clients make them (no Coffer client code involved)."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

AUTH = ("alice", "correct horse")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: bytes, auth: tuple[str, str] | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class RawRpc:
    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.url, self.auth = url, auth

    def reply(self, method: str, *params: Any) -> tuple[int, dict[str, Any]]:
        body = json.dumps({"jsonrpc": "1.0", "id": "t", "method": method, "params": list(params)}).encode()
        status, data = post(self.url, body, self.auth)
        return status, json.loads(data, parse_float=Decimal)

    def __call__(self, method: str, *params: Any) -> Any:
        status, reply = self.reply(method, *params)
        assert reply["error"] is None, reply["error"]
        assert 200 == status
        return reply["result"]

    def error(self, method: str, *params: Any) -> tuple[int, str]:
        _status, reply = self.reply(method, *params)
        assert reply["result"] is None
        return reply["error"]["code"], reply["error"]["message"]
