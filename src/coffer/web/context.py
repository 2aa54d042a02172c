"""What the web app needs from the rest of Coffer, passed in once (`WebContext`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from coffer.clients import ClientDirectory, SecretSeal
from coffer.config import Config
from coffer.notify import NotifyParts
from coffer.policy.service import PolicyService
from coffer.web.sessions import Bucket, RateLimiter, SessionStore

__all__ = ["WebContext", "DEFAULT_BUCKETS", "utc_now", "por_nonce_lookup", "context_from_config"]


def utc_now() -> datetime:
    return datetime.now(UTC)


# action -> bucket. Sign-in is limited per client id and per address; every sensitive action per client.
DEFAULT_BUCKETS: dict[str, Bucket] = {
    "signin_client": Bucket(capacity=5, refill_s=60.0),
    "signin_address": Bucket(capacity=20, refill_s=6.0),
    "sensitive": Bucket(capacity=10, refill_s=30.0),
    "two_factor": Bucket(capacity=5, refill_s=60.0),
}


def por_nonce_lookup(engine: Engine) -> Callable[[str], str | None]:
    """client id -> the account's lifetime proof-of-liabilities nonce (hex), None if it has none yet."""
    from coffer.errors import CofferError
    from coffer.ledger import Ledger
    from coffer.por.nonces import show_account_nonce

    ledger = Ledger(engine)

    def lookup(client_id: str) -> str | None:
        try:
            return show_account_nonce(engine, ledger.client(client_id).account_number)
        except CofferError:
            return None

    return lookup


def context_from_config(config: Config, engine: Engine, *, policy: PolicyService | None = None,
                        seal: SecretSeal | None = None, clock: Callable[[], datetime] = utc_now) -> WebContext:
    """The security centre's context for a data directory: clients (TOTP secrets sealed by `seal`,
    e.g. `HsmSeal(coordinator_hsm)`), notify (mail section), the por nonce lookup."""
    from coffer.notify import open_notify

    clients = ClientDirectory(engine, seal=seal)
    notify = open_notify(engine, address_of=clients.email, team_address=config.mail.team_address)
    return WebContext(engine=engine, clients=clients, notify=notify, policy=policy,
                      account_nonce=por_nonce_lookup(engine), clock=clock)


@dataclass
class WebContext:
    """Services and settings of one web app. Issue 12's console adds its own fields via `extras`."""

    engine: Engine
    clients: ClientDirectory
    notify: NotifyParts
    policy: PolicyService | None = None
    account_nonce: Callable[[str], str | None] | None = None
    clock: Callable[[], datetime] = utc_now
    secure_cookies: bool = True
    secret: bytes = field(default_factory=lambda: os.urandom(32), repr=False)
    sessions: SessionStore | None = None
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(DEFAULT_BUCKETS))
    assets: tuple[str, ...] = ("BTC", "ETH")
    whitelist_time_lock_s: int = 24 * 3600
    # Page furniture other routers add to: (label, href) links and banner callables (e.g. the halt).
    nav: list[tuple[str, str]] = field(default_factory=list)
    banners: list[Callable[[], str | None]] = field(default_factory=list)
    extras: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sessions is None:
            self.sessions = SessionStore(self.engine)

    @property
    def session_store(self) -> SessionStore:
        assert self.sessions is not None  # set in __post_init__
        return self.sessions
