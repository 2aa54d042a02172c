"""The co-signer process: the FROST and DKLs23 engines of co-signer N on the one key-holder runtime.

`coffer cosigner --id N` opens HOME/cosigners/N once: one SoftHSM2 token (both engines' share
keys), one pins file, one signed history and guard, one halt watcher; then mounts the FROST
engine (`Cosigner`, routes `FROST_ROUTES`) and the DKLs23 engine (`EcdsaCosigner`, routes
`ECDSA_ROUTES`) on one mutual-TLS server (`coffer.keyholder.server`), which checks the caller's
certificate name, the limits and the clock before an engine sees a request. `--engine` keeps
them apart when asked.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from coffer.hsm import SOFTHSM_MODULE, Hsm, init_token
from coffer.keyholder.hardening import CLOCK_SKEW_S_MAX
from coffer.keyholder.process import prepare_process, serve_until_stopped
from coffer.keyholder.routes import FROST_ROUTES
from coffer.keyholder.server import KeyholderServer, Mount
from coffer.layout import KeyholderKind, KeyholderSite, certify_keyholder, keyholder_home, keyholder_tls
from coffer.log import get_logger
from coffer.mpc.errors import InvalidMessage, MpcError
from coffer.mpc.service.cosigner import EXPECTED_ERRORS, Cosigner
from coffer.mpc.service.errors import UnknownKey
from coffer.mpc.service.pins import CosignerPins, read_pins
from coffer.mpc.service.store import CosignerStore, ShareVault
from coffer.policy import Route, SignerGuard, SqliteSignedHistory
from coffer.recon.notice import HaltWatcher, http_notice_fetcher
from coffer.tls import TlsFiles

__all__ = ["run_cosigner", "open_cosigner", "open_runtime", "CosignerRuntime", "cosigner_dir", "cosigner_tls",
           "cosigner_error_status", "frost_mount", "ENGINES"]

ENGINES: Final = ("frost", "ecdsa")
log = get_logger("coffer.mpc.server")


def cosigner_dir(home: Path, cosigner_id: int) -> Path:
    return keyholder_home(home, KeyholderKind.COSIGNER, cosigner_id)


def cosigner_tls(home: Path, cosigner_id: int) -> TlsFiles:
    """This co-signer's certificate ("cosigner-N") in its own directory (issued by the ceremony on first use)."""
    directory = cosigner_dir(home, cosigner_id)
    files = keyholder_tls(directory)
    if files.cert.exists():
        return files
    return certify_keyholder(home, KeyholderSite(KeyholderKind.COSIGNER, cosigner_id, directory))


def cosigner_error_status(error: Exception) -> int | None:
    """HTTP status of an error a co-signer engine raises on purpose; None for anything else (a bug)."""
    if not isinstance(error, (*EXPECTED_ERRORS, MpcError)):
        return None
    return 404 if isinstance(error, UnknownKey) else 400 if isinstance(error, InvalidMessage) else 409


def frost_mount(cosigner: Cosigner) -> Mount:
    return Mount(FROST_ROUTES, cosigner, cosigner_error_status)


@dataclass(slots=True)
class CosignerRuntime:
    """What both engines of one co-signer share: its token, pins, guard, history and halt watcher."""

    cosigner_id: int
    directory: Path
    hsm: Hsm
    pins: CosignerPins
    watcher: HaltWatcher
    history: SqliteSignedHistory
    guard: SignerGuard

    def close(self) -> None:
        self.watcher.stop()
        self.history.close()
        self.hsm.close()


