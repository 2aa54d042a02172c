"""A fault-injecting TCP relay for tests: the link between the coordinator and one key holder.

`tc netem` is missing from these kernels, so delay and loss go through this relay instead. Each
link listens on its own port in the root namespace and forwards bytes, unread and unchanged (TLS
runs end to end through it), to one target. Per link, at any time: a delay per direction
(milliseconds, applied to each chunk on arrival, order kept), `cut()` (live connections closed;
new ones reset at once, or with `blackhole=True` accepted and never answered) and `restore()`.
One asyncio loop in one daemon thread serves every link. Test-only.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

from coffer.errors import CofferError

__all__ = ["FaultProxy", "LinkState", "LinkStats", "ProxyError", "CHUNK_BYTES", "DELAY_MS_MAX"]

CHUNK_BYTES: Final = 64 * 1024
DELAY_MS_MAX: Final = 10_000
QUEUE_CHUNKS_MAX: Final = 1024
CONNECT_TIMEOUT_S: Final = 5.0
CONTROL_TIMEOUT_S: Final = 10.0
T = TypeVar("T")


class ProxyError(CofferError):
    """An unknown link, a delay out of range, or a control call on a closed proxy."""


@dataclass(frozen=True, slots=True)
class LinkState:
    delay_up_ms: int = 0  # coordinator -> key holder
    delay_down_ms: int = 0  # key holder -> coordinator
    cut: bool = False
    blackhole: bool = False


@dataclass(slots=True)
class LinkStats:
    accepted: int = 0
    refused: int = 0  # reset or blackholed while cut
    closed_by_cut: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(slots=True)
class _Link:
    name: str
    target: tuple[str, int]
    server: asyncio.base_events.Server
    state: LinkState = field(default_factory=LinkState)
    stats: LinkStats = field(default_factory=LinkStats)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the connection reset, not a clean end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.close()


class FaultProxy:
    """Links by name; every control call is thread-safe and takes effect before it returns."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._links: dict[str, _Link] = {}
        self._closed = False

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coroutine.close()
            raise ProxyError("the proxy is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=CONTROL_TIMEOUT_S)

    def _link(self, name: str) -> _Link:
        try:
            return self._links[name]
        except KeyError:
            raise ProxyError(f"no link {name!r}") from None

    # -- control --------------------------------------------------------------------------------------
    def add_link(self, name: str, target: tuple[str, int], *, host: str = "127.0.0.1") -> tuple[str, int]:
        """Listen on `host` (a free port) and forward to `target`; returns where to dial."""
        if name in self._links:
            raise ProxyError(f"link {name!r} exists")
        return self._run(self._add(name, target, host))

    async def _add(self, name: str, target: tuple[str, int], host: str) -> tuple[str, int]:
        holder: list[_Link] = []
        server = await asyncio.start_server(lambda r, w: self._accept(holder[0], r, w), host, 0,
                                            reuse_address=True)
        link = _Link(name, target, server)
        holder.append(link)
        self._links[name] = link
        address = server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    def delay(self, name: str, *, up_ms: int, down_ms: int) -> None:
        """Delay each chunk by `up_ms` towards the key holder and `down_ms` back (0: none)."""
        for value in (up_ms, down_ms):
            if not 0 <= value <= DELAY_MS_MAX:
                raise ProxyError(f"delay must be 0..{DELAY_MS_MAX} ms, got {value}")
        link = self._link(name)
        self._run(self._set(link, replace(link.state, delay_up_ms=up_ms, delay_down_ms=down_ms)))

    def cut(self, name: str, *, blackhole: bool = False) -> None:
        """Close every live connection of the link; new ones are reset (or, blackholed, left hanging)."""
        link = self._link(name)
        self._run(self._cut(link, blackhole))

    def restore(self, name: str) -> None:
        """Undo `cut()` (delays stay as set); hanging blackholed connections are closed."""
        link = self._link(name)
        self._run(self._restore(link))

    def state(self, name: str) -> LinkState:
        return self._link(name).state

    def stats(self, name: str) -> LinkStats:
        return replace(self._link(name).stats)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._run(self._shutdown())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CONTROL_TIMEOUT_S)

    # -- inside the loop ------------------------------------------------------------------------------
    async def _set(self, link: _Link, state: LinkState) -> None:
        link.state = state

    async def _cut(self, link: _Link, blackhole: bool) -> None:
        link.state = replace(link.state, cut=True, blackhole=blackhole)
        link.stats.closed_by_cut += len(link.writers)
        self._close_all(link)

    async def _restore(self, link: _Link) -> None:
        if link.state.blackhole:
            self._close_all(link)
        link.state = replace(link.state, cut=False, blackhole=False)

    @staticmethod
    def _close_all(link: _Link) -> None:
        for writer in list(link.writers):
            _reset(writer)
        link.writers.clear()

    async def _shutdown(self) -> None:
        for link in self._links.values():
            link.server.close()
            self._close_all(link)
        for link in self._links.values():
            await link.server.wait_closed()

    async def _accept(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if link.state.cut:
            link.stats.refused += 1
            if link.state.blackhole:  # accepted, read and discarded, never answered
                link.writers.add(writer)
                try:
                    while await reader.read(CHUNK_BYTES):
                        pass
                except OSError:
                    pass
                return
            _reset(writer)
            return
        link.stats.accepted += 1
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*link.target), timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError):
            _reset(writer)
            return
        link.writers.update((writer, upstream_writer))
        try:
            await asyncio.gather(self._pump(link, reader, upstream_writer, up=True),
                                 self._pump(link, upstream_reader, writer, up=False))
        finally:
            for end in (writer, upstream_writer):
                link.writers.discard(end)
                end.close()

    async def _pump(self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    up: bool) -> None:
        """Copy one direction: each chunk leaves `delay` after it arrived, in arrival order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=QUEUE_CHUNKS_MAX)
        sender = asyncio.ensure_future(self._send(link, queue, writer, up=up))
        try:
            while not sender.done():
                data = await reader.read(CHUNK_BYTES)
                delay_ms = link.state.delay_up_ms if up else link.state.delay_down_ms
                await queue.put((loop.time() + delay_ms / 1000, data))
                if not data:
                    break
            await sender  # an end of stream is passed on as one (half-close); _accept closes both ends
        except (OSError, asyncio.CancelledError):
            sender.cancel()
            writer.close()

    @staticmethod
    async def _send(link: _Link, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, *,
                    up: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
                if up:
                    link.stats.bytes_up += len(data)
                else:
                    link.stats.bytes_down += len(data)
        except OSError:
            return
