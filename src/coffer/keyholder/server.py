"""The one mutual-TLS server of every key holder: cold signer, FROST and DKLs23 co-signer.

Engines mount on it through their route tables (`coffer.keyholder.routes`). Each connection gets
its own thread, and the TLS handshake runs there with a time-out that bounds the whole handshake
(the ssl module turns a socket time-out into a deadline per operation, so a byte dripped now and
then does not extend it); every later read has a time-out, the keep-alive wait too. So an idle,
slow or half-open connection never stalls `accept()` nor anyone else; open connections are bounded.
HTTP/1.1 keep-alive lets the coordinator pipeline over a few sockets, and `/v1/batch` carries
several calls in one request (run concurrently, so their durable writes can share an fsync).

Before an engine sees a body, in this order: the route exists, the caller's certificate name is
allowed on it, the body is within the size limit, the JSON within the depth limit, and for a
route that acts, the caller's clock within the bound of ours. Every refusal, the transport's or
an engine's, is one JSON shape: {"error": type, "rule": rule, "message": ...} (plus the parties
named, "culprits" / "sender"), never a secret; a bug answers 500 with its type only.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from coffer.keyholder.errors import (
    BodyTooLarge,
    PeerNotAllowed,
    RequestMalformed,
    RequestRefused,
    RouteUnknown,
    check_listen_host,
)
from coffer.keyholder.hardening import CLOCK_HEADER, CLOCK_SKEW_S_MAX, check_clock
from coffer.keyholder.limits import JSON_DEPTH_MAX, check_body
from coffer.keyholder.routes import BATCH_PATH, Route, RouteTable
from coffer.log import get_logger
from coffer.tls import TlsFiles, server_context

DRAIN_BYTES_MAX = 32 * 1024 * 1024  # a refused body read and dropped at most, before the close
__all__ = ["KeyholderServer", "Mount", "error_body", "common_name", "HANDSHAKE_TIMEOUT_S", "REQUEST_TIMEOUT_S",
           "CONNECTIONS_MAX", "BATCH_CALLS_MAX"]

HANDSHAKE_TIMEOUT_S: Final = 10.0
REQUEST_TIMEOUT_S: Final = 30.0
CONNECTIONS_MAX: Final = 256
BATCH_CALLS_MAX: Final = 64
BATCH_WORKERS: Final = 32
MESSAGE_CHARS_MAX: Final = 500
log = get_logger("coffer.keyholder.server")

Handler = Callable[[bytes], dict[str, Any]]
ErrorStatus = Callable[[Exception], "int | None"]


@dataclass(frozen=True, slots=True)
class Mount:
    """An engine on the server: its route table, the object whose methods serve the routes, and
    the HTTP status of each error it raises on purpose (None: not expected, a bug)."""

    table: RouteTable
    engine: object
    error_status: ErrorStatus


@dataclass(frozen=True, slots=True)
class _Bound:
    route: Route
    handler: Handler
    error_status: ErrorStatus
    body_bytes_max: int


def common_name(certificate: dict[str, Any] | None) -> str | None:
    """The single common name of a peer certificate (None when it has none or several)."""
    names = [pair[1] for rdn in (certificate or {}).get("subject", ()) for pair in rdn if pair[0] == "commonName"]
    return names[0] if len(names) == 1 else None


def error_body(error: Exception) -> dict[str, Any]:
    """The one refusal shape: type, rule, a bounded message and the parties named."""
    rule = getattr(error, "rule", None)
    body: dict[str, Any] = {"error": type(error).__name__, "rule": rule if isinstance(rule, str) else
                            type(error).__name__, "message": str(error)[:MESSAGE_CHARS_MAX]}
    culprit = getattr(error, "culprit", None)
    culprits = getattr(error, "culprits", None) or (() if culprit is None else (culprit,))
    if culprits or hasattr(error, "culprits"):
        body["culprits"] = [c for c in culprits if isinstance(c, int) and not isinstance(c, bool)]
    if hasattr(error, "sender"):
        sender = error.sender
        body["sender"] = sender if isinstance(sender, int) and not isinstance(sender, bool) else None
    return body


def _bind(mounts: Sequence[Mount]) -> dict[tuple[str, str], _Bound]:
    bound: dict[tuple[str, str], _Bound] = {}
    for mount in mounts:
        for route in mount.table.routes:
            key = (route.method, route.path)
            if key in bound or route.path == BATCH_PATH:
                raise ValueError(f"route {route.method} {route.path} mounted twice")
            bound[key] = _Bound(route, getattr(mount.engine, route.handler), mount.error_status,
                                mount.table.body_bytes_max)
    return bound


def _dispatch(bound: _Bound, data: bytes, peer: str | None) -> tuple[int, dict[str, Any]]:
    """Run one engine call; expected failures become (status, error body), a bug its type only."""
    try:
        return 200, bound.handler(data)
    except Exception as error:
        status = bound.error_status(error)
        if status is None:
            log.error("keyholder.internal_error", path=bound.route.path, error=type(error).__name__)
            return 500, {"error": "InternalError", "rule": "internal", "message": type(error).__name__}
        body = error_body(error)
        log.info("keyholder.refused", path=bound.route.path, peer=peer, error=body["error"], rule=body["rule"],
                 culprits=body.get("culprits"), sender=body.get("sender"))
        return status, body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext,
                 connections_max: int, handshake_timeout_s: float) -> None:
        self._context = context
        self._slots = threading.BoundedSemaphore(connections_max)
        self._handshake_timeout_s = handshake_timeout_s
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):  # full: refuse this one, keep serving the others
            log.warning("keyholder.connections_full")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the connection's own thread, with a time-out: a stalled handshake holds only itself.
        request.settimeout(self._handshake_timeout_s)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self._context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.info("keyholder.tls_refused", reason=type(error).__name__)
            return
        self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("keyholder.connection_error")


class KeyholderServer:
    """Serves the mounted engines over mutual TLS on `host`:`port` (loopback by default; one
    address, never every interface)."""

    def __init__(self, mounts: Sequence[Mount], tls: TlsFiles, *, port: int, host: str = "127.0.0.1",
                 clock_skew_s_max: float = CLOCK_SKEW_S_MAX, clock: Callable[[], float] = time.time,
                 handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 connections_max: int = CONNECTIONS_MAX) -> None:
        self.routes = _bind(mounts)
        self._clock = clock
        self._clock_skew_s_max = clock_skew_s_max
        self._workers = ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="keyholder-batch")
        self._server = _Server((check_listen_host(host), port), _handler_class(self, request_timeout_s), server_context(tls),
                               connections_max, handshake_timeout_s)
        self.host = str(self._server.server_address[0])
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    def answer(self, method: str, path: str, peer: str | None, headers: Any, data: bytes) -> tuple[int, dict[str, Any]]:
        """One request, checked in order: route, peer name, limits, clock; then the engine."""
        try:
            if path == BATCH_PATH and method == "POST":
                return self._batch(peer, headers, data)
            bound = self._route(method, path, peer)
            check_body(data, bytes_max=bound.body_bytes_max, depth_max=JSON_DEPTH_MAX)
            if bound.route.acts:
                check_clock(headers.get(CLOCK_HEADER), now_s=self._clock(), skew_s_max=self._clock_skew_s_max)
        except RequestRefused as error:
            log.info("keyholder.refused", path=path[:100], peer=peer, error=type(error).__name__, rule=error.rule)
            return error.status, error_body(error)
        return _dispatch(bound, data, peer)

    def body_bytes_max(self) -> int:
        return max([bound.body_bytes_max for bound in self.routes.values()], default=0)

    def _route(self, method: str, path: str, peer: str | None) -> _Bound:
        bound = self.routes.get((method, path))
        if bound is None:
            raise RouteUnknown(f"no route {method} {path[:100]}")
        if peer not in bound.route.peers:
            raise PeerNotAllowed(f"certificate name {str(peer)[:64]!r} may not call {path}")
        return bound

    def _batch(self, peer: str | None, headers: Any, data: bytes) -> tuple[int, dict[str, Any]]:
        check_body(data, bytes_max=self.body_bytes_max(), depth_max=JSON_DEPTH_MAX)
        jobs = [(self._route("POST", path, peer), body) for path, body in _batch_calls(data)]
        for bound, body in jobs:
            check_body(body, bytes_max=bound.body_bytes_max, depth_max=JSON_DEPTH_MAX)
        if any(bound.route.acts for bound, _ in jobs):
            check_clock(headers.get(CLOCK_HEADER), now_s=self._clock(), skew_s_max=self._clock_skew_s_max)
        # The last call runs in this request's own thread (a batch of one needs no hand-off).
        futures = [self._workers.submit(_dispatch, bound, body, peer) for bound, body in jobs[:-1]]
        last = [_dispatch(jobs[-1][0], jobs[-1][1], peer)] if jobs else []
        results = [*(future.result() for future in futures), *last]
        return 200, {"results": [{"status": status, "body": reply} for status, reply in results]}

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> KeyholderServer:
        self._thread = threading.Thread(target=self.serve_forever, name="keyholder-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._workers.shutdown(wait=False)


def _batch_calls(data: bytes) -> list[tuple[str, bytes]]:
    """The calls of a batch body {"calls": [{"path", "body"}]}, each body re-encoded as bytes."""
    try:
        value = json.loads(data)
    except ValueError:
        raise RequestMalformed("batch body is not JSON") from None
    calls = value.get("calls") if isinstance(value, dict) and set(value) == {"calls"} else None
    if not isinstance(calls, list) or len(calls) > BATCH_CALLS_MAX:
        raise RequestMalformed(f"a batch is {{\"calls\": [...]}} with at most {BATCH_CALLS_MAX} calls")
    out = []
    for call in calls:
        if not (isinstance(call, dict) and set(call) == {"path", "body"} and isinstance(call["path"], str)
                and isinstance(call["body"], dict)):
            raise RequestMalformed("a batched call is {\"path\": str, \"body\": object}")
        out.append((call["path"], json.dumps(call["body"], sort_keys=True, separators=(",", ":")).encode()))
    return out


def _handler_class(server: KeyholderServer, request_timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = request_timeout_s  # applied to the socket in setup(): every read and the keep-alive wait

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("POST")

        def _serve(self, method: str) -> None:
            peer = common_name(self.connection.getpeercert())
            try:
                data = self._read_body(server.body_bytes_max())
            except RequestRefused as error:
                self.close_connection = True  # the unread body makes the stream unusable
                self._reply(error.status, error_body(error))
                if isinstance(error, BodyTooLarge):
                    self._drain()  # let a client still sending finish, so it reads the refusal
                return
            self._reply(*server.answer(method, self.path, peer, self.headers, data))

        def _read_body(self, bytes_max: int) -> bytes:
            text = self.headers.get("Content-Length")
            if text is None:
                return b""
            if not text.isdigit() or len(text) > 12:
                raise RequestMalformed("Content-Length is not a number")
            if int(text) > bytes_max:
                raise BodyTooLarge(f"body of {text} bytes is over {bytes_max}")
            return self.rfile.read(int(text))

        def _drain(self) -> None:
            """Read and drop up to DRAIN_BYTES_MAX of a refused body (the read time-out still applies)."""
            left = min(int(self.headers.get("Content-Length", "0") or 0), DRAIN_BYTES_MAX)
            try:
                while left > 0:
                    chunk = self.rfile.read(min(left, 65_536))
                    if not chunk:
                        return
                    left -= len(chunk)
            except OSError:
                return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
            return

    return Handler
