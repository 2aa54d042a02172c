"""The scheduler: several coordinators on one database run each periodic job once per period."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.recon import Job, JobOutcome, Scheduler, recent_runs
from coffer.testing import wait_until


def _run_two(url: str, seconds: float) -> list[tuple[str, int]]:
    """Two schedulers on `url` for `seconds`; (node, run id) of every job invocation."""
    calls: list[tuple[str, int]] = []
    lock = threading.Lock()
    engines = [make_engine(url), make_engine(url)]
    schedulers = []
    for name, engine in zip(("node-a", "node-b"), engines, strict=True):
        def job(run_id: int, node: str = name) -> JobOutcome:
            with lock:
                calls.append((node, run_id))
            time.sleep(0.03)
            return JobOutcome("ok", {"run_id": run_id})

        schedulers.append(Scheduler(engine, [Job("tick", 0.2, job)], node=name).start(tick_s=0.01))
    try:
        time.sleep(seconds)
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        for engine in engines:
            engine.dispose()
    return calls


def test_two_schedulers_on_postgresql_run_once_per_period(pg_url: str) -> None:
    """Two coordinators on one PostgreSQL: each period's job runs exactly once, on one of them."""
    migrate_engine = make_engine(pg_url)
    migrate(migrate_engine)
    calls = _run_two(pg_url, 2.0)
    runs = recent_runs(migrate_engine, job="tick", limit=1000)
    assert sorted(run_id for _, run_id in calls) == sorted(r.run_id for r in runs)
    assert len(runs) == len({r.period for r in runs})
    assert len(runs) >= 3
    assert {"node-a", "node-b"} >= {r.node for r in runs}
    assert {"ok"} == {r.status for r in runs if r.finished_at}
    migrate_engine.dispose()


def test_two_schedulers_on_sqlite_run_once_per_period(tmp_path: Path) -> None:
    """Two schedulers on one SQLite file (lock row and unique claim) also run each period once."""
    url = f"sqlite:///{tmp_path / 'coffer.db'}"
    engine = make_engine(url)
    migrate(engine)
    calls = _run_two(url, 1.5)
    runs = recent_runs(engine, job="tick", limit=1000)
    assert sorted(run_id for _, run_id in calls) == sorted(r.run_id for r in runs)
    assert len(runs) == len({r.period for r in runs})
    assert len(runs) >= 2
    engine.dispose()



def test_failing_job_recorded_as_error_and_scheduler_survives(sqlite_engine: Engine) -> None:
    """A job that raises is recorded with status error; the scheduler keeps running."""
    now = [1000.0]

    def broken(run_id: int) -> JobOutcome:
        raise RuntimeError("feed down")

    scheduler = Scheduler(sqlite_engine, [Job("broken", 10, broken)], node="n", clock=lambda: now[0])
    first = scheduler.run_due()
    assert ["error"] == [r.status for r in first]
    assert "RuntimeError" == first[0].summary["error"]
    assert [] == scheduler.run_due()
    now[0] += 10
    assert 1 == len(scheduler.run_due())


def test_scheduler_thread_runs_due_jobs(sqlite_engine: Engine) -> None:
    """Started, the scheduler runs a short-interval job repeatedly and records each run."""
    scheduler = Scheduler(sqlite_engine, [Job("quick", 0.1, lambda run_id: JobOutcome("ok"))], node="n").start()
    try:
        wait_until(lambda: len(recent_runs(sqlite_engine, job="quick")) >= 3, timeout=10, what="three runs")
    finally:
        scheduler.stop()
