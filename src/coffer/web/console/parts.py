"""What the console reads and acts on, passed in once (`ConsoleParts`), and the in-memory WebAuthn
ceremonies (one random challenge per ceremony, single use, bounded, short-lived)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.ledger import Ledger
from coffer.web.console.errors import CeremonyRefused

__all__ = ["ConsoleParts", "SignerView", "Ceremonies", "Ceremony", "CEREMONIES_MAX", "CEREMONY_TTL_S"]

CEREMONIES_MAX = 10_000
CEREMONY_TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class SignerView:
    """One signer or co-signer as the console shows it."""

    kind: str  # "cold signer" or "co-signer"
    signer_id: str
    url: str
    key_ids: tuple[str, ...] = ()
    last_seen: str | None = None
    policy_hash: str | None = None
    halt_acknowledged: str | None = None
    draws: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ceremony:
    purpose: str  # "register", "signin" or "approve"
    subject: str
    challenge: bytes
    data: dict[str, Any]
    expires_at: float


class Ceremonies:
    """Pending WebAuthn ceremonies by random id; `take` consumes one (a challenge is used once)."""

    def __init__(self, *, ttl_s: float = CEREMONY_TTL_S, keys_max: int = CEREMONIES_MAX,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._keys_max = keys_max
        self._monotonic = monotonic
        self._items: OrderedDict[str, Ceremony] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, purpose: str, subject: str, challenge: bytes, **data: Any) -> str:
        ceremony_id = secrets.token_urlsafe(24)
        with self._lock:
            self._items[ceremony_id] = Ceremony(purpose, subject, challenge, dict(data),
                                                self._monotonic() + self._ttl_s)
            while len(self._items) > self._keys_max:
                self._items.popitem(last=False)
        return ceremony_id

    def take(self, ceremony_id: str, purpose: str) -> Ceremony:
        with self._lock:
            ceremony = self._items.pop(ceremony_id, None)
        if ceremony is None or ceremony.purpose != purpose or ceremony.expires_at < self._monotonic():
            raise CeremonyRefused("unknown or expired security-key ceremony: start again")
        return ceremony


@dataclass
class ConsoleParts:
    """The services behind the console. `policy` is a PolicyService, `halt` a HaltSwitch; the
    callables read the reconciliation and the signers without the console touching their tables."""

    engine: Engine
    policy: Any
    halt: Any
    audit: AuditLog
    ledger: Ledger
    rp_id: str = "localhost"
    origins: tuple[str, ...] = ("http://localhost:8080",)
    rp_name: str = "Coffer operations"
    signers: Callable[[], Sequence[SignerView]] = lambda: ()
    por_dir: Path | None = None
    por_public_key: bytes | None = None
    approval_ttl_s: int = 3600
    ceremonies: Ceremonies = field(default_factory=Ceremonies)
    # The approvals queue as read at one audit head (see approvals.queue).
    queue_cache: tuple[Any, Any] | None = None
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    balances_cache: tuple[float, Any] | None = None
    # Per audit event kind: (last seq scanned, the newest events kept), see approvals.recent_events.
    event_tails: dict[str, tuple[int, tuple[Any, ...]]] = field(default_factory=dict)
