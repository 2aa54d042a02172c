"""The coordinator's web server (`coffer serve`, command.py). Opens the coordinator for a data directory,
starts the halt-notice server, the reconciliation scheduler (the on-chain check of the cold
wallet, when one is set up) and the mail outbox, and serves one app: the client security centre,
the operations console and the public proof-of-reserves page. Holds no key and no share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI

from coffer.alerts import AlertCenter, AlertWatcher, TeamMail
from coffer.clients import HsmSeal
from coffer.cold.service import HttpSignerClient
from coffer.coordinator import Coordinator
from coffer.errors import CofferError
from coffer.integrations.cli import open_integrations
from coffer.log import get_logger
from coffer.mpc.service.publication import stored_publication_key
from coffer.notify import OutboxWorker, SmtpSender
from coffer.pipeline.custody import CustodyPipeline
from coffer.pipeline.desk import CustodyDesk
from coffer.recon import CustodyScript, OnchainSource, ReconRuntime, bitcoin_holdings, ledger_custody
from coffer.recon.onchain import InflightWithdrawal, PendingDeposit
from coffer.tls import TlsFiles
from coffer.web import context_from_config, create_app
from coffer.web.console import install_console
from coffer.web.console.alerts import alerts_router
from coffer.web.console.parts import ConsoleParts, SignerView
from coffer.web.console.probe import SignerProbe
from coffer.web.exchange_api import API_BUCKET, ExchangeApi, exchange_router
from coffer.web.sessions import RateLimiter
from coffer.withdrawals import WithdrawalDesk

__all__ = ["build_app", "ServedApp", "loopback_origins", "signer_probe", "mounted_routers"]

_log = get_logger("coffer.serve")


class _Runtime:
    """Adapts ReconRuntime (start()/stop()) to the app's background-worker protocol."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def start(self, interval_s: float = 1.0) -> None:
        self._runtime.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._runtime.stop()


def loopback_origins(host: str, port: int) -> tuple[str, tuple[str, ...]]:
    """(relying-party id, allowed origins). WebAuthn needs a host name, so loopback means localhost."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "localhost", (f"http://localhost:{port}",)
    return host, (f"https://{host}:{port}", f"https://{host}")


def signer_probe(coordinator: Coordinator) -> SignerProbe:
    """Health checks of the cold signers over the coordinator's mutual TLS."""

    home = coordinator.home
    tls = TlsFiles(home / "tls" / "ca.pem", home / "tls" / "coordinator" / "tls.pem",
                   home / "tls" / "coordinator" / "tls.key")
    return SignerProbe({str(sid): HttpSignerClient(sid, coordinator.signer_url(sid), tls, timeout_s=5.0)
                        for sid in coordinator.signer_ids()})


def _signers(coordinator: Coordinator, probe: SignerProbe | None) -> Sequence[SignerView]:
    keys: tuple[Any, ...] = ()
    try:
        keys = tuple(coordinator.cold.wallet().keys)
    except Exception:  # no cold wallet yet: no key ids to show
        keys = ()
    views = []
    for signer_id in coordinator.signer_ids():
        key_ids = (keys[signer_id - 1].fingerprint,) if len(keys) >= signer_id else ()
        seen = None if probe is None else probe.last_seen(str(signer_id))
        views.append(SignerView("cold signer", str(signer_id), coordinator.signer_url(signer_id), key_ids=key_ids,
                                last_seen=seen))
    return views


def _onchain_runtime(coordinator: Coordinator) -> Any:
    """Reconciliation of every Bitcoin custody script against the chain.

    Never skipped: with no cold wallet there are no cold scripts, so any custody the ledger books is
    a mismatch; a source that fails to read is an errored run, and repeated errors halt.
    """

    cold = coordinator.cold

    def has_cold() -> bool:
        try:
            cold.wallet()
        except CofferError:
            return False
        return True

    def scripts() -> list[CustodyScript]:
        if not has_cold():
            return []
        return [CustodyScript("BTC", "cold", script.hex()) for script in cold.custody_scripts()]

    source = OnchainSource(
        scripts=scripts, holdings={"BTC": lambda s: bitcoin_holdings(coordinator.bitcoin, s)},
        ledger_view=lambda assets: ledger_custody(coordinator.ledger, assets),
        pending=lambda asset, height: [PendingDeposit("BTC", "cold", script, reference, amount)
                                       for script, reference, amount in cold.pending_deposits(height)]
        if asset == "BTC" and has_cold() else [],
        inflight=lambda asset, height: [InflightWithdrawal("BTC", "cold", batch, amount)
                                        for batch, amount in cold.inflight_withdrawals(height)]
        if asset == "BTC" and has_cold() else [])
    return ReconRuntime.from_config(coordinator.config, coordinator.engine, coordinator.halt, node="serve",
                                    onchain=source)


