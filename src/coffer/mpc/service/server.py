"""The co-signer's HTTP server: mutual TLS on loopback, the coordinator as its only client.

The TLS handshake requires a client certificate issued by the local CA whose common name is
"coordinator"; anything else is dropped before a byte of HTTP is read. Bodies are bounded; each
POST goes to one `Cosigner` method; refusals come back as JSON with the error type, the rule and
the parties named, never with a secret. Connections are kept open (HTTP/1.1) so a coordinator can
pipeline sessions over a few sockets.

Endpoints (all POST, JSON bodies parsed strictly; bytes as lowercase hex):
  /v1/status                 keys held (public packages, versions, states), revocations, halt state
  /v1/hostkey                {suite} -> this co-signer's DKG host public key (made and sealed on first use)
  /v1/dkg/step1|step2|finalize|investigate   ChillDKG / Ed25519 DKG rounds relayed by the coordinator
  /v1/sign/commit            {key_id, version, signers, coordinator_nonce, kind, payload} -> session id, commitments
  /v1/sign/share             {session_id, commitments by identifier} -> signature shares
  /v1/refresh/deal, /v1/reshare/deal, /v1/dealing/receive, /v1/dealing/confirm   refresh and re-share
  /v1/batch                  {calls: [{path, body}]}: several of the above in one request, run concurrently
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from coffer.layout import KeyholderKind, KeyholderSite, certify_keyholder, keyholder_home, keyholder_tls
from coffer.log import get_logger
from coffer.mpc.errors import InvalidMessage, InvalidSignatureShare, MpcError
from coffer.mpc.service.cosigner import EXPECTED_ERRORS, Cosigner
from coffer.mpc.service.errors import CosignerRefused, ProtocolViolation, UnknownKey
from coffer.mpc.service.wire import BODY_BYTES_MAX, encode_body, parse_body
from coffer.tls import TlsFiles, server_context

__all__ = ["CosignerServer", "run_cosigner", "COORDINATOR_NAME", "cosigner_dir", "cosigner_tls"]

COORDINATOR_NAME: Final = "coordinator"
REQUEST_TIMEOUT_S: Final = 30.0
BATCH_PATH: Final = "/v1/batch"
BATCH_CALLS_MAX: Final = 64
BATCH_WORKERS: Final = 32
log = get_logger("coffer.mpc.server")


def cosigner_dir(home: Path, cosigner_id: int) -> Path:
    return keyholder_home(home, KeyholderKind.COSIGNER, cosigner_id)


def cosigner_tls(home: Path, cosigner_id: int) -> TlsFiles:
    """This co-signer's certificate in its own directory (issued by the ceremony on first use)."""
    directory = cosigner_dir(home, cosigner_id)
    files = keyholder_tls(directory)
    if files.cert.exists():
        return files
    return certify_keyholder(home, KeyholderSite(KeyholderKind.COSIGNER, cosigner_id, directory))


def _routes(cosigner: Cosigner) -> dict[str, Callable[[bytes], dict[str, Any]]]:
    return {
        "/v1/status": cosigner.status, "/v1/hostkey": cosigner.hostkey,
        "/v1/dkg/step1": cosigner.dkg_step1, "/v1/dkg/step2": cosigner.dkg_step2,
        "/v1/dkg/finalize": cosigner.dkg_finalize, "/v1/dkg/investigate": cosigner.dkg_investigate,
        "/v1/sign/commit": cosigner.sign_commit, "/v1/sign/share": cosigner.sign_share,
        "/v1/refresh/deal": cosigner.refresh_deal, "/v1/reshare/deal": cosigner.reshare_deal,
        "/v1/dealing/receive": cosigner.dealing_receive, "/v1/dealing/confirm": cosigner.dealing_confirm,
    }


