"""The coordinator's one client for every key holder: HTTP/1.1 over mutual TLS, kept open.

The server's certificate must carry the name of the key holder we meant to reach ("signer-N",
"cosigner-N"), on top of the CA check. Every request carries the caller's clock
(`Coffer-Time-Ms`), which a key holder compares with its own before it acts. A small pool of
persistent connections lets many calls run at once without a handshake each; with batching on,
calls made while `INFLIGHT_MAX` requests are on the wire queue up and travel together as one
`/v1/batch` request. Replies come back as (status, JSON object); engines' clients turn a refusal
into their own typed error. A key holder that cannot be reached raises `KeyholderUnavailable`.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from coffer.keyholder.errors import KeyholderUnavailable
from coffer.keyholder.hardening import CLOCK_HEADER
from coffer.keyholder.routes import BATCH_PATH
from coffer.keyholder.server import BATCH_CALLS_MAX, common_name
from coffer.tls import TlsFiles, client_context

__all__ = ["KeyholderClient", "ReplyMalformed", "RPC_TIMEOUT_S", "POOL_MAX", "REPLY_BYTES_MAX"]

RPC_TIMEOUT_S: Final = 30.0
POOL_MAX: Final = 16
INFLIGHT_MAX: Final = 2
REPLY_BYTES_MAX: Final = 16 * 1024 * 1024

Reply = tuple[int, dict[str, Any]]


class ReplyMalformed(KeyholderUnavailable):
    """The key holder answered with something that is not a JSON object (or a bad batch reply)."""


class _Connection(http.client.HTTPSConnection):
    expected_name = ""
    tls_name: str | None = None  # the address the certificate must carry, when not the one dialled
    tls_context: ssl.SSLContext | None = None

    def connect(self) -> None:
        if self.tls_name is None or self.tls_context is None:
            super().connect()
        else:  # dialled through a relay (a proxy, a tunnel): verify the key holder's own address
            http.client.HTTPConnection.connect(self)
            self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=self.tls_name)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Any certificate of the local CA verifies; only key holder N's own may answer for N.
        name = common_name(dict(self.sock.getpeercert() or {}))
        if name != self.expected_name:
            self.close()
            raise ssl.SSLError(f"peer certificate names {name!r}, expected {self.expected_name!r}")


def _locked() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(slots=True, eq=False)
class _Pending:
    path: str
    body: dict[str, Any]
    result: Reply | None = None
    error: BaseException | None = None
    # Released exactly once for a queued call: when its result is in, or when its thread is handed
    # a batch (its own call first) to send.
    wake: Any = field(default_factory=_locked)
    batch: list[_Pending] | None = None


class _Batcher:
    """Pipelining: a lone call is sent at once (a batch of one); under load each request carries
    many calls. A sender that finds calls queued when its reply is in hands them, as the next
    batch, to the thread of the first of them; every other waiter is woken once, when its own
    result is in (no thundering herd on a shared condition)."""

    def __init__(self, send: Callable[[list[tuple[str, dict[str, Any]]]], list[Reply]]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._inflight = 0

    def call(self, path: str, body: dict[str, Any]) -> Reply:
        item = _Pending(path, body)
        with self._lock:
            if self._inflight < INFLIGHT_MAX:
                self._inflight += 1
                item.batch = [item]
            else:
                self._queue.append(item)
        if item.batch is None:
            item.wake.acquire()  # until the result is in, or a batch is handed to this thread
        if item.batch is not None:
            self._run(item, item.batch)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _run(self, own: _Pending, batch: list[_Pending]) -> None:
        """Send `batch` (holding `own`), wake its other callers, hand queued calls on."""
        try:
            self._deliver(batch)
        finally:
            with self._lock:
                if self._queue:
                    following, self._queue = self._queue[:BATCH_CALLS_MAX], self._queue[BATCH_CALLS_MAX:]
                else:
                    following = []
                    self._inflight -= 1
            for item in batch:
                if item is not own:
                    item.wake.release()
            if following:
                following[0].batch = following
                following[0].wake.release()

    def _deliver(self, batch: list[_Pending]) -> None:
        try:
            results = self._send([(item.path, item.body) for item in batch])
        except BaseException as error:  # every caller in the batch sees the transport failure
            for item in batch:
                item.error = error
            return
        for item, result in zip(batch, results, strict=True):
            item.result = result


class KeyholderClient:
    """Calls one key holder, named `peer_name` on its certificate. Thread-safe."""

    def __init__(self, peer_name: str, port: int, tls: TlsFiles, *, host: str = "127.0.0.1",
                 timeout_s: float = RPC_TIMEOUT_S, batching: bool = False,
                 clock: Callable[[], float] = time.time, tls_name: str | None = None) -> None:
        """`host`:`port` is where to dial; `tls_name` (default: `host`) the address or DNS name the key
        holder's certificate must carry, when a relay stands between."""
        self.peer_name = peer_name
        self.port = port
        self._host = host
        self._tls_name = tls_name
        self._timeout_s = timeout_s
        self._clock = clock
        self._context: ssl.SSLContext = client_context(tls)
        self._context.check_hostname = True
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._send_batch) if batching else None

    def __repr__(self) -> str:
        return f"KeyholderClient({self.peer_name!r}, port={self.port})"

    def _take(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        connection = _Connection(self._host, self.port, context=self._context, timeout=self._timeout_s)
        connection.expected_name = self.peer_name
        if self._tls_name is not None:
            connection.tls_name, connection.tls_context = self._tls_name, self._context
        return connection

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < POOL_MAX:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def call(self, path: str, body: dict[str, Any] | None = None, *, method: str = "POST") -> Reply:
        """One call: (status, reply object). With batching on, concurrent POSTs share requests."""
        if self._batcher is not None and method == "POST":
            return self._batcher.call(path, body or {})
        return self._decode(*self._request(method, path, None if body is None else _encode(body)))

    def call_raw(self, path: str, payload: bytes, *, method: str = "POST") -> Reply:
        """A call whose body is already encoded (a document the caller serialised itself)."""
        return self._decode(*self._request(method, path, payload))

    def _request(self, method: str, path: str, payload: bytes | None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", CLOCK_HEADER: str(int(self._clock() * 1000))}
        for attempt in (1, 2):  # a pooled socket the server closed is retried once on a fresh one
            connection = self._take()
            fresh = connection.sock is None
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read(REPLY_BYTES_MAX + 1)
                status = response.status
                closing = response.will_close
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if attempt == 1 and not fresh:
                    # A pooled socket may have died with a restarted key holder. Retrying is safe: a
                    # request that did arrive is refused the second time (its session id is spent).
                    continue
                raise KeyholderUnavailable(self.peer_name, type(error).__name__) from None
            if closing:
                connection.close()
            else:
                self._give_back(connection)
            return status, data
        raise KeyholderUnavailable(self.peer_name, "no connection")

    def _decode(self, status: int, data: bytes) -> Reply:
        try:
            value = json.loads(data)
        except ValueError:
            raise ReplyMalformed(self.peer_name, f"reply is not JSON (status {status})") from None
        if not isinstance(value, dict):
            raise ReplyMalformed(self.peer_name, "reply is not an object")
        return status, value

    def _send_batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Reply]:
        payload = _encode({"calls": [{"path": path, "body": body} for path, body in calls]})
        status, reply = self._decode(*self._request("POST", BATCH_PATH, payload))
        if status != 200:  # the whole batch was refused (limits, peer name, clock): each call sees why
            return [(status, reply)] * len(calls)
        results = reply.get("results")
        if set(reply) != {"results"} or not isinstance(results, list) or len(results) != len(calls):
            raise ReplyMalformed(self.peer_name, "batch reply does not answer every call")
        out = []
        for result in results:
            if not isinstance(result, dict) or set(result) != {"status", "body"} or not isinstance(
                    result["status"], int) or not isinstance(result["body"], dict):
                raise ReplyMalformed(self.peer_name, "malformed batch result")
            out.append((result["status"], result["body"]))
        return out


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
