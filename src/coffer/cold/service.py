"""The cold signer as a process: `coffer signer --id N --home DIR` serves HTTP with mutual TLS,
and `coffer signer sign` works offline on files. Also the coordinator's HTTP client for it.

Everything secret stays in the signer's own directory (outside the coordinator's home, see
coffer.layout): its SoftHSM2 token, its sealed seed, its own database, its TLS key. The pins
(attestation key, operators, policy, halt key) are read from its pins.json; without them, or without a fresh "not halted" notice from the
coordinator, the signer refuses to sign.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.custody import SignerUnavailable
from coffer.cold.errors import BundleInvalid, ColdError, PsbtInvalid, SignerRefused
from coffer.cold.guards import PolicyRequestGuard
from coffer.cold.keystore import SeedVault
from coffer.cold.signer import ApprovedOutput, ColdSigner, SignerStore
from coffer.errors import CofferError
from coffer.layout import KeyholderKind, keyholder_home, keyholder_tls
from coffer.log import get_logger
from coffer.tls import TlsFiles, client_context, server_context

__all__ = ["SignerProcess", "HttpSignerClient", "serve_signer", "signer_directory", "signer_tls",
           "REQUEST_BYTES_MAX", "RPC_TIMEOUT_S"]

REQUEST_BYTES_MAX = 16_000_000
RPC_TIMEOUT_S = 30.0
HALT_POLL_S = 1.0
log = get_logger("coffer.cold.service")


def signer_directory(home: Path, signer_id: int) -> Path:
    return keyholder_home(home, KeyholderKind.SIGNER, signer_id)


def signer_tls(home: Path, signer_id: int) -> TlsFiles:
    return keyholder_tls(signer_directory(home, signer_id))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PinnedGuards:
    """The request guard and the halt guard of a signer, built from its pins when they exist."""

    def __init__(self, directory: Path, signer_id: int) -> None:
        self._directory = directory
        self._signer_id = signer_id
        self._lock = threading.Lock()
        self._loaded: tuple[float, PolicyRequestGuard, Any] | None = None

    def _current(self) -> tuple[PolicyRequestGuard, Any]:
        from coffer.pins import PINS_FILE, PinsInvalid, SignerPins
        from coffer.policy.engine import Route
        from coffer.policy.guard import SqliteSignedHistory
        from coffer.recon.notice import HaltWatcher, http_notice_fetcher

        path = self._directory / PINS_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise SignerRefused("no pins: the set-up ceremony has not pinned the policy", rule="pins.missing",
                                signer_id=self._signer_id) from None
        with self._lock:
            if self._loaded is None or self._loaded[0] != mtime:
                try:
                    pins = SignerPins.load(self._directory)
                except PinsInvalid as exc:
                    raise SignerRefused(str(exc), rule="pins.invalid", signer_id=self._signer_id) from None
                watcher = HaltWatcher(pins.halt_public_key, max_age_s=pins.halt_max_age_s,
                                      fetch=http_notice_fetcher(pins.halt_url))
                history = SqliteSignedHistory(self._directory / "history.db")
                guard = pins.guard(signer_id=f"cold-signer-{self._signer_id}", route=Route.COLD, history=history,
                                   halted=lambda: not watcher.clear())
                self._loaded = (mtime, PolicyRequestGuard(guard), watcher)
            return self._loaded[1], self._loaded[2]

    def describe(self, payment: ApprovedPayment) -> ApprovedOutput:
        return self._current()[0].describe(payment)

    def clear(self, payments: tuple[ApprovedPayment, ...], now: dt.datetime) -> None:
        self._current()[0].clear(payments, now)

    def ensure_not_halted(self, now: dt.datetime) -> None:
        from coffer.recon.errors import HaltInForce, HaltStateUnknown

        watcher = self._current()[1]
        watcher.poll()
        try:
            watcher.require_clear()
        except (HaltInForce, HaltStateUnknown) as exc:
            raise SignerRefused(str(exc), rule="halt", signer_id=self._signer_id) from None


class SignerProcess:
    """Opens (or creates on first start) one signer's token, seed and database."""

    def __init__(self, home: Path, signer_id: int, *, network: str = "regtest") -> None:
        from coffer.home import read_pin, use_softhsm_conf
        from coffer.hsm import SOFTHSM_MODULE, Hsm, init_token

        self.home = home
        self.signer_id = signer_id
        self.directory = signer_directory(home, signer_id)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        conf = use_softhsm_conf(self.directory / "hsm")
        for name in ("pin", "so-pin"):
            path = self.directory / "hsm" / name
            if not path.exists():
                path.write_text(secrets.token_hex(16))
                path.chmod(0o600)
        label = f"coffer-signer-{signer_id}"
        init_token(conf, label, so_pin=read_pin(self.directory / "hsm" / "so-pin"),
                   pin=read_pin(self.directory / "hsm" / "pin"))
        self.hsm = Hsm(module=SOFTHSM_MODULE, token_label=label, pin=read_pin(self.directory / "hsm" / "pin"))
        vault = SeedVault(self.hsm, self.directory / "seed.sealed", signer_id, network)
        if not vault.exists:
            vault.create()
        guards = PinnedGuards(self.directory, signer_id)
        self.signer = ColdSigner(signer_id, vault, SignerStore(self.directory / "signer.db"), network=network,
                                 request_guard=guards, halt_guard=guards)

    def __repr__(self) -> str:
        return f"SignerProcess(id={self.signer_id})"


