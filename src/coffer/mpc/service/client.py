"""The coordinator's connection to one co-signer: HTTP/1.1 over mutual TLS, kept open.

A small pool of persistent connections per co-signer lets many sessions run at once without a
new handshake each time. A refusal comes back as the typed error the co-signer raised, naming
the co-signer (`CosignerRefused.cosigner`) and any party it blamed; a dead co-signer raises
`CosignerUnavailable`. Replies are parsed strictly (`ProtocolViolation(sender=co-signer)`).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from coffer.mpc.errors import InvalidSignatureShare
from coffer.mpc.service.errors import (
    CosignerRefused,
    CosignerUnavailable,
    OpaqueMessageRefused,
    ProtocolViolation,
    SessionReplayed,
    SpendNotApproved,
    UnknownKey,
)
from coffer.mpc.service.wire import BODY_BYTES_MAX, encode_body
from coffer.tls import TlsFiles, client_context

__all__ = ["CosignerClient", "RPC_TIMEOUT_S", "POOL_MAX"]

RPC_TIMEOUT_S: Final = 30.0
POOL_MAX: Final = 16
INFLIGHT_MAX: Final = 2
BATCH_CALLS_MAX: Final = 64
BATCH_PATH: Final = "/v1/batch"


class _Connection(http.client.HTTPSConnection):
    expected_name = ""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Any certificate of the local CA verifies; only co-signer N's own may answer for N.
        peer: dict[str, Any] = dict(self.sock.getpeercert() or {})
        names = [pair[1] for rdn in peer.get("subject", ()) for pair in rdn if pair[0] == "commonName"]
        if names != [self.expected_name]:
            self.close()
            raise ssl.SSLError(f"peer certificate names {names}, expected {self.expected_name!r}")


def _locked() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(slots=True, eq=False)
class _Pending:
    path: str
    body: dict[str, Any]
    result: tuple[int, dict[str, Any]] | None = None
    error: BaseException | None = None
    # Released exactly once for a queued call: when its result is in, or when its thread is handed
    # a batch (its own call first) to send.
    wake: Any = field(default_factory=_locked)
    batch: list[_Pending] | None = None


class _Batcher:
    """Pipelining: calls made while INFLIGHT_MAX batches are on the wire queue up and go together.

    A lone call is sent at once (a batch of one); under load each HTTP request carries many
    calls, which the co-signer runs concurrently (so their durable writes share an fsync). A
    sender that finds calls queued when its reply is in hands them, as the next batch, to the
    thread of the first of them; every other waiter is woken once, when its own result is in
    (no thundering herd on a shared condition).
    """

    def __init__(self, send: Callable[[list[tuple[str, dict[str, Any]]]], list[tuple[int, dict[str, Any]]]]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._inflight = 0

    def call(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
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
            if len(results) != len(batch):
                raise ProtocolViolation("batch reply does not answer every call", sender=None)
        except BaseException as error:  # every caller in the batch sees the transport failure
            for item in batch:
                item.error = error
            return
        for item, result in zip(batch, results, strict=True):
            item.result = result


class CosignerClient:
    """Calls one co-signer's endpoints. Thread-safe."""

    def __init__(self, cosigner_id: int, port: int, tls: TlsFiles, *, host: str = "127.0.0.1",
                 timeout_s: float = RPC_TIMEOUT_S, batching: bool = True) -> None:
        self.cosigner_id = cosigner_id
        self.port = port
        self._host = host
        self._timeout_s = timeout_s
        self._context: ssl.SSLContext = client_context(tls)
        self._context.check_hostname = True
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._batcher = _Batcher(self._send_batch) if batching else None

    def __repr__(self) -> str:
        return f"CosignerClient(id={self.cosigner_id}, port={self.port})"

    def _take(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        connection = _Connection(self._host, self.port, context=self._context, timeout=self._timeout_s)
        connection.expected_name = f"cosigner-{self.cosigner_id}"
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

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request; with batching on, concurrent calls share HTTP requests (/v1/batch)."""
        if self._batcher is None:
            status, data = self._post(path, encode_body(body))
            return self._decode(status, data)
        status, reply = self._batcher.call(path, body)
        if status == 200:
            return reply
        raise _error(self.cosigner_id, status, reply)

    def _post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a pooled socket the server closed is retried once on a fresh one
            connection = self._take()
            fresh = connection.sock is None
            try:
                connection.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read(BODY_BYTES_MAX + 1)
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if attempt == 1 and not fresh:
                    # A pooled socket may have died with a restarted co-signer. Retrying is safe: a
                    # request that did arrive is refused the second time (its session id is spent).
                    continue
                raise CosignerUnavailable(self.cosigner_id, type(error).__name__) from None
            self._give_back(connection)
            return status, data
        raise CosignerUnavailable(self.cosigner_id, "no connection")

    def _send_batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        status, data = self._post(BATCH_PATH, encode_body({"calls": [{"path": p, "body": b} for p, b in calls]}))
        reply = self._decode(status, data)
        results = reply.get("results")
        if set(reply) != {"results"} or not isinstance(results, list) or len(results) != len(calls):
            raise ProtocolViolation("batch reply does not answer every call", sender=self.cosigner_id)
        out = []
        for result in results:
            if not isinstance(result, dict) or set(result) != {"status", "body"} or not isinstance(
                    result["status"], int) or not isinstance(result["body"], dict):
                raise ProtocolViolation("malformed batch result", sender=self.cosigner_id)
            out.append((result["status"], result["body"]))
        return out

    def _decode(self, status: int, data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except ValueError:
            raise ProtocolViolation("reply is not JSON", sender=self.cosigner_id) from None
        if not isinstance(value, dict):
            raise ProtocolViolation("reply is not an object", sender=self.cosigner_id)
        if status == 200:
            return value
        raise _error(self.cosigner_id, status, value)


def _error(cosigner: int, status: int, body: dict[str, Any]) -> Exception:
    kind, message = str(body.get("error", "")), str(body.get("message", ""))[:500]
    rule = str(body.get("rule") or kind or "refused")
    culprits = tuple(c for c in body.get("culprits") or () if isinstance(c, int))
    if kind == "SessionReplayed":
        return SessionReplayed(message, cosigner=cosigner)
    if kind == "OpaqueMessageRefused":
        return OpaqueMessageRefused(message, cosigner=cosigner)
    if kind == "SpendNotApproved":
        return SpendNotApproved(message, rule=rule, cosigner=cosigner)
    if kind == "UnknownKey" or status == 404:
        return UnknownKey(f"co-signer {cosigner}: {message}")
    if kind in ("InvalidSignatureShare",) and culprits:
        return InvalidSignatureShare(message, culprits=culprits)
    if status == 400 and "sender" in body:
        sender = body["sender"]
        # A co-signer blaming a relayed message names its author; None means it blames the coordinator.
        return ProtocolViolation(f"co-signer {cosigner} refused a message: {message}",
                                 sender=sender if isinstance(sender, int) else None)
    return CosignerRefused(message, rule=rule, cosigner=cosigner, culprits=culprits)
