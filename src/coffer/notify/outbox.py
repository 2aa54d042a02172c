"""The durable mail outbox: a notice is a row before anyone tries to send it.

`Outbox.enqueue` commits the (already encrypted) mail; `OutboxWorker.run_once` claims due rows
with a compare-and-set lease (safe with several coordinators), hands them to the sender and
records the result. A failed send is retried with capped exponential backoff, at most
`ATTEMPTS_MAX` times (more than a day at the cap); after that the row is `dead`, kept, audited
and can be re-queued with `requeue`. Nothing is ever deleted, so no notice is lost while the
mail server is down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from coffer.audit import AuditLog
from coffer.notify import tables as t
from coffer.notify.errors import NotifyError

_log = structlog.get_logger("coffer.notify.outbox")

__all__ = ["Outbox", "OutboxItem", "OutboxWorker", "MailSender", "ATTEMPTS_MAX", "BACKOFF_BASE_S",
           "BACKOFF_MAX_S", "CLAIM_LEASE_S", "BATCH_MAX", "backoff_s"]

ATTEMPTS_MAX = 120
BACKOFF_BASE_S = 5
BACKOFF_MAX_S = 900
CLAIM_LEASE_S = 120  # a claimed row is invisible to other workers this long (crash = retried later)
BATCH_MAX = 50
SUBJECT_CHARS_MAX = 200
BODY_CHARS_MAX = 2 * 1024 * 1024
RECIPIENT_CHARS_MAX = 254


def _epoch(now: datetime) -> int:
    return int(now.timestamp())


def backoff_s(attempts: int) -> int:
    """Delay before attempt `attempts + 1`: 5 s, 10 s, 20 s ... capped at 15 min."""
    return int(min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** min(attempts, 20))))


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    event: str
    client_id: str | None
    recipient: str
    subject: str
    body: str
    encrypted: bool
    status: str
    attempts: int
    next_attempt_at_s: int
    last_error: str | None
    created_at_s: int
    sent_at_s: int | None

    def __repr__(self) -> str:  # the body may be a plaintext notice: keep it out of logs
        return f"OutboxItem(id={self.id}, event={self.event!r}, status={self.status!r}, attempts={self.attempts})"


class MailSender(Protocol):
    def send(self, item: OutboxItem) -> None:
        """Hand one mail to the server; raise on any failure."""


def _item(row: Any) -> OutboxItem:
    return OutboxItem(int(row.id), row.event, row.client_id, row.recipient, row.subject, row.body,
                      bool(row.encrypted), row.status, int(row.attempts), int(row.next_attempt_at_s),
                      row.last_error, int(row.created_at_s), None if row.sent_at_s is None else int(row.sent_at_s))


class Outbox:
    """Durable mail queue in the coordinator's database."""

    def __init__(self, engine: Engine, *, audit: AuditLog | None = None) -> None:
        self._engine = engine
        self._audit = audit or AuditLog(engine)

    def enqueue(self, *, recipient: str, subject: str, body: str, encrypted: bool, event: str,
                client_id: str | None, now: datetime, idempotency_key: str | None = None,
                connection: Connection | None = None) -> int:
        """Store one mail; with `idempotency_key`, a repeat returns the first row's id."""
        if not recipient or len(recipient) > RECIPIENT_CHARS_MAX or "\n" in recipient or "\r" in recipient:
            raise NotifyError("bad recipient address")
        if len(subject) > SUBJECT_CHARS_MAX or "\n" in subject or "\r" in subject:
            raise NotifyError("bad subject")
        if len(body) > BODY_CHARS_MAX:
            raise NotifyError("mail body too large")
        values = {"idempotency_key": idempotency_key, "event": event, "client_id": client_id,
                  "recipient": recipient, "subject": subject, "body": body, "encrypted": encrypted,
                  "status": "pending", "attempts": 0, "next_attempt_at_s": _epoch(now),
                  "created_at_s": _epoch(now)}
        if connection is not None:
            return self._insert(connection, values)
        with self._engine.begin() as conn:
            return self._insert(conn, values)

    def _insert(self, conn: Connection, values: dict[str, Any]) -> int:
        key = values["idempotency_key"]
        if key is not None:
            existing = conn.execute(sa.select(t.outbox.c.id).where(t.outbox.c.idempotency_key == key)).scalar()
            if existing is not None:
                return int(existing)
        result = conn.execute(t.outbox.insert().values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def get(self, item_id: int) -> OutboxItem:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.outbox).where(t.outbox.c.id == item_id)).first()
        if row is None:
            raise NotifyError(f"no outbox item {item_id}")
        return _item(row)

    def items(self, *, client_id: str | None = None, status: str | None = None,
              limit: int = 1000) -> list[OutboxItem]:
        query = sa.select(t.outbox).order_by(t.outbox.c.id).limit(limit)
        if client_id is not None:
            query = query.where(t.outbox.c.client_id == client_id)
        if status is not None:
            query = query.where(t.outbox.c.status == status)
        with self._engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.outbox.c.status, sa.func.count()).group_by(t.outbox.c.status))
            return {str(status): int(count) for status, count in rows}

    def claim_next(self, now: datetime) -> OutboxItem | None:
        """Claim the most overdue row by moving its next attempt past a lease (compare-and-set)."""
        at = _epoch(now)
        for _ in range(BATCH_MAX):  # lost races with other workers are retried, boundedly
            with self._engine.connect() as conn:
                row = conn.execute(sa.select(t.outbox).where(
                    t.outbox.c.status == "pending", t.outbox.c.next_attempt_at_s <= at)
                    .order_by(t.outbox.c.next_attempt_at_s, t.outbox.c.id).limit(1)).first()
            if row is None:
                return None
            with self._engine.begin() as conn:
                result = conn.execute(t.outbox.update().where(
                    t.outbox.c.id == row.id, t.outbox.c.status == "pending",
                    t.outbox.c.next_attempt_at_s == row.next_attempt_at_s)
                    .values(next_attempt_at_s=at + CLAIM_LEASE_S))
            if result.rowcount == 1:
                return _item(row)
        return None

    def mark_sent(self, item_id: int, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(t.outbox.update().where(t.outbox.c.id == item_id, t.outbox.c.status == "pending")
                         .values(status="sent", sent_at_s=_epoch(now), last_error=None))

    def mark_failed(self, item: OutboxItem, error: str, now: datetime) -> None:
        attempts = item.attempts + 1
        dead = attempts >= ATTEMPTS_MAX
        with self._engine.begin() as conn:
            conn.execute(t.outbox.update().where(t.outbox.c.id == item.id, t.outbox.c.status == "pending")
                         .values(attempts=attempts, last_error=error[:300], status="dead" if dead else "pending",
                                 next_attempt_at_s=_epoch(now) + backoff_s(attempts)))
            if dead:
                self._audit.append("notify", "notify.mail_dead",
                                   {"outbox_id": item.id, "event": item.event, "client_id": item.client_id,
                                    "attempts": attempts}, at=now, connection=conn)

    def requeue(self, item_id: int, *, by: str, now: datetime) -> None:
        """Give a dead mail a fresh set of attempts."""
        with self._engine.begin() as conn:
            result = conn.execute(t.outbox.update().where(t.outbox.c.id == item_id, t.outbox.c.status == "dead")
                                  .values(status="pending", attempts=0, next_attempt_at_s=_epoch(now)))
            if result.rowcount != 1:
                raise NotifyError(f"outbox item {item_id} is not dead")
            self._audit.append(by, "notify.mail_requeued", {"outbox_id": item_id}, at=now, connection=conn)


class OutboxWorker:
    """Delivers due mails; `run_once` for tests and schedulers, `start`/`stop` for a thread."""

    def __init__(self, outbox: Outbox, sender: MailSender, *, clock: Callable[[], datetime] | None = None) -> None:
        self._outbox = outbox
        self._sender = sender
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> int:
        """Try every due mail once; stop at the first failure (the server is likely down). Returns sent count."""
        now = now or self._clock()
        sent = 0
        for _ in range(BATCH_MAX):
            item = self._outbox.claim_next(now)
            if item is None:
                break
            try:
                self._sender.send(item)
            except Exception as exc:  # any failure of the server or the network: retry later
                self._outbox.mark_failed(item, f"{type(exc).__name__}: {exc}", now)
                break
            self._outbox.mark_sent(item.id, now)
            sent += 1
        return sent

    def start(self, interval_s: float = 1.0) -> None:
        if self._thread is not None:
            raise NotifyError("outbox worker already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval_s,), name="coffer-outbox", daemon=True)
        self._thread.start()

    def _loop(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the database may be briefly unavailable; try again next round
                _log.warning("outbox_round_failed", error=type(exc).__name__)
            self._stop.wait(interval_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