def error_body(error: Exception) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON for an expected error: its type, rule and the parties it names."""
    body: dict[str, Any] = {"error": type(error).__name__, "message": str(error)[:500]}
    if isinstance(error, CosignerRefused):
        body.update(rule=error.rule, culprits=list(error.culprits))
    if isinstance(error, InvalidMessage):
        body["sender"] = error.sender
    culprit = getattr(error, "culprit", None)
    culprits = getattr(error, "culprits", None)
    if isinstance(error, InvalidSignatureShare) or culprit is not None:
        body["culprits"] = list(culprits or (culprit,))
    rule = getattr(error, "rule", None)
    if isinstance(rule, str):
        body.setdefault("rule", rule)
    status = 404 if isinstance(error, UnknownKey) else 400 if isinstance(error, InvalidMessage) else 409
    return status, body


def _dispatch(path: str, handler: Callable[[bytes], dict[str, Any]], data: bytes) -> tuple[int, dict[str, Any]]:
    """Run one call; expected failures become (status, typed error body), never a secret."""
    try:
        return 200, handler(data)
    except EXPECTED_ERRORS as error:
        status, body = error_body(error)
        log.info("mpc.cosigner.refused", path=path, error=body["error"], rule=body.get("rule"))
        return status, body
    except MpcError as error:
        return error_body(error)
    except Exception as error:  # a bug: report its type only, never its arguments
        log.error("mpc.cosigner.internal_error", path=path, error=type(error).__name__)
        return 500, {"error": "InternalError", "message": type(error).__name__}


def _batch(routes: dict[str, Callable[[bytes], dict[str, Any]]], workers: ThreadPoolExecutor,
           data: bytes) -> tuple[int, dict[str, Any]]:
    """Several calls in one request, run concurrently (their durable writes share an fsync)."""
    try:
        body = parse_body(data, sender=None, fields=("calls",))
        calls = body.objects("calls", fields=("path", "body"), items_max=BATCH_CALLS_MAX)
        jobs = []
        for call in calls:
            path = call.raw("path")
            if not isinstance(path, str) or path not in routes or not isinstance(call.raw("body"), dict):
                raise call.fault("a batched call names an unknown path or has no object body")
            jobs.append((path, routes[path], encode_body(call.raw("body"))))
    except ProtocolViolation as error:
        return error_body(error)
    # The last call runs in this request's own thread (a batch of one needs no hand-off at all).
    futures = [workers.submit(_dispatch, path, handler, payload) for path, handler, payload in jobs[:-1]]
    last = [_dispatch(*jobs[-1])] if jobs else []
    return 200, {"results": [{"status": status, "body": reply} for status, reply in
                             [*(future.result() for future in futures), *last]]}


class _TlsThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the request's own thread, so a stalled client cannot block accept().
        request.settimeout(REQUEST_TIMEOUT_S)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self._context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.warning("mpc.server.tls_refused", reason=type(error).__name__)
            return
        peer: dict[str, Any] = dict(tls.getpeercert() or {})
        names = [pair[1] for rdn in peer.get("subject", ()) for pair in rdn if pair[0] == "commonName"]
        if names != [COORDINATOR_NAME]:
            log.warning("mpc.server.client_refused", names=names)
            tls.close()
            return
        self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("mpc.server.connection_error")


class CosignerServer:
    """Serves one `Cosigner` over mutual TLS on 127.0.0.1:`port`."""

    def __init__(self, cosigner: Cosigner, tls: TlsFiles, *, port: int, host: str = "127.0.0.1") -> None:
        routes = _routes(cosigner)
        workers = ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="cosigner-batch")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                handler = routes.get(self.path)
                try:
                    length = int(self.headers.get("Content-Length") or -1)
                except ValueError:
                    length = -1
                if handler is None and self.path != BATCH_PATH:
                    self._reply(404, {"error": "BadRequest", "message": "no such route"})
                    return
                if not 0 <= length <= BODY_BYTES_MAX:
                    self._reply(413, {"error": "BadRequest", "message": "body size"})
                    self.close_connection = True
                    return
                data = self.rfile.read(length)
                if handler is None:
                    self._reply(*_batch(routes, workers, data))
                    return
                self._reply(*_dispatch(self.path, handler, data))

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = encode_body(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base
                return

        self._server = _TlsThreadingServer((host, port), Handler, server_context(tls))
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> CosignerServer:
        self._thread = threading.Thread(target=self.serve_forever, name="cosigner-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run_cosigner(home: Path, cosigner_id: int, port: int | None) -> None:
    """Open (or create) the co-signer's directory, token and store, and serve until killed."""
    from coffer.home import use_softhsm_conf

    directory = cosigner_dir(home, cosigner_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    use_softhsm_conf(directory / "hsm")  # before the PKCS#11 module is loaded in this process
    cosigner, stop = open_cosigner(home, cosigner_id)
    server = CosignerServer(cosigner, cosigner_tls(home, cosigner_id), port=port or 0)
    (directory / "port").write_text(str(server.port))
    log.info("mpc.cosigner.serving", cosigner=cosigner_id, port=server.port, pid=os.getpid())
    try:
        server.serve_forever()
    finally:
        stop()


def open_cosigner(home: Path, cosigner_id: int, *, clock: Callable[[], dt.datetime] | None = None
                  ) -> tuple[Cosigner, Callable[[], None]]:
    """Build the `Cosigner` of HOME/cosigners/N: token, vault, store, guard, halt watcher."""
    import secrets as _secrets

    from coffer.hsm import SOFTHSM_MODULE, Hsm, init_token
    from coffer.mpc.service.pins import read_pins
    from coffer.mpc.service.store import CosignerStore, ShareVault
    from coffer.policy import Route, SignerGuard, SqliteSignedHistory
    from coffer.recon.notice import HaltWatcher, http_notice_fetcher

    directory = cosigner_dir(home, cosigner_id)
    pins = read_pins(directory)
    pin_path, so_pin_path = directory / "hsm" / "pin", directory / "hsm" / "so-pin"
    for path in (pin_path, so_pin_path):
        if not path.exists():
            path.write_text(_secrets.token_hex(16))
            path.chmod(0o600)
    label = f"cosigner-{cosigner_id}"
    init_token(Path(os.environ["SOFTHSM2_CONF"]), label, so_pin=so_pin_path.read_text().strip(),
               pin=pin_path.read_text().strip())
    hsm = Hsm(module=SOFTHSM_MODULE, token_label=label, pin=pin_path.read_text().strip())
    watcher = HaltWatcher(pins.notice_public_key, max_age_s=pins.notice_max_age_s,
                          fetch=http_notice_fetcher(pins.notice_url) if pins.notice_url else None)
    if pins.notice_url:
        watcher.poll()
        watcher.start(interval_s=max(0.2, pins.notice_max_age_s / 4))
    history = SqliteSignedHistory(directory / "history.db")
    guard = SignerGuard(signer_id=f"cosigner-{cosigner_id}", route=Route.HOT,
                        attestation_public_key=pins.attestation_public_key, operators=pins.registry(),
                        policy=pins.policy(), history=history, halted=lambda: not watcher.clear())
    store = CosignerStore(directory / "cosigner.db")
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    cosigner = Cosigner(cosigner_id, store, ShareVault(hsm, cosigner_id), guard=guard, halt=watcher,
                        network=pins.network, attestation_public_key=pins.attestation_public_key, **kwargs)

    def stop() -> None:
        watcher.stop()
        store.close()
        history.close()
        hsm.close()

    return cosigner, stop
