"""The coordinator, assembled from a data directory: ledger, policy, halt switch and notices,
cold custody (talking to signer processes), and the chain backends.

It holds no private key and no share: its HSM token holds only its own non-extractable keys
(the decision-attestation key, the halt-notice key, the key-encryption key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.chain import BitcoinChain
from coffer.config import Config, load_config
from coffer.db import make_engine, migrate
from coffer.errors import CofferError
from coffer.hsm import Hsm, KeyKind
from coffer.ledger import Ledger
from coffer.log import get_logger

__all__ = ["Coordinator", "HALT_NOTICE_KEY_LABEL", "open_bitcoin"]

HALT_NOTICE_KEY_LABEL = "coffer-halt-notice"


def open_bitcoin(config: Config) -> BitcoinChain:
    """The Bitcoin backend the configuration names (embedded regtest in the data dir, or Core RPC)."""
    if config.bitcoin.backend == "rpc":
        from coffer.chain.bitcoin_rpc import BitcoinCoreRpc, BitcoinRpcChain

        cookie = config.bitcoin.rpc_cookie_file
        rpc = BitcoinCoreRpc(config.bitcoin.rpc_url, cookie_file=Path(cookie) if cookie else None)
        return BitcoinRpcChain(rpc)
    from coffer.chain.regtest import RegtestChain

    return RegtestChain.open(config.home / "chain")


@dataclass
class Coordinator:
    config: Config
    engine: Engine
    audit: AuditLog
    ledger: Ledger
    hsm: Hsm
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, home: Path, *, bitcoin: BitcoinChain | None = None) -> Coordinator:
        from coffer.home import open_coordinator_hsm

        config = load_config(home)
        engine = make_engine(config.database_url)
        migrate(engine)
        hsm = open_coordinator_hsm(config)
        if not hsm.has_key(HALT_NOTICE_KEY_LABEL):
            hsm.generate_key(HALT_NOTICE_KEY_LABEL, KeyKind.ED25519)
        coordinator = cls(config, engine, AuditLog(engine), Ledger(engine), hsm)
        if bitcoin is not None:
            coordinator.extras["bitcoin"] = bitcoin
        return coordinator

    @property
    def home(self) -> Path:
        return self.config.home

    # -- parts, built on first use ------------------------------------------------------------
    def _part(self, name: str, build: Any) -> Any:
        if name not in self.extras:
            self.extras[name] = build()
        return self.extras[name]

    @property
    def bitcoin(self) -> BitcoinChain:
        chain: BitcoinChain = self._part("bitcoin", lambda: open_bitcoin(self.config))
        return chain

    @property
    def halt(self) -> Any:
        from coffer.notify.hooks import halt_notices
        from coffer.recon.halt import HaltSwitch

        def clients() -> list[str]:
            return sorted({line.client_id for line in self.ledger.client_liabilities("BTC")})

        def publish(statement: bytes) -> bytes:
            """Halt and resume events are signed by the Ed25519 group key once it exists."""
            signer = self.extras.get("publication_signer")
            if signer is None:
                raise CofferError("no publication key yet (the co-signers' Ed25519 DKG has not run)")
            signature: bytes = signer(statement)
            return signature

        return self._part("halt", lambda: HaltSwitch(
            self.engine, quorum=self.config.halt.officer_quorum, audit=self.audit,
            hooks=[halt_notices(self.notify.notifier, clients)], publication_signer=publish))

    @property
    def notify(self) -> Any:
        """Mail to clients (PGP-encrypted when they have a key) and to the security team, via the outbox."""
        from coffer.notify import open_notify

        return self._part("notify", lambda: open_notify(
            self.engine, address_of=lambda client: f"{client}@clients.coffer.invalid",
            team_address=self.config.mail.team_address, audit=self.audit))

    def deliver_mail(self) -> int:
        """Send what the outbox holds to the configured SMTP server; returns how many were sent."""
        from coffer.notify import OutboxWorker, smtp_sender

        sent: int = OutboxWorker(self.notify.outbox, smtp_sender(self.config)).run_once(self.now())
        return sent

    @property
    def notices(self) -> Any:
        from coffer.recon.notice import NoticeIssuer, hsm_notice_signer

        return self._part("notices", lambda: NoticeIssuer(self.halt, hsm_notice_signer(self.hsm, HALT_NOTICE_KEY_LABEL)))

    def halt_notice_public_key(self) -> bytes:
        return self.hsm.public_key(HALT_NOTICE_KEY_LABEL)

    def halt_notice_url(self) -> str:
        from coffer.recon.notice import NOTICE_PATH

        return f"http://127.0.0.1:{self.config.web.notice_port}{NOTICE_PATH}"

    def start_notice_server(self) -> Any:
        from coffer.recon.notice import NoticeServer

        return self._part("notice_server", lambda: NoticeServer(
            self.notices, port=self.config.web.notice_port).start())

    @property
    def policy(self) -> Any:
        from coffer.policy import ensure_attestation_key
        from coffer.policy.service import PolicyService

        def build() -> Any:
            ensure_attestation_key(self.hsm)
            service = PolicyService(self.engine, hsm=self.hsm, halted=lambda: bool(self.halt.is_halted()),
                                    hot_balance=self.hot_balance, audit=self.audit)
            return service

        return self._part("policy", build)

    def hot_balance(self, asset: str) -> int:
        from coffer.ledger import AccountKey

        wallet = "eth-hot" if asset == "ETH" else "hot"  # the ETH hot wallet's custody account
        try:
            return self.ledger.balance(AccountKey.custody(wallet, asset))
        except Exception:  # no hot account yet: no float
            return 0

    def signer_ids(self) -> list[int]:
        return list(range(1, self.config.cold.signers + 1))

    def signer_url(self, signer_id: int) -> str:
        return f"https://127.0.0.1:{self.config.cold.signer_port_base + signer_id}"

    @property
    def cold(self) -> Any:
        from coffer.cold.custody import ColdCustody
        from coffer.cold.service import HttpSignerClient
        from coffer.tls import TlsFiles

        def build() -> Any:
            tls = TlsFiles(self.home / "tls" / "ca.pem", self.home / "tls" / "coordinator" / "tls.pem",
                           self.home / "tls" / "coordinator" / "tls.key")
            clients = {sid: HttpSignerClient(sid, self.signer_url(sid), tls) for sid in self.signer_ids()}
            return ColdCustody(self.engine, lambda: self.bitcoin, self.ledger, clients,
                               confirmations=self.config.bitcoin.confirmations,
                               network=self.config.bitcoin.network,
                               halted=lambda: bool(self.halt.is_halted()), audit=self.audit,
                               batch_max=self.config.cold.batch_max)

        return self._part("cold", build)

    def signer_pins(self) -> Any:
        """What every signer and co-signer pins: attestation key, operators, policy, halt key and URL."""
        from coffer.pins import SignerPins
        from coffer.policy import ensure_attestation_key

        policy = self.policy
        compiled = policy.active_policy()
        return SignerPins(ensure_attestation_key(self.hsm), tuple(policy.operators()), compiled.text,
                          compiled.schema_text, self.halt_notice_public_key(), self.halt_notice_url(),
                          self.config.halt.notice_max_age_s)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def close(self) -> None:
        for part in self.extras.values():
            for method in ("stop", "close"):
                closer = getattr(part, method, None)
                if callable(closer):
                    try:
                        closer()
                    except Exception as exc:  # closing is best effort at shutdown
                        get_logger("coffer.coordinator").warning("close_failed", part=type(part).__name__,
                                                                 error=type(exc).__name__)
                    break
        self.hsm.close()
        self.engine.dispose()
