"""Bitcoin Core's JSON-RPC over HTTP for the embedded node: loopback only, cookie or user/password.

Mirrors bitcoind's HTTP behaviour: POST only, HTTP Basic auth (401 with an empty body on failure),
JSON-RPC 1.0 replies with HTTP 404/500 on errors, JSON-RPC 2.0 replies with HTTP 200, batches as
arrays. Refuses to bind anywhere but a loopback address.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import ipaddress
import os
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

from coffer.chain.regtest.jsonrpc import execute_http
from coffer.chain.regtest.rpc import RpcDispatcher

__all__ = ["RpcServer", "WorkLimits", "REQUEST_BYTES_MAX", "COOKIE_USER", "DEFAULT_RPC_THREADS",
           "DEFAULT_RPC_WORK_QUEUE"]

log = structlog.get_logger("coffer.chain.rpc")

REQUEST_BYTES_MAX = 32 * 1024 * 1024
CHUNK_LINE_BYTES_MAX = 4096
CHUNK_TRAILERS_MAX = 100
DEFAULT_RPC_THREADS = 16  # Core's DEFAULT_HTTP_THREADS
DEFAULT_RPC_WORK_QUEUE = 64  # Core's DEFAULT_HTTP_WORKQUEUE
COOKIE_USER = "__cookie__"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per reply and no Nagle delay: keep-alive clients otherwise wait ~40 ms per call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def handle(self) -> None:
        # A client that resets or drops the connection is routine (Core logs nothing either).
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body and status != 204:
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
            self._send(401, b"", {"WWW-Authenticate": 'Basic realm="jsonrpc"'})
            return
        body = self._read_body()
        if body is None:
            return
        if not self.server.work_queue.acquire(blocking=False):
            self._send(503, b"Work queue depth exceeded")
            return
        try:
            with self.server.workers:
                status, reply = self.server.handle_body(body)
        finally:
            self.server.work_queue.release()
        self._send(status, reply.encode() + (b"\n" if reply else b""))
        if self.server.stop_pending.is_set():
            self.wfile.flush()
            self.close_connection = True
            self.server.stop_callback()

    def _read_body(self) -> bytes | None:
        """The request body, by Content-Length or chunked; None after answering an oversized one."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = _read_chunked(self.rfile)
            if body is None:
                self._send(413, b"")
                self.close_connection = True
            return body
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= REQUEST_BYTES_MAX:
            self._send(413 if length > 0 else 400, b"")
            self.close_connection = True
            return None
        return self.rfile.read(length)


def _read_chunked(stream: Any) -> bytes | None:
    """An HTTP/1.1 chunked body (RFC 9112 7.1); None when larger than REQUEST_BYTES_MAX or malformed."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(CHUNK_LINE_BYTES_MAX)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None
        if size == 0:
            break
        total += size
        if total > REQUEST_BYTES_MAX:
            return None
        parts.append(stream.read(size))
        stream.readline(CHUNK_LINE_BYTES_MAX)  # the CRLF after the chunk
    for _ in range(CHUNK_TRAILERS_MAX):  # trailer fields, up to the empty line
        if stream.readline(CHUNK_LINE_BYTES_MAX) in (b"\r\n", b"\n", b""):
            break
    return b"".join(parts)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatcher: RpcDispatcher, credentials: tuple[str, str],
                 limits: WorkLimits) -> None:
        self.dispatcher = dispatcher
        self.stop_pending = threading.Event()  # `stop` was called: close once its reply is out
        self.stop_callback: Callable[[], None] = lambda: None
        self._expected = "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        # Core: -rpcthreads workers take requests from a queue of -rpcworkqueue; beyond it, 503.
        self.workers = threading.BoundedSemaphore(limits.threads)
        self.work_queue = threading.BoundedSemaphore(limits.threads + limits.queue_depth)
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("rpc_connection_error", client=str(client_address))

    def authorized(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self._expected.encode())

    def handle_body(self, body: bytes) -> tuple[int, str]:
        return execute_http(self.dispatcher, body)


class WorkLimits:
    """Core's -rpcthreads and -rpcworkqueue."""

    def __init__(self, threads: int = DEFAULT_RPC_THREADS, queue_depth: int = DEFAULT_RPC_WORK_QUEUE) -> None:
        if threads < 1 or queue_depth < 1:
            raise ValueError("rpcthreads and rpcworkqueue must be at least 1")
        self.threads, self.queue_depth = threads, queue_depth


class RpcServer:
    """Serves one RpcDispatcher on 127.0.0.1 (or another loopback address) in background threads."""

    def __init__(self, dispatcher: RpcDispatcher, *, port: int = 0, host: str = "127.0.0.1",
                 rpcuser: str | None = None, rpcpassword: str | None = None,
                 cookie_dir: Path | None = None, cookie_file: Path | None = None,
                 limits: WorkLimits | None = None) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the regtest RPC server binds to a loopback address only")
        if (rpcuser is None) != (rpcpassword is None):
            raise ValueError("give both rpcuser and rpcpassword, or neither (cookie auth)")
        self.cookie_paths: list[Path] = []
        if rpcuser is not None and rpcpassword is not None:
            credentials = (rpcuser, rpcpassword)
        else:
            credentials = (COOKIE_USER, secrets.token_hex(32))
            paths = [cookie_file] if cookie_file is not None else None
            self._write_cookie(cookie_dir or dispatcher.node.datadir, credentials, paths)
        self._http = _HttpServer((host, port), dispatcher, credentials, limits or WorkLimits())
        self.host, self.port = host, self._http.server_address[1]
        self._thread: threading.Thread | None = None
        dispatcher.stop_requested = self._http.stop_pending.set
        self._http.stop_callback = self.request_stop
        self.stopped = threading.Event()

    def _write_cookie(self, directory: Path, credentials: tuple[str, str], paths: list[Path] | None) -> None:
        # Core writes <datadir>/regtest/.cookie (or -rpccookiefile); <datadir>/.cookie too for Coffer's tools.
        for path in paths or [directory / ".cookie", directory / "regtest" / ".cookie"]:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed, as Core does: a client polling for it never reads half a cookie.
            temporary = path.with_name(path.name + ".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(f"{credentials[0]}:{credentials[1]}")
            os.replace(temporary, path)
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
