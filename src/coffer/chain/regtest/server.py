"""Bitcoin Core's JSON-RPC over HTTP for the embedded node: loopback only, cookie or user/password.

Mirrors bitcoind's HTTP behaviour: POST only, HTTP Basic auth (401 with an empty body on failure),
JSON-RPC 1.0 replies with HTTP 404/500 on errors, JSON-RPC 2.0 replies with HTTP 200, batches as
arrays. Refuses to bind anywhere but a loopback address.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

from coffer.chain.errors import ChainError
from coffer.chain.regtest.jsonout import dumps
from coffer.chain.regtest.rpc import (
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_PARSE_ERROR,
    RpcDispatcher,
    RpcFault,
)

__all__ = ["RpcServer", "REQUEST_BYTES_MAX", "BATCH_REQUESTS_MAX", "COOKIE_USER"]

log = structlog.get_logger("coffer.chain.rpc")

REQUEST_BYTES_MAX = 32 * 1024 * 1024
BATCH_REQUESTS_MAX = 1000
COOKIE_USER = "__cookie__"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per reply and no Nagle delay: keep-alive clients otherwise wait ~40 ms per call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._send(405, b"JSONRPC server handles only POST requests")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if not self.server.authorized(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="jsonrpc"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= REQUEST_BYTES_MAX:
            self._send(413 if length > 0 else 400, b"")
            return
        body = self.rfile.read(length)
        status, reply = self.server.handle_body(body)
        self._send(status, reply.encode())


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatcher: RpcDispatcher, credentials: tuple[str, str]) -> None:
        self.dispatcher = dispatcher
        self._expected = "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        super().__init__(address, _Handler)

    def authorized(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self._expected.encode())

    def handle_body(self, body: bytes) -> tuple[int, str]:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 500, dumps({"result": None, "error": {"code": RPC_PARSE_ERROR, "message": "Parse error"}, "id": None})
        if isinstance(request, list):
            if len(request) > BATCH_REQUESTS_MAX:
                return 500, dumps({"result": None, "error": {"code": RPC_INVALID_REQUEST, "message": "Batch too large"},
                                   "id": None})
            replies = [self._one(item)[1] for item in request]
            return 200, dumps([reply for reply in replies if reply is not None])
        status, reply = self._one(request)
        return (204, "") if reply is None else (status, dumps(reply))

    def _one(self, request: object) -> tuple[int, dict[str, object] | None]:
        if not isinstance(request, dict):
            return 400, {"result": None, "error": {"code": RPC_INVALID_REQUEST, "message": "Invalid Request object"},
                         "id": None}
        request_id = request.get("id")
        version_2 = request.get("jsonrpc") == "2.0"
        try:
            result = self.dispatcher.call(request.get("method"), request.get("params"))
        except RpcFault as fault:
            return self._error(fault.code, fault.message, request_id, version_2)
        except ChainError as exc:
            return self._error(RPC_MISC_ERROR, str(exc), request_id, version_2)
        except Exception:  # noqa: BLE001 - one bad call must not take the server down
            log.exception("rpc_internal_error", method=str(request.get("method"))[:64])
            return self._error(RPC_MISC_ERROR, "Internal error", request_id, version_2)
        if version_2 and "id" not in request:
            return 204, None  # a JSON-RPC 2.0 notification gets no reply, as in Core
        if version_2:
            # Core 28 leaves "error" out of 2.0 successes; clients written for older bitcoind (the
            # BitMEX proof-of-reserves tool among them) read it, so it stays, as null.
            return 200, {"jsonrpc": "2.0", "result": result, "error": None, "id": request_id}
        return 200, {"result": result, "error": None, "id": request_id}

    @staticmethod
    def _error(code: int, message: str, request_id: object, version_2: bool) -> tuple[int, dict[str, object] | None]:
        error = {"code": code, "message": message}
        if version_2:
            return 200, {"jsonrpc": "2.0", "error": error, "id": request_id}
        status = {RPC_INVALID_REQUEST: 400, RPC_METHOD_NOT_FOUND: 404}.get(code, 500)
        return status, {"result": None, "error": error, "id": request_id}


class RpcServer:
    """Serves one RpcDispatcher on 127.0.0.1 (or another loopback address) in background threads."""

    def __init__(self, dispatcher: RpcDispatcher, *, port: int = 0, host: str = "127.0.0.1",
                 rpcuser: str | None = None, rpcpassword: str | None = None,
                 cookie_dir: Path | None = None) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the regtest RPC server binds to a loopback address only")
        if (rpcuser is None) != (rpcpassword is None):
            raise ValueError("give both rpcuser and rpcpassword, or neither (cookie auth)")
        self.cookie_paths: list[Path] = []
        if rpcuser is not None and rpcpassword is not None:
            credentials = (rpcuser, rpcpassword)
        else:
            credentials = (COOKIE_USER, secrets.token_hex(32))
            self._write_cookie(cookie_dir or dispatcher.node.datadir, credentials)
        self._http = _HttpServer((host, port), dispatcher, credentials)
        self.host, self.port = host, self._http.server_address[1]
        self._thread: threading.Thread | None = None
        dispatcher.stop_requested = self.request_stop
        self.stopped = threading.Event()

    def _write_cookie(self, directory: Path, credentials: tuple[str, str]) -> None:
        # Core writes <datadir>/regtest/.cookie; the brief asks for <datadir>/.cookie too.
        for path in (directory / ".cookie", directory / "regtest" / ".cookie"):
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(f"{credentials[0]}:{credentials[1]}")
            self.cookie_paths.append(path)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> RpcServer:
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="regtest-rpc", daemon=True)
        self._thread.start()
        log.info("rpc_listening", host=self.host, port=self.port)
        return self

    def request_stop(self) -> None:
        threading.Thread(target=self.close, daemon=True).start()

    def close(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        self._http.shutdown()
        self._http.server_close()
        for path in self.cookie_paths:
            path.unlink(missing_ok=True)
