"""The fault-injecting relay on loopback: bytes pass unchanged, delay holds them, cut resets or blackholes, restore heals."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from coffer.testing.faultproxy import DELAY_MS_MAX, FaultProxy, ProxyError
from coffer.testing.wait import wait_until


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as started:
        yield started


def _round_trip(address: tuple[str, int], payload: bytes, timeout_s: float = 5.0) -> tuple[bytes, float]:
    with socket.create_connection(address, timeout=timeout_s) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received, time.monotonic() - started


def test_bytes_pass_unchanged(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """Whatever goes through comes back byte for byte, and the counters see it."""
    address = proxy.add_link("k1", echo)
    payload = bytes(range(256)) * 1000
    assert payload == _round_trip(address, payload)[0]
    wait_until(lambda: proxy.stats("k1").bytes_down == len(payload), timeout=5, what="counted")
    assert len(payload) == proxy.stats("k1").bytes_up


def test_delay_holds_each_direction(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """With 60 ms each way a round trip takes at least 120 ms; restored to 0 it is answered again at once."""
    address = proxy.add_link("k1", echo)
    proxy.delay("k1", up_ms=60, down_ms=60)
    received, elapsed_s = _round_trip(address, b"ping")
    assert b"ping" == received
    assert elapsed_s >= 0.12  # a lower bound only: the relay can never answer sooner
    assert (60, 60) == (proxy.state("k1").delay_up_ms, proxy.state("k1").delay_down_ms)


def test_cut_resets_live_and_new_connections_and_restore_heals(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """A cut link closes the open connection and resets new ones; after restore the link carries bytes again."""
    address = proxy.add_link("k1", echo)
    live = socket.create_connection(address, timeout=5)
    live.sendall(b"a")
    assert b"a" == live.recv(1)
    proxy.cut("k1")
    with pytest.raises(OSError):  # reset, or the end of a stream that was cut
        live.sendall(b"b")
        if not live.recv(1):
            raise ConnectionResetError("closed by the cut")
    live.close()
    with pytest.raises(OSError), socket.create_connection(address, timeout=5) as fresh:
        fresh.sendall(b"c")
        if not fresh.recv(1):
            raise ConnectionResetError("closed at once")
    assert proxy.stats("k1").refused >= 1
    proxy.restore("k1")
    assert b"again" == _round_trip(address, b"again")[0]


def test_blackhole_accepts_and_never_answers(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """A blackholed link accepts a connection and answers nothing until the caller times out."""
    address = proxy.add_link("k1", echo)
    proxy.cut("k1", blackhole=True)
    with socket.create_connection(address, timeout=0.3) as sock:
        sock.sendall(b"hello")
        with pytest.raises(TimeoutError):
            sock.recv(1)
    proxy.restore("k1")
    assert b"back" == _round_trip(address, b"back")[0]


def test_links_are_independent(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """Cutting one link leaves another untouched."""
    first = proxy.add_link("k1", echo)
    second = proxy.add_link("k2", echo)
    proxy.cut("k1")
    assert b"ok" == _round_trip(second, b"ok")[0]
    with pytest.raises(OSError), socket.create_connection(first, timeout=5) as sock:
        sock.sendall(b"x")
        if not sock.recv(1):
            raise ConnectionResetError("closed at once")


def test_bad_control_calls_are_refused(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """An unknown link, a duplicate name or a delay out of range raise ProxyError."""
    proxy.add_link("k1", echo)
    with pytest.raises(ProxyError, match="no link"):
        proxy.cut("nope")
    with pytest.raises(ProxyError, match="exists"):
        proxy.add_link("k1", echo)
    with pytest.raises(ProxyError, match="delay must be"):
        proxy.delay("k1", up_ms=DELAY_MS_MAX + 1, down_ms=0)


def test_half_close_is_passed_on(proxy: FaultProxy, echo: tuple[str, int]) -> None:
    """A client that shuts down its sending side still gets the whole answer back."""
    address = proxy.add_link("k1", echo)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert b"last words" == received
