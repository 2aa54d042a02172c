"""The coordinator's connection to one ECDSA co-signer: HTTP/1.1 over mutual TLS, kept open.

The server certificate must name "cosigner-N" for the co-signer N we meant to reach (pinned
here, on top of the CA check). A refusal comes back as the typed error the co-signer raised,
naming the co-signer and the parties it blamed; a dead co-signer raises `CosignerUnavailable`.
Replies are parsed strictly (`ProtocolViolation(sender=co-signer)`).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from typing import Any, Final

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

__all__ = ["EcdsaClient", "RPC_TIMEOUT_S", "POOL_MAX"]

RPC_TIMEOUT_S: Final = 30.0
POOL_MAX: Final = 8


class _Connection(http.client.HTTPSConnection):
    expected_name = ""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer: dict[str, Any] = dict(self.sock.getpeercert() or {})
        names = [pair[1] for rdn in peer.get("subject", ()) for pair in rdn if pair[0] == "commonName"]
        if names != [self.expected_name]:
            self.close()
            raise ssl.SSLError(f"peer certificate names {names}, expected {self.expected_name!r}")


class EcdsaClient:
    """Calls one ECDSA co-signer's endpoints. Thread-safe (a small pool of open connections)."""

    def __init__(self, cosigner_id: int, port: int, tls: TlsFiles, *, host: str = "127.0.0.1",
                 timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.cosigner_id = cosigner_id
        self.port = port
        self._host = host
        self._timeout_s = timeout_s
        self._context: ssl.SSLContext = client_context(tls)
        self._context.check_hostname = True
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EcdsaClient(id={self.cosigner_id}, port={self.port})"

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
        payload = encode_body(body)
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
                    # Safe to retry: a request that did arrive is refused the second time (session id spent).
                    continue
                raise CosignerUnavailable(self.cosigner_id, type(error).__name__) from None
            self._give_back(connection)
            return self._decode(status, data)
        raise CosignerUnavailable(self.cosigner_id, "no connection")

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
    culprits = tuple(c for c in body.get("culprits") or () if isinstance(c, int) and not isinstance(c, bool))
    if kind == "SessionReplayed":
        return SessionReplayed(message, cosigner=cosigner)
    if kind == "OpaqueMessageRefused":
        return OpaqueMessageRefused(message, cosigner=cosigner)
    if kind == "SpendNotApproved":
        return SpendNotApproved(message, rule=rule, cosigner=cosigner)
    if kind == "UnknownKey" or status == 404:
        return UnknownKey(f"co-signer {cosigner}: {message}")
    if status == 400 and "sender" in body:
        sender = body["sender"]
        # A co-signer blaming a relayed message names its author; None means it blames the coordinator.
        return ProtocolViolation(f"co-signer {cosigner} refused a message: {message}",
                                 sender=sender if isinstance(sender, int) and not isinstance(sender, bool) else None)
    return CosignerRefused(message, rule=rule, cosigner=cosigner, culprits=culprits)
