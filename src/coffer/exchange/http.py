"""The simulator's small HTTP API, and a client that is an `ExchangeFeed` and a `MarginLedger`.

    GET  /contracts                    configured contracts
    GET  /state                        {"snapshot": ..., "ledger": [...]}, taken atomically
    GET  /fills?after=N&upto=M         fills with N < sequence <= M (at most FILLS_PAGE_MAX)
    GET  /status                       {"halted", "last_sequence", "faults"}
    POST /step   {"trades": n}         match up to n trades now (deterministic)
    POST /fault  {"kind": ..., "arguments": {...}}   inject a fault
Request bodies are at most REQUEST_BYTES_MAX, strict JSON objects; errors are JSON with a type.
Loopback only by default; it is a test and demo tool, never a production endpoint.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from coffer.errors import CofferError
from coffer.exchange.errors import ExchangeUnavailable, InvalidFault, InvalidSnapshot
from coffer.exchange.feed import ExchangeSnapshot, LedgerMarginTotal
from coffer.exchange.model import Contract, Fill
from coffer.exchange.simulator import ExchangeSimulator

__all__ = ["SimulatorServer", "ExchangeClient", "FILLS_PAGE_MAX", "REQUEST_BYTES_MAX", "CLIENT_TIMEOUT_S"]

FILLS_PAGE_MAX = 50_000
REQUEST_BYTES_MAX = 64 * 1024
RESPONSE_BYTES_MAX = 512 * 1024 * 1024
CLIENT_TIMEOUT_S = 10.0


class SimulatorServer:
    """Serves `simulator` on host:port (port 0 picks a free one); optional auto-stepping ticker."""

    def __init__(self, simulator: ExchangeSimulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        handler = _handler(simulator)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self, *, tick_s: float = 0.0, trades_per_tick: int = 1) -> SimulatorServer:
        serve = threading.Thread(target=self._server.serve_forever, name="exchange-sim-http", daemon=True)
        serve.start()
        self._threads.append(serve)
        if tick_s > 0:
            def tick() -> None:
                while not self._stop.wait(tick_s):
                    self.simulator.step(trades_per_tick)

            ticker = threading.Thread(target=tick, name="exchange-sim-ticker", daemon=True)
            ticker.start()
            self._threads.append(ticker)
        return self

    def serve_forever(self, *, tick_s: float = 0.0, trades_per_tick: int = 1) -> None:
        self.start(tick_s=tick_s, trades_per_tick=trades_per_tick)
        try:
            self._stop.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def _handler(simulator: ExchangeSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
            return

        def _reply(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, exc: Exception) -> None:
            self._reply(status, {"error": type(exc).__name__, "message": str(exc)})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urllib.parse.urlsplit(self.path)
            try:
                if url.path == "/contracts":
                    self._reply(200, [c.to_json() for c in simulator.contracts])
                elif url.path == "/state":
                    snapshot, ledger = simulator.snapshot_with_ledger()
                    self._reply(200, {"snapshot": snapshot.to_json(), "ledger": [t.to_json() for t in ledger]})
                elif url.path == "/fills":
                    query = _query(url.query, {"after", "upto"})
                    fills = simulator.fills(query["after"], query["upto"], limit=FILLS_PAGE_MAX)
                    self._reply(200, [f.to_json() for f in fills])
                elif url.path == "/status":
                    self._reply(200, {"halted": simulator.halted, "last_sequence": simulator.last_sequence,
                                      "faults": simulator.faults})
                else:
                    self._reply(404, {"error": "NotFound", "message": url.path})
            except CofferError as exc:
                self._error(400, exc)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            try:
                body = self._body()
                if self.path == "/step":
                    _exact(body, {"trades"})
                    self._reply(200, {"matched": simulator.step(_int(body["trades"], "trades"))})
                elif self.path == "/fault":
                    _exact(body, {"kind", "arguments"})
                    if not isinstance(body["arguments"], dict) or not isinstance(body["kind"], str):
                        raise InvalidFault("kind must be a string and arguments an object")
                    self._reply(200, simulator.inject(body["kind"], **body["arguments"]))
                else:
                    self._reply(404, {"error": "NotFound", "message": self.path})
            except CofferError as exc:
                self._error(400, exc)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > REQUEST_BYTES_MAX:
                raise InvalidFault("request too large")
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                raise InvalidFault("request body is not JSON") from None
            if not isinstance(data, dict):
                raise InvalidFault("request body must be a JSON object")
            return data

    return Handler


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFault(f"{name} must be an integer")
    return value


def _exact(body: dict[str, Any], fields: set[str]) -> None:
    if set(body) != fields:
        raise InvalidFault(f"expected exactly the fields {sorted(fields)}")


def _query(raw: str, fields: set[str]) -> dict[str, int]:
    parsed = urllib.parse.parse_qs(raw, keep_blank_values=True, strict_parsing=False)
    if set(parsed) != fields or any(len(v) != 1 for v in parsed.values()):
        raise InvalidFault(f"expected exactly the query parameters {sorted(fields)}")
    try:
        values = {k: int(v[0], 10) for k, v in parsed.items()}
    except ValueError:
        raise InvalidFault("query parameters must be integers") from None
    if any(v < 0 for v in values.values()):
        raise InvalidFault("query parameters must not be negative")
    return values


class ExchangeClient:
    """The simulator (or any engine serving this API) as an ExchangeFeed and MarginLedger."""

    def __init__(self, base_url: str, *, timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidSnapshot("the exchange URL must be http:// or https://")
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self._ledger: tuple[int, tuple[LedgerMarginTotal, ...]] | None = None

    def _call(self, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data,  # noqa: S310 - scheme checked above
                                         headers={"Content-Type": "application/json"},
                                         method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                raw = response.read(RESPONSE_BYTES_MAX + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(4096).decode(errors="replace")
            raise ExchangeUnavailable(f"exchange answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ExchangeUnavailable(f"exchange unreachable: {type(exc).__name__}") from None
        if len(raw) > RESPONSE_BYTES_MAX:
            raise InvalidSnapshot("exchange response too large")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidSnapshot("exchange response is not JSON") from None

    def contracts(self) -> Sequence[Contract]:
        data = self._call("/contracts")
        if not isinstance(data, list):
            raise InvalidSnapshot("contracts: expected a list")
        return [Contract.from_json(c) for c in data]

    def snapshot(self) -> ExchangeSnapshot:
        data = self._call("/state")
        if not isinstance(data, dict) or set(data) != {"snapshot", "ledger"} or not isinstance(data["ledger"], list):
            raise InvalidSnapshot("state: expected {snapshot, ledger}")
        snapshot = ExchangeSnapshot.from_json(data["snapshot"])
        self._ledger = (snapshot.as_of_sequence, tuple(LedgerMarginTotal.from_json(t) for t in data["ledger"]))
        return snapshot

    def fills(self, after_sequence: int, upto_sequence: int) -> Sequence[Fill]:
        data = self._call(f"/fills?after={int(after_sequence)}&upto={int(upto_sequence)}")
        if not isinstance(data, list):
            raise InvalidSnapshot("fills: expected a list")
        return [Fill.from_json(f) for f in data]

    def margin_totals(self, as_of_sequence: int) -> Sequence[LedgerMarginTotal]:
        if self._ledger is None or self._ledger[0] != as_of_sequence:
            raise InvalidSnapshot("ledger totals are only known as of the newest snapshot")
        return self._ledger[1]

    def step(self, trades: int) -> int:
        return int(self._call("/step", {"trades": trades})["matched"])

    def inject(self, kind: str, **arguments: Any) -> dict[str, Any]:
        result = self._call("/fault", {"kind": kind, "arguments": arguments})
        if not isinstance(result, dict):
            raise InvalidSnapshot("fault: expected an object")
        return result

    def status(self) -> dict[str, Any]:
        result = self._call("/status")
        if not isinstance(result, dict):
            raise InvalidSnapshot("status: expected an object")
        return result
