"""The ECDSA co-signer process: mutual TLS on loopback, the coordinator as its only client.

`coffer ecdsa-cosigner --id N --home HOME` runs one `EcdsaCosigner` in its own process, with its
own directory HOME/cosigners/N/ecdsa/ (SoftHSM2 config and token, SQLite store, signed history).
It shares the co-signer's provisioning with the FROST co-signer of the same number: the pins file
HOME/cosigners/N/pins.json (attestation key, operators, policy, halt-notice key and URL) and its
TLS certificate from HOME/tls. The TLS handshake requires the client certificate named
"coordinator"; refusals come back as JSON naming the rule and the parties, never a secret.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from coffer.errors import ConfigError, Refused
from coffer.log import get_logger
from coffer.mpc.ecdsa_service.cosigner import EcdsaCosigner
from coffer.mpc.errors import InvalidMessage, MalformedInput, MpcError
from coffer.mpc.service.errors import CosignerRefused, UnknownKey
from coffer.mpc.service.server import cosigner_dir
from coffer.mpc.service.server import cosigner_tls as frost_cosigner_tls
from coffer.mpc.service.wire import BODY_BYTES_MAX, encode_body
from coffer.policy.errors import PolicyError
from coffer.tls import TlsFiles, server_context

__all__ = ["EcdsaCosignerServer", "run_ecdsa_cosigner", "open_ecdsa_cosigner", "ecdsa_dir", "ROUTES",
           "write_chain_pins", "read_chain_pins", "CHAIN_PINS_FILE"]

COORDINATOR_NAME: Final = "coordinator"
REQUEST_TIMEOUT_S: Final = 30.0
EXPECTED_ERRORS: Final = (CosignerRefused, InvalidMessage, MalformedInput, UnknownKey, PolicyError, Refused)
ROUTES: Final = {
    "/v1/ecdsa/status": "status", "/v1/ecdsa/hostkey": "hostkey",
    "/v1/ecdsa/dkg/step1": "dkg_step1", "/v1/ecdsa/dkg/step2": "dkg_step2", "/v1/ecdsa/dkg/finalize": "dkg_finalize",
    "/v1/ecdsa/pair/start": "pair_start", "/v1/ecdsa/pair/step": "pair_step",
    "/v1/ecdsa/sign/round1": "sign_round1", "/v1/ecdsa/sign/round2": "sign_round2",
    "/v1/ecdsa/sign/round3": "sign_round3", "/v1/ecdsa/sign/abort": "sign_abort",
    "/v1/ecdsa/reshare/deal": "reshare_deal", "/v1/ecdsa/reshare/receive": "reshare_receive",
    "/v1/ecdsa/reshare/confirm": "reshare_confirm",
}
log = get_logger("coffer.mpc.ecdsa_service.server")


def ecdsa_dir(home: Path, cosigner_id: int) -> Path:
    return cosigner_dir(home, cosigner_id) / "ecdsa"


CHAIN_PINS_FILE: Final = "chains.json"


def write_chain_pins(home: Path, cosigner_id: int, chain_ids: list[int]) -> Path:
    """Provisioning: the EVM chain ids this co-signer signs for (its ecdsa/chains.json)."""
    directory = ecdsa_dir(home, cosigner_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CHAIN_PINS_FILE
    path.write_text(json.dumps({"chain_ids": sorted(set(chain_ids))}))
    return path


def read_chain_pins(home: Path, cosigner_id: int) -> frozenset[int] | None:
    """The pinned chain ids, or None when none were provisioned (then any chain id is signed for)."""
    path = ecdsa_dir(home, cosigner_id) / CHAIN_PINS_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        values = data["chain_ids"]
        if set(data) != {"chain_ids"} or not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ConfigError("chain pins are malformed", path=str(path)) from None
    return frozenset(values)


def cosigner_tls(home: Path, cosigner_id: int) -> TlsFiles:
    """Co-signer N's certificate ("cosigner-N"), the same one the FROST co-signer of the same number uses."""
    return frost_cosigner_tls(home, cosigner_id)


