"""The cold signer as a process: `coffer signer --id N --dir DIR` serves its engine on the one
key-holder runtime (mutual TLS, peer names per route, limits, clock check: `coffer.keyholder`),
and `coffer signer sign` works offline on files. Also the coordinator's client for it.

Everything secret stays in the signer's own directory (outside the coordinator's home, see
coffer.layout): its SoftHSM2 token, its sealed seed, its own database, its TLS key. The pins
(attestation key, operators, policy, halt key) are read from its pins.json; without them, or
without a fresh "not halted" notice from the coordinator, the signer refuses to sign.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.custody import SignerUnavailable
from coffer.cold.errors import BundleInvalid, PsbtInvalid, SignerRefused
from coffer.cold.guards import PolicyRequestGuard
from coffer.cold.keystore import SeedVault
from coffer.cold.signer import ApprovedOutput, ColdSigner, SignerStore
from coffer.errors import CofferError
from coffer.keyholder.client import KeyholderClient
from coffer.keyholder.errors import KeyholderUnavailable, RequestMalformed
from coffer.keyholder.hardening import CLOCK_SKEW_S_MAX
from coffer.keyholder.routes import COLD_SIGNER_ROUTES
from coffer.keyholder.server import KeyholderServer, Mount
from coffer.layout import KeyholderKind, keyholder_home, keyholder_tls
from coffer.log import get_logger
from coffer.tls import TlsFiles

__all__ = ["SignerProcess", "SignerEngine", "HttpSignerClient", "serve_signer", "signer_directory", "signer_tls",
           "REQUEST_BYTES_MAX", "RPC_TIMEOUT_S"]

REQUEST_BYTES_MAX: Final = COLD_SIGNER_ROUTES.body_bytes_max
RPC_TIMEOUT_S: Final = 30.0
HALT_POLL_S: Final = 1.0
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
        from coffer.keyholder.officers import pin_officers_from
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
                pin_officers_from(watcher, self._directory, f"signer-{self._signer_id}")
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


def _object(data: bytes, fields: set[str]) -> dict[str, Any]:
    """A JSON object with exactly `fields`, or `RequestMalformed` naming them."""
    try:
        value = json.loads(data)
    except ValueError:
        raise RequestMalformed("body is not JSON") from None
    if not isinstance(value, dict) or set(value) != fields:
        raise RequestMalformed(f"body must be an object with exactly {sorted(fields)}")
    return value


class SignerEngine:
    """The cold signer's routes (`COLD_SIGNER_ROUTES`): each takes the raw body, returns a JSON object."""

    def __init__(self, signer: ColdSigner) -> None:
        self._signer = signer

    def health(self, data: bytes) -> dict[str, Any]:
        return {"signer_id": self._signer.signer_id, "ok": True}

    def key(self, data: bytes) -> dict[str, Any]:
        return self._signer.export_key()

    def register(self, data: bytes) -> dict[str, Any]:
        body = _object(data, {"descriptor", "first_addresses"})
        if not isinstance(body["descriptor"], str) or not isinstance(body["first_addresses"], list) or not all(
                isinstance(address, str) for address in body["first_addresses"]):
            raise RequestMalformed("register takes a descriptor string and a list of address strings")
        return self._signer.register(body["descriptor"], body["first_addresses"], _utcnow())

    def prove(self, data: bytes) -> dict[str, Any]:
        body = _object(data, {"wallet_id", "branch", "index", "message"})
        wallet_id, branch, index, message = (body[k] for k in ("wallet_id", "branch", "index", "message"))
        if not (isinstance(wallet_id, str) and isinstance(message, str) and all(
                isinstance(n, int) and not isinstance(n, bool) for n in (branch, index))):
            raise RequestMalformed("prove takes wallet_id, branch, index and a hex message")
        try:
            raw = bytes.fromhex(message)
        except ValueError:
            raise RequestMalformed("message must be hex") from None
        return self._signer.prove_control(wallet_id, branch, index, raw)

    def sign(self, data: bytes) -> dict[str, Any]:
        try:
            bundle = SigningBundle.from_json(data)
        except (ValueError, TypeError, KeyError) as exc:  # the type only: the body is the caller's own
            raise RequestMalformed(f"signing bundle does not parse ({type(exc).__name__})") from None
        psbt = self._signer.sign(bundle, _utcnow())
        return {"psbt": base64.b64encode(psbt).decode()}


def signer_error_status(error: Exception) -> int | None:
    """403 for a refusal by a rule, 400 for bad input; None for anything else (a bug)."""
    if isinstance(error, SignerRefused):
        return 403
    return 400 if isinstance(error, CofferError) else None


def serve_signer(process: SignerProcess, *, host: str = "127.0.0.1", port: int, tls: TlsFiles,
                 clock_skew_s_max: float = CLOCK_SKEW_S_MAX) -> KeyholderServer:
    """The signer's engine on a key-holder server (not yet started) on `host`: loopback, or the one
    address of its own host that its certificate names (never every interface)."""
    return KeyholderServer([Mount(COLD_SIGNER_ROUTES, SignerEngine(process.signer), signer_error_status)], tls,
                           port=port, host=host, clock_skew_s_max=clock_skew_s_max)


class HttpSignerClient:
    """The coordinator's view of one signer process (mutual TLS, its certificate pinned to "signer-N")."""

    def __init__(self, signer_id: int, url: str, tls: TlsFiles, *, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.signer_id = signer_id
        self._url = url.rstrip("/")
        parts = urlsplit(self._url)
        if parts.scheme != "https" or parts.hostname is None or parts.port is None:
            raise BundleInvalid(f"signer URL must be https://host:port, got {url[:100]!r}")
        self._transport = KeyholderClient(f"signer-{signer_id}", parts.port, tls, host=parts.hostname,
                                          timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"HttpSignerClient(id={self.signer_id}, url={self._url!r})"

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        try:
            if body is None:
                status, data = self._transport.call(path, method=method)
            else:
                status, data = self._transport.call_raw(path, body, method=method)
        except KeyholderUnavailable as exc:
            raise SignerUnavailable(f"signer {self.signer_id}: {exc.reason}") from None
        if status == 200:
            return data
        message, rule = str(data.get("message", "refused")), str(data.get("rule", "refused"))
        if status in (403, 409):  # refused by a rule: the signer's own, its peer-name or clock check
            raise SignerRefused(message, rule=rule, signer_id=self.signer_id)
        if data.get("error") == "PsbtInvalid":
            raise PsbtInvalid(message)
        raise BundleInvalid(message)

    def close(self) -> None:
        self._transport.close()

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
