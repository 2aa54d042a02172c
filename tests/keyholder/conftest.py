"""Fixtures of the key-holder runtime tests: a local CA with certificates for the usual names, a
toy engine mounted on a real `KeyholderServer`, and raw-socket helpers for stalling clients."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coffer.errors import Refused
from coffer.keyholder.routes import Route, RouteTable
from coffer.keyholder.server import KeyholderServer, Mount
from coffer.tls import TlsFiles, issue_certificate

NESTED_BYTES = 600 * 1024


class EchoRefused(Refused):
    """The toy engine's refusal by a rule."""


class ToyEngine:
    """An engine with one read route, one acting route, one that refuses and one with a bug."""

    def status(self, data: bytes) -> dict[str, Any]:
        return {"ok": True}

    def act(self, data: bytes) -> dict[str, Any]:
        return {"echo": data.decode()}

    def refuse(self, data: bytes) -> dict[str, Any]:
        raise EchoRefused("not today", rule="toy.rule")

    def crash(self, data: bytes) -> dict[str, Any]:
        raise ZeroDivisionError("secret-looking 5eed")


TOY_ROUTES = RouteTable("toy", (
    Route("/v1/status", "status", acts=False, peers=frozenset({"coordinator", "monitor"})),
    Route("/v1/act", "act"),
    Route("/v1/refuse", "refuse"),
    Route("/v1/crash", "crash"),
), body_bytes_max=1024 * 1024)


def toy_status(error: Exception) -> int | None:
    return 409 if isinstance(error, Refused) else None


@dataclass
class Pki:
    directory: Path

    def files(self, name: str) -> TlsFiles:
        out = self.directory / name
        if (out / "tls.pem").exists():
            return TlsFiles(self.directory / "ca" / "ca.pem", out / "tls.pem", out / "tls.key")
        return issue_certificate(self.directory / "ca", out, name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def toy_server(pki: Pki) -> Iterator[KeyholderServer]:
    """The toy engine as key holder "keyholder-1" on a free loopback port, handshake time-out 2 s."""
    server = KeyholderServer([Mount(TOY_ROUTES, ToyEngine(), toy_status)], pki.files("keyholder-1"), port=0,
                             handshake_timeout_s=2.0).start()
    yield server
    server.stop()


def idle_tcp(port: int) -> socket.socket:
    """A TCP connection that never says a word (the caller closes it)."""
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def half_handshake(port: int) -> socket.socket:
    """A connection that sends the first bytes of a TLS ClientHello and then stalls."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(bytes.fromhex("160301"))  # a handshake record header, and nothing after it
    return raw


def raw_tls(port: int, files: TlsFiles) -> ssl.SSLSocket:
    """A mutual-TLS socket as `files` names its holder (for requests written by hand)."""
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    context.load_cert_chain(str(files.cert), str(files.key))
    context.check_hostname = False
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))


def nested_json(size_bytes: int = NESTED_BYTES) -> bytes:
    """A body of `size_bytes` that nests arrays as deep as it can."""
    half = size_bytes // 2
    return b"[" * half + b"]" * half


def read_reply(sock: ssl.SSLSocket) -> tuple[int, dict[str, Any]]:
    """One HTTP reply read from `sock`: its status and JSON body."""
    response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    response.begin()
    return response.status, json.loads(response.read())
