"""The append-only, hash-chained audit log.

Every event carries the digest of the one before it, so editing, deleting or reordering any
row breaks `verify_chain`. Truncating the tail is caught by comparing against a checkpoint
(`verify_chain(expect_head=...)`); HSM-signed checkpoints come with the policy part.
Payloads are plain data: never put a secret in one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coffer.canonical import canonical_json
from coffer.db import metadata
from coffer.errors import CofferError

__all__ = ["AuditEvent", "AuditLog", "AuditChainBroken", "GENESIS_DIGEST", "audit_events"]

GENESIS_DIGEST = "0" * 64
ACTOR_CHARS_MAX = 200
EVENT_CHARS_MAX = 100

audit_events = sa.Table(
    "audit_events", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(ACTOR_CHARS_MAX), nullable=False),
    sa.Column("event", sa.String(EVENT_CHARS_MAX), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("prev_digest", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
)


class AuditChainBroken(CofferError):
    """The audit chain does not verify at `seq`: a row was edited, deleted or reordered."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(f"audit chain broken at seq {seq}: {message}")
        self.seq = seq


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: str
    actor: str
    event: str
    payload: Mapping[str, Any]
    prev_digest: str
    digest: str


def _digest(seq: int, at: str, actor: str, event: str, payload_json: str, prev_digest: str) -> str:
    body = canonical_json({"seq": seq, "at": at, "actor": actor, "event": event,
                           "payload": payload_json, "prev": prev_digest})
    return hashlib.sha256(b"coffer/audit/v1\x00" + body).hexdigest()


class AuditLog:
    """Appends and verifies audit events in the database of `engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, actor: str, event: str, payload: Mapping[str, Any], *, at: datetime,
               connection: Connection | None = None) -> AuditEvent:
        """Append one event. Pass `connection` to commit it atomically with the change it records."""
        if not actor or len(actor) > ACTOR_CHARS_MAX:
            raise CofferError("audit actor must be 1..200 characters")
        if not event or len(event) > EVENT_CHARS_MAX:
            raise CofferError("audit event name must be 1..100 characters")
        payload_json = canonical_json(dict(payload)).decode()
        if connection is not None:
            return self._append(connection, actor, event, payload_json, at)
        with self._engine.begin() as conn:
            return self._append(conn, actor, event, payload_json, at)

    def _append(self, conn: Connection, actor: str, event: str, payload_json: str, at: datetime) -> AuditEvent:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7310001)"))
        last = conn.execute(
            sa.select(audit_events.c.seq, audit_events.c.digest).order_by(audit_events.c.seq.desc()).limit(1)
        ).first()
        seq = 1 if last is None else int(last.seq) + 1
        prev = GENESIS_DIGEST if last is None else str(last.digest)
        stamp = at.isoformat()
        digest = _digest(seq, stamp, actor, event, payload_json, prev)
        conn.execute(audit_events.insert().values(seq=seq, at=stamp, actor=actor, event=event,
                                                  payload=payload_json, prev_digest=prev, digest=digest))
        return AuditEvent(seq, stamp, actor, event, json.loads(payload_json), prev, digest)

    def events(self, *, event: str | None = None, after_seq: int = 0, limit: int = 10_000) -> list[AuditEvent]:
        query = sa.select(audit_events).where(audit_events.c.seq > after_seq)
        if event is not None:
            query = query.where(audit_events.c.event == event)
        query = query.order_by(audit_events.c.seq).limit(limit)
        with self._engine.connect() as conn:
            return [self._row(row) for row in conn.execute(query)]

    @staticmethod
    def _row(row: Any) -> AuditEvent:
        return AuditEvent(int(row.seq), row.at, row.actor, row.event, json.loads(row.payload),
                          row.prev_digest, row.digest)

    def _iter_rows(self, batch: int = 5000) -> Iterator[Any]:
        after = 0
        while True:
            with self._engine.connect() as conn:
                rows = list(conn.execute(sa.select(audit_events).where(audit_events.c.seq > after)
                                         .order_by(audit_events.c.seq).limit(batch)))
            if not rows:
                return
            yield from rows
            after = int(rows[-1].seq)

    def head(self) -> tuple[int, str]:
        with self._engine.connect() as conn:
            last = conn.execute(sa.select(audit_events.c.seq, audit_events.c.digest)
                                .order_by(audit_events.c.seq.desc()).limit(1)).first()
        return (0, GENESIS_DIGEST) if last is None else (int(last.seq), str(last.digest))

    def verify_chain(self, *, expect_head: tuple[int, str] | None = None) -> int:
        """Re-check every link; return the number of events. Raises AuditChainBroken."""
        expected_seq = 1
        prev = GENESIS_DIGEST
        for row in self._iter_rows():
            seq = int(row.seq)
            if seq != expected_seq:
                raise AuditChainBroken(f"expected seq {expected_seq}, found {seq} (row deleted or moved)", seq=seq)
            if row.prev_digest != prev:
                raise AuditChainBroken("link to the previous event does not match", seq=seq)
            if _digest(seq, row.at, row.actor, row.event, row.payload, prev) != row.digest:
                raise AuditChainBroken("event content does not match its digest", seq=seq)
            prev = row.digest
            expected_seq += 1
        count = expected_seq - 1
        if expect_head is not None:
            head_seq, head_digest = expect_head
            if count < head_seq:
                raise AuditChainBroken(f"chain ends at {count}, checkpoint says {head_seq} (tail cut)", seq=count)
            if head_seq > 0 and self._digest_at(head_seq) != head_digest:
                raise AuditChainBroken("checkpoint digest does not match", seq=head_seq)
        return count

    def _digest_at(self, seq: int) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(audit_events.c.digest).where(audit_events.c.seq == seq)).scalar()
        return None if value is None else str(value)