def _token_pin(directory: Path, name: str) -> str:
    path = directory / "hsm" / name
    if not path.exists():
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def open_runtime(home: Path, cosigner_id: int) -> CosignerRuntime:
    """Open co-signer N's token, pins, history, guard and halt watcher (SOFTHSM2_CONF already set)."""
    directory = cosigner_dir(home, cosigner_id)
    pins = read_pins(directory)
    label = f"cosigner-{cosigner_id}"
    pin, so_pin = _token_pin(directory, "pin"), _token_pin(directory, "so-pin")
    init_token(Path(os.environ["SOFTHSM2_CONF"]), label, so_pin=so_pin, pin=pin)
    hsm = Hsm(module=SOFTHSM_MODULE, token_label=label, pin=pin)
    watcher = HaltWatcher(pins.notice_public_key, max_age_s=pins.notice_max_age_s,
                          fetch=http_notice_fetcher(pins.notice_url) if pins.notice_url else None)
    if pins.notice_url:
        watcher.poll()
        watcher.start(interval_s=max(0.2, pins.notice_max_age_s / 4))
    history = SqliteSignedHistory(directory / "history.db")
    guard = SignerGuard(signer_id=label, route=Route.HOT, attestation_public_key=pins.attestation_public_key,
                        operators=pins.registry(), policy=pins.policy(), history=history,
                        halted=lambda: not watcher.clear())
    return CosignerRuntime(cosigner_id, directory, hsm, pins, watcher, history, guard)


def run_cosigner(home: Path, cosigner_id: int, port: int | None, *, engines: tuple[str, ...] = ENGINES,
                 clock_skew_s_max: float = CLOCK_SKEW_S_MAX, ecdsa_class: type[Any] | None = None,
                 host: str = "127.0.0.1") -> None:
    """Harden this process, open co-signer N once, mount `engines` on one server on `host`; serve until stopped."""
    from coffer.home import use_softhsm_conf
    from coffer.mpc.ecdsa_service.server import ecdsa_mount, open_ecdsa_cosigner

    prepare_process("cosigner", cosigner_id)
    directory = cosigner_dir(home, cosigner_id)
    (directory / "hsm").mkdir(parents=True, exist_ok=True, mode=0o700)
    use_softhsm_conf(directory / "hsm")  # before the PKCS#11 module is loaded in this process
    runtime = open_runtime(home, cosigner_id)
    mounts, closers = [], [runtime.close]
    if "frost" in engines:
        frost, store = _frost(runtime)
        mounts.append(frost_mount(frost))
        closers.insert(0, store.close)
    if "ecdsa" in engines:
        ecdsa, close_ecdsa = open_ecdsa_cosigner(home, runtime, **({} if ecdsa_class is None else
                                                                   {"cosigner_class": ecdsa_class}))
        mounts.append(ecdsa_mount(ecdsa))
        closers.insert(0, close_ecdsa)
    server = KeyholderServer(mounts, cosigner_tls(home, cosigner_id), port=port or 0, host=host,
                             clock_skew_s_max=clock_skew_s_max)
    try:
        serve_until_stopped(server, kind="cosigner", number=cosigner_id, port_file=directory / "port")
    finally:
        for close in closers:
            close()


def _frost(runtime: CosignerRuntime, clock: Callable[[], dt.datetime] | None = None
           ) -> tuple[Cosigner, CosignerStore]:
    store = CosignerStore(runtime.directory / "cosigner.db")
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    cosigner = Cosigner(runtime.cosigner_id, store, ShareVault(runtime.hsm, runtime.cosigner_id),
                        guard=runtime.guard, halt=runtime.watcher, network=runtime.pins.network,
                        attestation_public_key=runtime.pins.attestation_public_key, **kwargs)
    return cosigner, store


def open_cosigner(home: Path, cosigner_id: int, *, clock: Callable[[], dt.datetime] | None = None
                  ) -> tuple[Cosigner, Callable[[], None]]:
    """Build the FROST `Cosigner` of HOME/cosigners/N alone (SOFTHSM2_CONF already set)."""
    runtime = open_runtime(home, cosigner_id)
    cosigner, store = _frost(runtime, clock)

    def stop() -> None:
        store.close()
        runtime.close()

    return cosigner, stop