def _error_body(exc: CofferError) -> tuple[int, dict[str, Any]]:
    rule = getattr(exc, "rule", None)
    status = 403 if isinstance(exc, SignerRefused) else 400
    return status, {"error": {"type": type(exc).__name__, "rule": rule, "message": str(exc)[:500]}}


def make_handler(process: SignerProcess) -> type[BaseHTTPRequestHandler]:
    signer = process.signer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > REQUEST_BYTES_MAX or length < 0:
                raise BundleInvalid("request too large")
            return self.rfile.read(length)

        def do_GET(self) -> None:
            if self.path == "/v1/health":
                self._send(200, {"signer_id": signer.signer_id, "ok": True})
            elif self.path == "/v1/key":
                self._send(200, signer.export_key())
            else:
                self._send(404, {"error": {"type": "NotFound", "message": self.path[:100]}})

        def do_POST(self) -> None:
            try:
                body = self._body()
                if self.path == "/v1/register":
                    data = json.loads(body)
                    if not isinstance(data, dict) or set(data) != {"descriptor", "first_addresses"}:
                        raise BundleInvalid("register takes descriptor and first_addresses")
                    self._send(200, signer.register(str(data["descriptor"]), list(data["first_addresses"]),
                                                    _utcnow()))
                elif self.path == "/v1/prove":
                    data = json.loads(body)
                    if not isinstance(data, dict) or set(data) != {"wallet_id", "branch", "index", "message"}:
                        raise BundleInvalid("prove takes wallet_id, branch, index, message")
                    self._send(200, signer.prove_control(str(data["wallet_id"]), int(data["branch"]),
                                                         int(data["index"]), bytes.fromhex(str(data["message"]))))
                elif self.path == "/v1/sign":
                    psbt = signer.sign(SigningBundle.from_json(body), _utcnow())
                    self._send(200, {"psbt": base64.b64encode(psbt).decode()})
                else:
                    self._send(404, {"error": {"type": "NotFound", "message": self.path[:100]}})
            except CofferError as exc:
                self._send(*_error_body(exc))
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": {"type": "BadRequest", "message": f"{type(exc).__name__}"}})

    return Handler


def serve_signer(process: SignerProcess, *, host: str = "127.0.0.1", port: int,
                 tls: TlsFiles | None = None) -> ThreadingHTTPServer:
    """Start serving in a thread; mutual TLS unless `tls` is None (tests of the bare handler only)."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ColdError("a signer binds to loopback only; put a TLS-terminating tunnel in front for remote use")
    server = ThreadingHTTPServer((host, port), make_handler(process))
    if tls is not None:
        context = server_context(tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name=f"signer-{process.signer_id}", daemon=True).start()
    log.info("cold.signer_listening", signer=process.signer_id, port=port)
    return server


class HttpSignerClient:
    """The coordinator's view of one signer process (mutual TLS)."""

    def __init__(self, signer_id: int, url: str, tls: TlsFiles, *, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.signer_id = signer_id
        self._url = url.rstrip("/")
        self._context: ssl.SSLContext = client_context(tls)
        self._client = httpx.Client(verify=self._context, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"HttpSignerClient(id={self.signer_id}, url={self._url!r})"

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        try:
            response = self._client.request(method, self._url + path, content=body)
        except httpx.HTTPError as exc:
            raise SignerUnavailable(f"signer {self.signer_id}: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            raise SignerUnavailable(f"signer {self.signer_id}: not JSON (status {response.status_code})") from None
        if response.status_code == 200:
            return dict(data)
        error = data.get("error", {}) if isinstance(data, dict) else {}
        message = str(error.get("message", "refused"))
        if response.status_code == 403:
            raise SignerRefused(message, rule=str(error.get("rule")), signer_id=self.signer_id)
        if error.get("type") == "PsbtInvalid":
            raise PsbtInvalid(message)
        raise BundleInvalid(message)

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")

    def export_key(self) -> dict[str, Any]:
        return self._call("GET", "/v1/key")

    def register(self, descriptor: str, first_addresses: list[str]) -> dict[str, Any]:
        body = json.dumps({"descriptor": descriptor, "first_addresses": first_addresses}).encode()
        return self._call("POST", "/v1/register", body)

    def sign(self, bundle: SigningBundle) -> bytes:
        return base64.b64decode(self._call("POST", "/v1/sign", bundle.to_json())["psbt"])

    def prove_control(self, wallet_id: str, branch: int, index: int, message: bytes) -> dict[str, Any]:
        body = json.dumps({"wallet_id": wallet_id, "branch": branch, "index": index, "message": message.hex()})
        return self._call("POST", "/v1/prove", body.encode())
