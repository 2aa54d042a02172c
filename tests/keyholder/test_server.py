"""The one key-holder server with a toy engine: the order of its checks, each refusal typed and
naming its rule, one error shape, no secret in errors, keep-alive, batching, and connections that
stall or idle never holding up anyone else."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from typing import Any

import pytest

from coffer.keyholder.client import KeyholderClient
from coffer.keyholder.errors import KeyholderUnavailable
from coffer.keyholder.hardening import CLOCK_HEADER
from coffer.keyholder.server import KeyholderServer

from .conftest import Pki, half_handshake, idle_tcp, nested_json, raw_tls, read_reply


def _client(server: KeyholderServer, pki: Pki, name: str = "coordinator", **kwargs: Any) -> KeyholderClient:
    return KeyholderClient("keyholder-1", server.port, pki.files(name), timeout_s=10, **kwargs)


def test_a_route_answers_its_allowed_peer(toy_server: KeyholderServer, pki: Pki) -> None:
    """The coordinator's certificate may call an acting route; the engine's reply comes back."""
    assert (200, {"echo": '{"a":1}'}) == _client(toy_server, pki).call("/v1/act", {"a": 1})


def test_unknown_route_is_refused_by_rule(toy_server: KeyholderServer, pki: Pki) -> None:
    """A path no engine mounted gets 404 with rule route.unknown."""
    status, body = _client(toy_server, pki).call("/v1/nothing", {})
    assert (404, "RouteUnknown", "route.unknown") == (status, body["error"], body["rule"])


def test_peer_name_is_checked_per_route(toy_server: KeyholderServer, pki: Pki) -> None:
    """A "monitor" certificate may read the status route but not call an acting one (rule peer.name)."""
    monitor = _client(toy_server, pki, "monitor")
    assert (200, {"ok": True}) == monitor.call("/v1/status", {})
    status, body = monitor.call("/v1/act", {"a": 1})
    assert (403, "PeerNotAllowed", "peer.name") == (status, body["error"], body["rule"])


def test_certificate_of_another_key_holder_is_refused(toy_server: KeyholderServer, pki: Pki) -> None:
    """A key holder's own certificate ("cosigner-2") calls nothing on another key holder."""
    status, body = _client(toy_server, pki, "cosigner-2").call("/v1/status", {})
    assert (403, "peer.name") == (status, body["rule"])


def test_client_refuses_a_server_with_the_wrong_name(toy_server: KeyholderServer, pki: Pki) -> None:
    """The client pins the name it meant to reach: "keyholder-2" cannot answer for it."""
    client = KeyholderClient("keyholder-2", toy_server.port, pki.files("coordinator"), timeout_s=5)
    with pytest.raises(KeyholderUnavailable) as caught:
        client.call("/v1/status", {})
    assert "keyholder-2" == caught.value.peer


def test_body_over_the_limit_is_refused(toy_server: KeyholderServer, pki: Pki) -> None:
    """A body over the table's size limit gets 413 with rule body.size before it is read."""
    status, body = _client(toy_server, pki).call_raw("/v1/act", b"{" + b" " * (1024 * 1024 + 10) + b"}")
    assert (413, "BodyTooLarge", "body.size") == (status, body["error"], body["rule"])


def test_deeply_nested_json_is_refused_and_the_server_survives(toy_server: KeyholderServer, pki: Pki) -> None:
    """600 KB of nested arrays gets 400 with rule json.depth; the next request is served."""
    client = _client(toy_server, pki)
    status, body = client.call_raw("/v1/act", nested_json())
    assert (400, "JsonTooDeep", "json.depth") == (status, body["error"], body["rule"])
    assert 200 == client.call("/v1/status", {})[0]


def test_skewed_clock_is_refused_on_acting_routes(toy_server: KeyholderServer, pki: Pki) -> None:
    """A caller whose clock is 10 minutes off is refused (rule clock.skew) on an acting route, not on a read."""
    skewed = _client(toy_server, pki, clock=lambda: time.time() + 600)
    status, body = skewed.call("/v1/act", {"a": 1})
    assert (409, "ClockSkewed", "clock.skew") == (status, body["error"], body["rule"])
    assert 200 == skewed.call("/v1/status", {})[0]


