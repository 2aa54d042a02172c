"""Server-side sessions, CSRF tokens and rate limits.

The cookie holds a random 256-bit token; the database holds only its SHA-256, so a database
leak gives no usable session. Each session has its own CSRF token, required on every
state-changing request (form field `csrf_token` or header `X-CSRF-Token`). Before sign-in, the
form's CSRF token is an HMAC of a random pre-session cookie. Rate limits are token buckets in
memory, bounded in the number of keys they track.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.web.errors import CsrfRefused, RateLimited
from coffer.web.tables import sessions

__all__ = ["Session", "SessionStore", "RateLimiter", "Bucket", "anonymous_csrf", "check_csrf",
           "SESSION_TTL_S", "SESSION_IDLE_S", "SESSIONS_PER_SUBJECT_MAX", "LIMITER_KEYS_MAX"]

SESSION_TTL_S = 8 * 3600
SESSION_IDLE_S = 30 * 60
SESSIONS_PER_SUBJECT_MAX = 10
LIMITER_KEYS_MAX = 10_000


def _hash(token: str) -> str:
    return hashlib.sha256(f"coffer/session/v1\x00{token}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    kind: str
    subject: str
    csrf_token: str
    token_sha256: str
    expires_at_s: int

    def __repr__(self) -> str:
        return f"Session(kind={self.kind!r}, subject={self.subject!r})"


class SessionStore:
    """Sessions for clients and (later) operators; `kind` keeps them apart."""

    def __init__(self, engine: Engine, *, ttl_s: int = SESSION_TTL_S, idle_s: int = SESSION_IDLE_S) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._idle_s = idle_s

    def create(self, kind: str, subject: str, *, now: datetime) -> tuple[str, Session]:
        """A new session; returns (cookie token, session). Oldest sessions beyond the cap are dropped."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        at = int(now.timestamp())
        digest = _hash(token)
        with self._engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires_at_s <= at))
            rows = conn.execute(sa.select(sessions.c.token_sha256).where(
                sessions.c.kind == kind, sessions.c.subject == subject)
                .order_by(sessions.c.created_at_s.desc())).all()
            stale = [row.token_sha256 for row in rows[SESSIONS_PER_SUBJECT_MAX - 1:]]
            if stale:
                conn.execute(sessions.delete().where(sessions.c.token_sha256.in_(stale)))
            conn.execute(sessions.insert().values(token_sha256=digest, kind=kind, subject=subject, csrf_token=csrf,
                                                  created_at_s=at, last_seen_at_s=at, expires_at_s=at + self._ttl_s))
        return token, Session(kind, subject, csrf, digest, at + self._ttl_s)

    def get(self, token: str | None, *, now: datetime) -> Session | None:
        """The live session for a cookie token, touching its idle timer; None if absent/expired/idle."""
        if not token or len(token) > 128:
            return None
        at = int(now.timestamp())
        digest = _hash(token)
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.token_sha256 == digest)).first()
            if row is None:
                return None
            if int(row.expires_at_s) <= at or int(row.last_seen_at_s) + self._idle_s <= at:
                conn.execute(sessions.delete().where(sessions.c.token_sha256 == digest))
                return None
            if at > int(row.last_seen_at_s):
                conn.execute(sessions.update().where(sessions.c.token_sha256 == digest).values(last_seen_at_s=at))
        return Session(row.kind, row.subject, row.csrf_token, digest, int(row.expires_at_s))

    def revoke(self, session: Session) -> None:
        with self._engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_sha256 == session.token_sha256))

    def revoke_all(self, kind: str, subject: str, *, keep: Session | None = None) -> None:
        """End every session of `subject` (but `keep`), e.g. after its second factor changed."""
        query = sessions.delete().where(sessions.c.kind == kind, sessions.c.subject == subject)
        if keep is not None:
            query = query.where(sessions.c.token_sha256 != keep.token_sha256)
        with self._engine.begin() as conn:
            conn.execute(query)


def anonymous_csrf(secret: bytes, pre_session: str) -> str:
    """The sign-in form's CSRF token, bound to the random pre-session cookie."""
    return hmac.new(secret, f"coffer/csrf/anonymous\x00{pre_session}".encode(), hashlib.sha256).hexdigest()


def check_csrf(expected: str | None, given: str | None) -> None:
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfRefused("missing or wrong CSRF token: reload the page and try again")


@dataclass(frozen=True, slots=True)
class Bucket:
    """`capacity` attempts at once, refilled at one per `refill_s` seconds."""

    capacity: int
    refill_s: float


class RateLimiter:
    """Token buckets per (action, key), in memory; the least recently used keys are forgotten past the cap."""

    def __init__(self, buckets: dict[str, Bucket], *, keys_max: int = LIMITER_KEYS_MAX) -> None:
        self._buckets = dict(buckets)
        self._keys_max = keys_max
        self._state: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def add_bucket(self, action: str, bucket: Bucket) -> None:
        with self._lock:
            self._buckets[action] = bucket

    def hit(self, action: str, key: str, *, now_s: float) -> None:
        """Take one token; RateLimited when the bucket is empty."""
        bucket = self._buckets[action]
        with self._lock:
            tokens, last = self._state.pop((action, key), (float(bucket.capacity), now_s))
            tokens = min(float(bucket.capacity), tokens + max(0.0, now_s - last) / bucket.refill_s)
            if tokens < 1.0:
                self._state[(action, key)] = (tokens, now_s)
                wait = int((1.0 - tokens) * bucket.refill_s) + 1
                raise RateLimited(f"too many attempts: try again in {wait} s", retry_after_s=wait)
            self._state[(action, key)] = (tokens - 1.0, now_s)
            while len(self._state) > self._keys_max:
                self._state.popitem(last=False)