@dataclass
class ServedApp:
    app: FastAPI
    console: ConsoleParts
    background: list[Any] = field(default_factory=list)


def mounted_routers(console: Sequence[APIRouter], exchange: ExchangeApi, alerts: AlertCenter) -> list[APIRouter]:
    """Every router `coffer serve` mounts beside the security centre's (docs/architecture.md lists them)."""
    return [*console, exchange_router(exchange), alerts_router(alerts)]


def build_app(coordinator: Coordinator, *, host: str, port: int, por_dir: Path | None = None,
              por_public_key: bytes | None = None, recon: bool = True, mail: bool = True,
              probe_signers: bool = True, origin: str | None = None, pipeline: bool = True) -> ServedApp:
    """The whole app over an opened coordinator (also used by tests and bench/web.py).

    The public page checks statements against `por_public_key`, by default the publication key
    the DKG recorded in this home."""

    policy = coordinator.policy
    context = context_from_config(coordinator.config, coordinator.engine, policy=policy,
                                  seal=HsmSeal(coordinator.hsm))
    context.secure_cookies = False  # plain HTTP on loopback; put TLS in front of it anywhere else
    rp_id, origins = loopback_origins(host, port)
    if origin:

        rp_id, origins = urlsplit(origin).hostname or rp_id, (origin.rstrip("/"),)
    probe = signer_probe(coordinator) if probe_signers else None
    console = ConsoleParts(coordinator.engine, policy, coordinator.halt, coordinator.audit, coordinator.ledger,
                           rp_id=rp_id, origins=origins, signers=lambda: _signers(coordinator, probe),
                           por_dir=por_dir or coordinator.home / "por",
                           por_public_key=por_public_key or stored_publication_key(coordinator.engine))
    routers, template_dirs = install_console(context, console)
    background: list[Any] = [] if probe is None else [probe]
    if recon:
        background.append(_Runtime(_onchain_runtime(coordinator)))
    if pipeline:
        background.append(CustodyPipeline(coordinator, WithdrawalDesk(coordinator), node=f"serve-{host}:{port}"))
    if mail:
        config = coordinator.config
        background.append(OutboxWorker(context.notify.outbox, SmtpSender(
            config.mail.smtp_host, config.mail.smtp_port,
            config.mail.sender)))
    center = AlertCenter(coordinator.engine, coordinator.audit, [TeamMail(coordinator.notify.notifier)])
    background.append(AlertWatcher(coordinator.engine, center, halt=coordinator.halt, node=f"serve-{host}:{port}",
                                   key_holders_seen=lambda: _seen(coordinator, probe)))
    routers = mounted_routers(routers, exchange_api(coordinator, context.limiter), center)
    app = create_app(context, routers=routers, template_dirs=template_dirs, background=background)
    return ServedApp(app, console, background)


def _seen(coordinator: Coordinator, probe: SignerProbe | None) -> dict[str, str | None]:
    """Key holders and when the health probe last reached each (none watched without the probe)."""
    if probe is None:
        return {}
    return {f"signer-{signer_id}": probe.last_seen(str(signer_id)) for signer_id in coordinator.signer_ids()}


def exchange_api(coordinator: Coordinator, limiter: RateLimiter) -> ExchangeApi:
    """The exchange API's parts over the coordinator: the custody desk and the integrations' keys."""
    desk = CustodyDesk(coordinator, WithdrawalDesk(coordinator), assets=tuple(sorted(coordinator.ledger.assets)))
    limiter.add_bucket("integration", API_BUCKET)
    return ExchangeApi(desk, open_integrations(coordinator), coordinator.now, limiter)