def test_request_without_a_clock_is_refused(toy_server: KeyholderServer, pki: Pki) -> None:
    """An acting request with no Coffer-Time-Ms header is refused with rule clock.skew."""
    with raw_tls(toy_server.port, pki.files("coordinator")) as sock:
        sock.sendall(b"POST /v1/act HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        status, body = read_reply(sock)
    assert (409, "clock.skew") == (status, body["rule"])


def test_engine_refusal_has_the_one_error_shape(toy_server: KeyholderServer, pki: Pki) -> None:
    """An engine's refusal comes back as {error, rule, message} with the engine's status."""
    status, body = _client(toy_server, pki).call("/v1/refuse", {})
    assert (409, {"error", "rule", "message"}, "toy.rule") == (status, set(body), body["rule"])


def test_a_bug_answers_500_with_its_type_only(toy_server: KeyholderServer, pki: Pki) -> None:
    """An unexpected exception is reported by type, never with its arguments."""
    status, body = _client(toy_server, pki).call("/v1/crash", {})
    assert (500, "InternalError", "ZeroDivisionError") == (status, body["error"], body["message"])
    assert "5eed" not in json.dumps(body)


def test_batch_runs_each_call_and_checks_each_peer(toy_server: KeyholderServer, pki: Pki) -> None:
    """Concurrent calls travel as /v1/batch; each result keeps its own status; a batch naming a route the
    caller may not call is refused whole (rule peer.name)."""
    client = _client(toy_server, pki, batching=True)
    results: dict[int, tuple[int, dict[str, Any]]] = {}

    def call(index: int) -> None:
        results[index] = client.call("/v1/refuse" if index % 2 else "/v1/act", {"i": index})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {i: 409 if i % 2 else 200 for i in range(12)} == {i: r[0] for i, r in results.items()}
    status, body = _client(toy_server, pki, "monitor").call(
        "/v1/batch", {"calls": [{"path": "/v1/status", "body": {}}, {"path": "/v1/act", "body": {}}]})
    assert (403, "peer.name") == (status, body["rule"])


def test_keep_alive_serves_many_requests_on_one_connection(toy_server: KeyholderServer, pki: Pki) -> None:
    """HTTP/1.1 keep-alive: three requests written on one TLS connection get three replies."""
    now_ms = str(int(time.time() * 1000))
    request = (f"POST /v1/act HTTP/1.1\r\nHost: x\r\n{CLOCK_HEADER}: {now_ms}\r\nContent-Length: 2\r\n\r\n{{}}"
               ).encode()
    with raw_tls(toy_server.port, pki.files("coordinator")) as sock:
        replies = []
        for _ in range(3):
            sock.sendall(request)
            replies.append(read_reply(sock))
    assert [(200, {"echo": "{}"})] * 3 == replies


def test_idle_and_half_handshake_connections_do_not_stall_the_server(toy_server: KeyholderServer, pki: Pki) -> None:
    """While an idle TCP connection and a half-done TLS handshake hang, another client is served."""
    with idle_tcp(toy_server.port), half_handshake(toy_server.port):
        assert (200, {"ok": True}) == _client(toy_server, pki).call("/v1/status", {})


def test_stalled_handshake_is_cut_off_by_its_time_out(toy_server: KeyholderServer) -> None:
    """The server closes a connection whose handshake does not finish within its time-out (2 s here)."""
    with half_handshake(toy_server.port) as raw:
        raw.settimeout(20)
        assert b"" == raw.recv(1024)  # closed by the server, not by our own time-out


def _client_hello() -> bytes:
    """The first flight of a real TLS client: a valid ClientHello record."""
    outgoing = ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def _closed_by_peer(raw: socket.socket) -> bool:
    raw.setblocking(False)
    try:
        return raw.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        raw.setblocking(True)


def test_dripped_handshake_is_cut_off_at_its_deadline(toy_server: KeyholderServer) -> None:
    """A client dripping a valid ClientHello one byte every 0.2 s (each read well within the per-read
    time-out) is still cut off by the handshake deadline (2 s here), long before it would finish."""
    hello = _client_hello()
    assert len(hello) > 150
    closed = False
    with idle_tcp(toy_server.port) as raw:
        for byte in hello[:150]:  # 30 s of dripping at most
            try:
                raw.sendall(bytes([byte]))
            except OSError:
                closed = True
            closed = closed or _closed_by_peer(raw)
            if closed:
                break
            time.sleep(0.2)
    assert closed


def test_open_connections_are_bounded_and_slots_come_back(pki: Pki) -> None:
    """With room for two connections, a third is refused while two idle ones hang; once they go, it is served."""
    from coffer.keyholder.server import Mount
    from coffer.testing import wait_until

    from .conftest import TOY_ROUTES, ToyEngine, toy_status

    server = KeyholderServer([Mount(TOY_ROUTES, ToyEngine(), toy_status)], pki.files("keyholder-1"), port=0,
                             connections_max=2).start()
    try:
        client = KeyholderClient("keyholder-1", server.port, pki.files("coordinator"), timeout_s=5)
        with idle_tcp(server.port), idle_tcp(server.port):
            wait_until(lambda: _refused(client), timeout=30, what="third connection refused")
        assert (200, {"ok": True}) == wait_until(lambda: _served(client), timeout=30, what="slot back")
    finally:
        server.stop()


def _refused(client: KeyholderClient) -> bool:
    try:
        client.call("/v1/status", {})
    except KeyholderUnavailable:
        return True
    client.close()
    return False


def _served(client: KeyholderClient) -> tuple[int, dict[str, Any]] | None:
    try:
        return client.call("/v1/status", {})
    except KeyholderUnavailable:
        return None