def error_body(error: Exception) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON for an expected error: its type, rule and the parties it names."""
    body: dict[str, Any] = {"error": type(error).__name__, "message": str(error)[:500]}
    if isinstance(error, CosignerRefused):
        body.update(rule=error.rule, culprits=list(error.culprits))
    if isinstance(error, InvalidMessage):
        body["sender"] = error.sender
    rule = getattr(error, "rule", None)
    if isinstance(rule, str):
        body.setdefault("rule", rule)
    status = 404 if isinstance(error, UnknownKey) else 400 if isinstance(error, InvalidMessage) else 409
    return status, body


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(REQUEST_TIMEOUT_S)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self._context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.warning("ecdsa.server.tls_refused", reason=type(error).__name__)
            return
        peer: dict[str, Any] = dict(tls.getpeercert() or {})
        names = [pair[1] for rdn in peer.get("subject", ()) for pair in rdn if pair[0] == "commonName"]
        if names != [COORDINATOR_NAME]:
            log.warning("ecdsa.server.client_refused", names=names)
            tls.close()
            return
        self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("ecdsa.server.connection_error")


class EcdsaCosignerServer:
    """Serves one `EcdsaCosigner` over mutual TLS on 127.0.0.1:`port`."""

    def __init__(self, cosigner: EcdsaCosigner, tls: TlsFiles, *, port: int, host: str = "127.0.0.1") -> None:
        routes: dict[str, Callable[[bytes], dict[str, Any]]] = {
            path: getattr(cosigner, name) for path, name in ROUTES.items() if hasattr(cosigner, name)}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                handler = routes.get(self.path)
                length = int(self.headers.get("Content-Length") or -1)
                if handler is None or not 0 <= length <= BODY_BYTES_MAX:
                    self._reply(404 if handler is None else 413, {"error": "BadRequest", "message": "route or size"})
                    return
                data = self.rfile.read(length)
                try:
                    self._reply(200, handler(data))
                except (*EXPECTED_ERRORS, MpcError) as error:
                    status, body = error_body(error)
                    log.info("ecdsa.cosigner.refused", path=self.path, error=body["error"], rule=body.get("rule"),
                             culprits=body.get("culprits"), sender=body.get("sender"))
                    self._reply(status, body)
                except Exception as error:  # a bug: its type only, never its arguments (could hold a secret)
                    log.error("ecdsa.cosigner.internal_error", path=self.path, error=type(error).__name__)
                    self._reply(500, {"error": "InternalError", "message": type(error).__name__})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = encode_body(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
                return

        self._server = _TlsServer((host, port), Handler, server_context(tls))
        self.port = int(self._server.server_address[1])

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> EcdsaCosignerServer:
        threading.Thread(target=self.serve_forever, name="ecdsa-cosigner-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def open_ecdsa_cosigner(home: Path, cosigner_id: int, *, clock: Callable[[], dt.datetime] | None = None,
                        cosigner_class: type[EcdsaCosigner] = EcdsaCosigner
                        ) -> tuple[EcdsaCosigner, Callable[[], None]]:
    """Build the co-signer of HOME/cosigners/N/ecdsa: token, vault, store, guard, halt watcher.

    SOFTHSM2_CONF must already point at this co-signer's own config (see `run_ecdsa_cosigner`).
    """
    import secrets as _secrets

    from coffer.hsm import SOFTHSM_MODULE, Hsm, init_token
    from coffer.mpc.ecdsa_service.store import EcdsaStore, EcdsaVault
    from coffer.mpc.service.pins import read_pins
    from coffer.policy import Route, SignerGuard, SqliteSignedHistory
    from coffer.recon.notice import HaltWatcher, http_notice_fetcher

    directory = ecdsa_dir(home, cosigner_id)
    pins = read_pins(directory.parent)
    pin_path, so_pin_path = directory / "hsm" / "pin", directory / "hsm" / "so-pin"
    for path in (pin_path, so_pin_path):
        if not path.exists():
            path.write_text(_secrets.token_hex(16))
            path.chmod(0o600)
    label = f"ecdsa-cosigner-{cosigner_id}"
    init_token(Path(os.environ["SOFTHSM2_CONF"]), label, so_pin=so_pin_path.read_text().strip(),
               pin=pin_path.read_text().strip())
    hsm = Hsm(module=SOFTHSM_MODULE, token_label=label, pin=pin_path.read_text().strip())
    watcher = HaltWatcher(pins.notice_public_key, max_age_s=pins.notice_max_age_s,
                          fetch=http_notice_fetcher(pins.notice_url) if pins.notice_url else None)
    if pins.notice_url:
        watcher.poll()
        watcher.start(interval_s=max(0.2, pins.notice_max_age_s / 4))
    history = SqliteSignedHistory(directory / "history.db")
    guard = SignerGuard(signer_id=f"ecdsa-cosigner-{cosigner_id}", route=Route.HOT,
                        attestation_public_key=pins.attestation_public_key, operators=pins.registry(),
                        policy=pins.policy(), history=history, halted=lambda: not watcher.clear())
    store = EcdsaStore(directory / "ecdsa.db")
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    chain_ids = read_chain_pins(home, cosigner_id)
    if chain_ids is None:
        log.warning("ecdsa.cosigner.no_chain_pins", cosigner=cosigner_id)
    cosigner = cosigner_class(cosigner_id, store, EcdsaVault(hsm, cosigner_id), guard=guard, halt=watcher,
                              chain_ids=chain_ids, **kwargs)

    def stop() -> None:
        watcher.stop()
        store.close()
        history.close()
        hsm.close()

    return cosigner, stop


def run_ecdsa_cosigner(home: Path, cosigner_id: int, port: int | None, *,
                       cosigner_class: type[EcdsaCosigner] = EcdsaCosigner) -> None:
    """Open (or create) the co-signer's ECDSA directory, token and store; serve until killed."""
    from coffer.home import use_softhsm_conf

    directory = ecdsa_dir(home, cosigner_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "hsm").mkdir(exist_ok=True, mode=0o700)
    use_softhsm_conf(directory / "hsm")  # before the PKCS#11 module loads in this process
    cosigner, stop = open_ecdsa_cosigner(home, cosigner_id, cosigner_class=cosigner_class)
    server = EcdsaCosignerServer(cosigner, cosigner_tls(home, cosigner_id), port=port or 0)
    (directory / "port").write_text(str(server.port))
    log.info("ecdsa.cosigner.serving", cosigner=cosigner_id, port=server.port, pid=os.getpid())
    try:
        server.serve_forever()
    finally:
        stop()
