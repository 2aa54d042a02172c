"""The coordinator's durable job queue: every job and its state is a row, claimed by exactly one
worker at a time, completed exactly once.

A job is enqueued inside the caller's transaction, so a state change and the work it calls for
commit together or not at all. Workers claim ready jobs with `SELECT … FOR UPDATE SKIP LOCKED` on
PostgreSQL (any number of coordinators against one database) and under SQLite's single writer
otherwise. A claim takes a lease and bumps the job's fence; completion happens in the same
transaction as the job's effects and only while the fence is still current, so a worker that was
killed, or stalled past its lease while another took over, can never complete a job twice.

It must never run a job's effects outside a transaction that also records its completion.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coffer.canonical import canonical_json
from coffer.db import is_postgres
from coffer.pipeline.errors import JobInvalid, LeaseLost
from coffer.pipeline.tables import jobs

__all__ = ["Job", "JobQueue", "JobState", "KIND_CHARS_MAX", "DEDUPE_KEY_CHARS_MAX", "PAYLOAD_BYTES_MAX",
           "CLAIM_BATCH_MAX", "ATTEMPTS_MAX_DEFAULT", "ERROR_CHARS_MAX"]

KIND_CHARS_MAX = 64
DEDUPE_KEY_CHARS_MAX = 200
PAYLOAD_BYTES_MAX = 1 << 20
CLAIM_BATCH_MAX = 1_000
ATTEMPTS_MAX_DEFAULT = 10
ERROR_CHARS_MAX = 2_000


class JobState:
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job: what to do, and the fence that proves this worker still holds it."""

    job_id: int
    kind: str
    dedupe_key: str
    payload: Mapping[str, Any]
    attempts: int
    attempts_max: int
    fence: int
    worker: str


def _check_kind(kind: str) -> None:
    if not kind or len(kind) > KIND_CHARS_MAX or not kind.replace("_", "").replace(".", "").isalnum():
        raise JobInvalid(f"job kind must be 1..{KIND_CHARS_MAX} letters, digits, '_' or '.'")


