"""The in-process scheduler of periodic checks, safe with several coordinators on one database.

Time is cut into periods of each job's interval (period = floor(epoch seconds / interval)). A run
is claimed by inserting (job, period) into `recon_runs`, whose unique constraint lets exactly one
coordinator claim each period. While it runs, a job also holds a lock so that two runs of the
same job never overlap: a session advisory lock on PostgreSQL, a leased lock row on SQLite.
Every run and its outcome is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.canonical import canonical_json
from coffer.errors import CofferError
from coffer.log import get_logger
from coffer.recon.errors import ReconError
from coffer.recon.tables import locks, runs

__all__ = ["Job", "JobOutcome", "RunRecord", "Scheduler", "recent_runs", "JOBS_MAX", "SUMMARY_CHARS_MAX"]

JOBS_MAX = 32
SUMMARY_CHARS_MAX = 100_000
TICK_S_MAX = 1.0
_log = get_logger("coffer.recon.scheduler")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    status: str  # "ok", "mismatch" or "error"
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    """`run(run_id)` does one check and returns its outcome; it may raise (recorded as an error)."""

    name: str
    interval_s: float
    run: Callable[[int], JobOutcome]


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: int
    job: str
    period: int
    node: str
    started_at: str
    finished_at: str | None
    status: str
    summary: Mapping[str, Any]


def _lock_key(job: str) -> int:
    return int.from_bytes(hashlib.sha256(b"coffer/recon/job\x00" + job.encode()).digest()[:8], "big", signed=True)


class Scheduler:
    """Runs `jobs` when due; `run_due()` does one pass, `start()` loops in a daemon thread."""

    def __init__(self, engine: Engine, jobs: Sequence[Job], *, node: str,
                 clock: Callable[[], float] = time.time, lease_s: float = 600.0) -> None:
        if not jobs or len(jobs) > JOBS_MAX:
            raise ReconError(f"1..{JOBS_MAX} jobs")
        if len({job.name for job in jobs}) != len(jobs) or any(job.interval_s <= 0 for job in jobs):
            raise ReconError("job names must be unique and intervals positive")
        self._engine = engine
        self.jobs = tuple(jobs)
        self.node = node
        self._clock = clock
        self._lease_ms = int(lease_s * 1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def period(self, job: Job, now: float | None = None) -> int:
        return int((self._clock() if now is None else now) // job.interval_s)

    def run_due(self) -> list[RunRecord]:
        """Run each job whose current period nobody has claimed yet; return the runs done here."""
        done = []
        for job in self.jobs:
            record = self._run_if_due(job)
            if record is not None:
                done.append(record)
        return done

    def _run_if_due(self, job: Job) -> RunRecord | None:
        period = self.period(job)
        with self._engine.connect() as conn:
            claimed = conn.execute(sa.select(runs.c.id).where((runs.c.job == job.name) & (runs.c.period == period))
                                   ).first()
        if claimed is not None:
            return None
        with self._job_lock(job) as held:
            if not held:
                return None
            run_id = self._claim(job, period)
            if run_id is None:
                return None
            return self._execute(job, run_id, period)

    def _claim(self, job: Job, period: int) -> int | None:
        started = datetime.now(UTC).isoformat()
        try:
            with self._engine.begin() as conn:
                result = conn.execute(runs.insert().values(job=job.name, period=period, node=self.node,
                                                           started_at=started, status="running", summary="{}"))
                key = result.inserted_primary_key
                return None if key is None else int(key[0])
        except sa.exc.IntegrityError:
            return None

    def _execute(self, job: Job, run_id: int, period: int) -> RunRecord:
        try:
            outcome = job.run(run_id)
        except Exception as exc:  # a failing job is recorded and retried next period, never fatal here
            _log.error("recon.job.error", job=job.name, run_id=run_id, error=type(exc).__name__)
            outcome = JobOutcome("error", {"error": type(exc).__name__, "message": str(exc)[:2000]})
        try:
            summary = canonical_json(dict(outcome.summary)).decode()
        except CofferError:  # canonical_json refuses floats and odd types
            summary = json.dumps({"unencodable": True})
        if len(summary) > SUMMARY_CHARS_MAX:
            summary = json.dumps({"truncated": summary[:SUMMARY_CHARS_MAX]})
        finished = datetime.now(UTC).isoformat()
        with self._engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(finished_at=finished, status=outcome.status,
                                                                         summary=summary))
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()
        return _record(row)

    @contextmanager
    def _job_lock(self, job: Job) -> Iterator[bool]:
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect() as conn:
                key = _lock_key(job.name)
                held = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar())
                conn.commit()
                try:
                    yield held
                finally:
                    if held:
                        conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                        conn.commit()
            return
        held = self._take_lease(job)
        try:
            yield held
        finally:
            if held:
                with self._engine.begin() as conn:
                    conn.execute(locks.update().where((locks.c.job == job.name) & (locks.c.holder == self.node))
                                 .values(lease_until_ms=0))

    def _take_lease(self, job: Job) -> bool:
        now_ms = int(self._clock() * 1000)
        try:
            with self._engine.begin() as conn:
                taken = conn.execute(locks.update().where(
                    (locks.c.job == job.name) & ((locks.c.lease_until_ms < now_ms) | (locks.c.holder == self.node))
                ).values(holder=self.node, lease_until_ms=now_ms + self._lease_ms)).rowcount
                if taken == 1:
                    return True
                exists = conn.execute(sa.select(locks.c.job).where(locks.c.job == job.name)).first()
                if exists is not None:
                    return False
                conn.execute(locks.insert().values(job=job.name, holder=self.node,
                                                   lease_until_ms=now_ms + self._lease_ms))
                return True
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            return False

    # -- the loop ----------------------------------------------------------------------------
    def start(self, *, tick_s: float | None = None) -> Scheduler:
        if self._thread is not None:
            return self
        tick = tick_s if tick_s is not None else min(TICK_S_MAX, min(j.interval_s for j in self.jobs) / 5)
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_due()
                except Exception as exc:  # the database may be briefly unavailable; try again next tick
                    _log.error("recon.scheduler.pass_failed", node=self.node, error=type(exc).__name__)
                self._stop.wait(tick)

        self._thread = threading.Thread(target=loop, name=f"recon-scheduler-{self.node}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def _record(row: Any) -> RunRecord:
    return RunRecord(int(row.id), row.job, int(row.period), row.node, row.started_at, row.finished_at, row.status,
                     json.loads(row.summary))


def recent_runs(engine: Engine, *, job: str | None = None, limit: int = 100) -> list[RunRecord]:
    """The newest runs first (for the console and the proof of reserves)."""
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    if job is not None:
        query = query.where(runs.c.job == job)
    with engine.connect() as conn:
        return [_record(row) for row in conn.execute(query)]
