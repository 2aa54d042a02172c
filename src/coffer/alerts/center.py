"""Alerts that reach people: a halt, a failed or erroring check, a stuck or dead pipeline job, a
key holder not seen. Each is raised once while it lasts (then counted), resolved when it clears,
kept as history for the console, mailed to the security team encrypted to its keys, and posted to
a webhook signed with HMAC through the durable job queue (retried until delivered or dead).

It must never hide a condition because a channel failed: the row is written first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.alerts.tables import alerts
from coffer.audit import AuditLog
from coffer.errors import CofferError
from coffer.log import get_logger
from coffer.pipeline.queue import JobQueue

__all__ = ["Alert", "AlertCenter", "AlertChannel", "TeamMail", "SignedWebhook", "WEBHOOK_KIND", "webhook_signature",
           "DETAIL_CHARS_MAX", "WEBHOOK_TIMEOUT_S", "deliver_webhooks"]

DETAIL_CHARS_MAX = 4_000
WEBHOOK_KIND = "alert.webhook"
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_RETRY_MS = 10_000
WEBHOOK_ATTEMPTS_MAX = 50
_log = get_logger("coffer.alerts")


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: int
    kind: str
    subject: str
    detail: str
    raised_at: str
    last_seen_at: str
    seen: int
    resolved_at: str | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.alert_id, "kind": self.kind, "subject": self.subject, "detail": self.detail,
                "raised_at": self.raised_at, "last_seen_at": self.last_seen_at, "seen": self.seen,
                "resolved_at": self.resolved_at}


class AlertChannel(Protocol):
    def send(self, alert: Alert, *, now: dt.datetime) -> None: ...


class TeamMail:
    """Mail to the security team, encrypted to every team key (through the notify outbox)."""

    def __init__(self, notifier: Any) -> None:
        self._notifier = notifier

    def send(self, alert: Alert, *, now: dt.datetime) -> None:
        self._notifier.notify_team("alert", {"kind": alert.kind, "at": alert.raised_at, "subject": alert.subject,
                                             "detail": alert.detail}, now=now,
                                   idempotency_key=f"alert:{alert.alert_id}")


def webhook_signature(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, b"coffer.alert\n" + body, hashlib.sha256).hexdigest()


class SignedWebhook:
    """Queues a POST of the alert to `url`, signed with HMAC-SHA256 (`X-Coffer-Alert-Signature`)."""

    def __init__(self, engine: Engine, url: str) -> None:
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise CofferError("alert webhooks go over https (plain http only to loopback)")
        self._engine = engine
        self._queue = JobQueue(engine)
        self.url = url

    def send(self, alert: Alert, *, now: dt.datetime) -> None:
        with self._engine.begin() as conn:
            self._queue.enqueue(conn, WEBHOOK_KIND, f"alert-webhook:{alert.alert_id}:{self.url[:120]}",
                                {"url": self.url, "alert": alert.as_json()}, now_ms=int(now.timestamp() * 1000),
                                attempts_max=WEBHOOK_ATTEMPTS_MAX)


def deliver_webhooks(engine: Engine, secret: bytes, *, worker: str, now: dt.datetime,
                     post: Callable[[str, bytes, dict[str, str]], int] | None = None, limit: int = 20) -> int:
    """Post due webhook jobs; a 2xx completes one, anything else retries later. Returns how many were delivered."""
    queue = JobQueue(engine)
    now_ms = int(now.timestamp() * 1000)
    send = post or _http_post
    delivered = 0
    for job in queue.claim(worker, [WEBHOOK_KIND], now_ms=now_ms, lease_ms=60_000, limit=limit):
        body = json.dumps(job.payload["alert"], sort_keys=True, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Coffer-Alert-Signature": webhook_signature(secret, body)}
        try:
            status = send(str(job.payload["url"]), body, headers)
        except httpx.HTTPError as error:
            status = 0
            _log.warning("alerts.webhook_unreachable", error=type(error).__name__)
        if 200 <= status < 300:
            with engine.begin() as conn:
                queue.complete(conn, job, {"status": status}, now_ms=now_ms)
            delivered += 1
        else:
            queue.fail(job, f"webhook answered {status}", now_ms=now_ms, retry_in_ms=WEBHOOK_RETRY_MS)
    return delivered


def _http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as client:
        return client.post(url, content=body, headers=headers).status_code


def _row(row: Any) -> Alert:
    return Alert(int(row.id), str(row.kind), str(row.subject), str(row.detail), str(row.raised_at),
                 str(row.last_seen_at), int(row.seen), row.resolved_at)


class AlertCenter:
    def __init__(self, engine: Engine, audit: AuditLog, channels: Sequence[AlertChannel] = ()) -> None:
        self._engine = engine
        self._audit = audit
        self._channels = tuple(channels)

    def raise_alert(self, kind: str, subject: str, detail: str, *, now: dt.datetime) -> Alert | None:
        """Open an alert (and tell every channel), or count it again if it is already open. Returns a new one."""
        if not kind or len(kind) > 40 or "|" in kind or not subject or len(subject) > 200:
            raise CofferError("an alert needs a kind (≤ 40) and a subject (≤ 200)")
        stamp, detail = now.isoformat(), detail[:DETAIL_CHARS_MAX]
        open_key = f"{kind}|{subject}"
        try:
            with self._engine.begin() as conn:
                counted = conn.execute(alerts.update().where(alerts.c.open_key == open_key).values(
                    last_seen_at=stamp, seen=alerts.c.seen + 1)).rowcount
                if counted:
                    return None
                inserted = conn.execute(alerts.insert().values(
                    kind=kind, subject=subject, detail=detail, raised_at=stamp, last_seen_at=stamp, seen=1,
                    open_key=open_key)).inserted_primary_key
                alert_id = int(inserted[0]) if inserted is not None else 0
                self._audit.append("alerts", "alert.raised", {"alert_id": alert_id, "kind": kind,
                                                              "subject": subject}, at=now, connection=conn)
        except sa.exc.IntegrityError:
            return None  # another coordinator opened it at the same moment: it is open, once
        alert = Alert(int(alert_id), kind, subject, detail, stamp, stamp, 1, None)
        for channel in self._channels:
            try:
                channel.send(alert, now=now)
            except CofferError as error:  # the alert row stands; the console shows it whatever a channel does
                _log.error("alerts.channel_failed", channel=type(channel).__name__, error=type(error).__name__,
                           detail=str(error)[:300])
        return alert

    def resolve(self, kind: str, subject: str, *, now: dt.datetime) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(alerts.update().where(alerts.c.open_key == f"{kind}|{subject}").values(
                resolved_at=now.isoformat(), open_key=None)).rowcount
            if done:
                self._audit.append("alerts", "alert.resolved", {"kind": kind, "subject": subject}, at=now,
                                   connection=conn)
        return bool(done)

    def open_alerts(self, *, kind: str | None = None) -> list[Alert]:
        query = sa.select(alerts).where(alerts.c.resolved_at.is_(None)).order_by(alerts.c.id)
        if kind is not None:
            query = query.where(alerts.c.kind == kind)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def history(self, *, limit: int = 200) -> list[Alert]:
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit))]