class JobQueue:
    """The queue over one database. Times are milliseconds since the epoch, passed in by the caller."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = is_postgres(engine)

    def enqueue(self, conn: Connection, kind: str, dedupe_key: str, payload: Mapping[str, Any], *,
                now_ms: int, not_before_ms: int | None = None,
                attempts_max: int = ATTEMPTS_MAX_DEFAULT) -> int:
        """Add a job in the caller's transaction; the same `dedupe_key` again returns the first job's id."""
        _check_kind(kind)
        if not dedupe_key or len(dedupe_key) > DEDUPE_KEY_CHARS_MAX:
            raise JobInvalid(f"dedupe key must be 1..{DEDUPE_KEY_CHARS_MAX} characters")
        if not 1 <= attempts_max <= 1_000:
            raise JobInvalid("attempts_max must be 1..1000")
        body = canonical_json(dict(payload))
        if len(body) > PAYLOAD_BYTES_MAX:
            raise JobInvalid(f"payload over {PAYLOAD_BYTES_MAX} bytes")
        values = {"kind": kind, "dedupe_key": dedupe_key, "state": JobState.READY, "payload": body.decode(),
                  "attempts": 0, "attempts_max": attempts_max, "fence": 0,
                  "not_before_ms": now_ms if not_before_ms is None else not_before_ms,
                  "created_ms": now_ms, "updated_ms": now_ms}
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(jobs).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"]))
        else:
            conn.execute(jobs.insert().prefix_with("OR IGNORE").values(**values))
        row = conn.execute(sa.select(jobs.c.id, jobs.c.kind).where(jobs.c.dedupe_key == dedupe_key)).one()
        if row.kind != kind:
            raise JobInvalid(f"dedupe key {dedupe_key!r} already names a job of kind {row.kind!r}")
        return int(row.id)

    def claim(self, worker: str, kinds: Sequence[str], *, now_ms: int, lease_ms: int,
              limit: int = 1) -> list[Job]:
        """Claim up to `limit` due jobs of `kinds` (and any whose lease expired) for `worker`."""
        if not 1 <= limit <= CLAIM_BATCH_MAX:
            raise JobInvalid(f"claim limit must be 1..{CLAIM_BATCH_MAX}")
        if lease_ms <= 0:
            raise JobInvalid("lease must be positive")
        for kind in kinds:
            _check_kind(kind)
        due = sa.or_(
            sa.and_(jobs.c.state == JobState.READY, jobs.c.not_before_ms <= now_ms),
            sa.and_(jobs.c.state == JobState.RUNNING, jobs.c.lease_until_ms < now_ms),
        )
        query = (sa.select(jobs).where(jobs.c.kind.in_(list(kinds)), due).order_by(jobs.c.id).limit(limit))
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
            claimed: list[Job] = []
            for row in rows:
                if row.attempts >= row.attempts_max:
                    self._bury(conn, int(row.id), "attempts exhausted (lease expired on the last one)", now_ms)
                    continue
                fence = int(row.fence) + 1
                updated = conn.execute(
                    jobs.update().where(jobs.c.id == row.id, jobs.c.fence == row.fence)
                    .values(state=JobState.RUNNING, fence=fence, claimed_by=worker, attempts=row.attempts + 1,
                            lease_until_ms=now_ms + lease_ms, updated_ms=now_ms)).rowcount
                if updated != 1:
                    continue  # another writer took it between our read and our write
                claimed.append(Job(int(row.id), str(row.kind), str(row.dedupe_key), json.loads(row.payload),
                                   int(row.attempts) + 1, int(row.attempts_max), fence, worker))
            return claimed

    def _fenced(self, job: Job) -> sa.ColumnElement[bool]:
        return sa.and_(jobs.c.id == job.job_id, jobs.c.fence == job.fence, jobs.c.state == JobState.RUNNING)

    def complete(self, conn: Connection, job: Job, result: Mapping[str, Any], *, now_ms: int) -> None:
        """Mark `job` done in the caller's transaction (the one that made its effects); raises LeaseLost."""
        updated = conn.execute(jobs.update().where(self._fenced(job)).values(
            state=JobState.DONE, result=canonical_json(dict(result)).decode(), lease_until_ms=None,
            error=None, updated_ms=now_ms)).rowcount
        if updated != 1:
            raise LeaseLost(job.job_id, job.fence)

    def fail(self, job: Job, error: str, *, now_ms: int, retry_in_ms: int) -> str:
        """Record a failed attempt: back to ready after `retry_in_ms`, or dead when attempts are used up."""
        state = JobState.DEAD if job.attempts >= job.attempts_max else JobState.READY
        with self._engine.begin() as conn:
            updated = conn.execute(jobs.update().where(self._fenced(job)).values(
                state=state, error=error[:ERROR_CHARS_MAX], lease_until_ms=None,
                not_before_ms=now_ms + max(0, retry_in_ms), updated_ms=now_ms)).rowcount
        if updated != 1:
            raise LeaseLost(job.job_id, job.fence)
        return state

    def renew(self, job: Job, *, now_ms: int, lease_ms: int) -> None:
        """Extend the lease of a long job; raises LeaseLost when another worker has it."""
        with self._engine.begin() as conn:
            updated = conn.execute(jobs.update().where(self._fenced(job)).values(
                lease_until_ms=now_ms + lease_ms, updated_ms=now_ms)).rowcount
        if updated != 1:
            raise LeaseLost(job.job_id, job.fence)

    def _bury(self, conn: Connection, job_id: int, error: str, now_ms: int) -> None:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            state=JobState.DEAD, error=error, lease_until_ms=None, updated_ms=now_ms))

    def counts(self) -> dict[tuple[str, str], int]:
        """Jobs per (kind, state): what the console and /metrics show."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.kind, jobs.c.state, sa.func.count())
                                .group_by(jobs.c.kind, jobs.c.state)).all()
        return {(str(kind), str(state)): int(count) for kind, state, count in rows}

    def stuck(self, *, now_ms: int, older_than_ms: int) -> list[tuple[int, str, str]]:
        """Jobs not finished and not touched for `older_than_ms`: (id, kind, state), for alerts."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.id, jobs.c.kind, jobs.c.state).where(
                jobs.c.state.in_([JobState.READY, JobState.RUNNING, JobState.DEAD]),
                jobs.c.updated_ms < now_ms - older_than_ms).order_by(jobs.c.id).limit(CLAIM_BATCH_MAX)).all()
        return [(int(i), str(k), str(s)) for i, k, s in rows]

    def state_of(self, dedupe_key: str) -> tuple[str, int, Mapping[str, Any] | None] | None:
        """(state, attempts, result) of the job with `dedupe_key`, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs.c.state, jobs.c.attempts, jobs.c.result)
                               .where(jobs.c.dedupe_key == dedupe_key)).one_or_none()
        if row is None:
            return None
        return str(row.state), int(row.attempts), json.loads(row.result) if row.result else None
