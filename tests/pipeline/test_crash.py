"""Worker processes of the job queue killed with SIGKILL at random moments on PostgreSQL: every
job still completes, and its effect exists exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from coffer.db import make_engine, migrate
from coffer.pipeline import JobQueue, JobState

WORKER = Path(__file__).with_name("queue_worker.py")
WORKERS = 3
KILLS_MIN = int(os.environ.get("COFFER_QUEUE_KILLS", "40"))  # `make soak` runs 1,000
JOBS = max(300, KILLS_MIN * 8)


def _start(url: str, name: str, seed: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, str(WORKER), url, name, str(seed)],
                                stdout=subprocess.DEVNULL, stderr=sink)


@pytest.mark.slow
def test_sigkilled_workers_complete_every_job_exactly_once(pg_url: str, tmp_path: Path) -> None:
    """SIGKILLs of worker processes mid-job (40; `make soak` 1,000): every job ends done, each effect once, some retried."""
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"queue crash seed={seed}")
    rng = random.Random(seed)
    engine = make_engine(pg_url)
    migrate(engine)
    effects = sa.Table("test_effects", sa.MetaData(), sa.Column("key", sa.String(200)),
                       sa.Column("worker", sa.String(50)))
    effects.create(engine)
    queue = JobQueue(engine)
    now_ms = int(time.time() * 1000)
    with engine.begin() as conn:
        for n in range(JOBS):
            queue.enqueue(conn, "transfer", f"t{n}", {"n": n}, now_ms=now_ms)
    workers = {f"w{i}": _start(pg_url, f"w{i}", rng.getrandbits(32), tmp_path / "workers.log") for i in range(WORKERS)}
    kills = 0
    try:
        total = JOBS
        while kills < KILLS_MIN or queue.counts().get(("transfer", JobState.DONE), 0) < total:
            if kills < KILLS_MIN and queue.counts().get(("transfer", JobState.DONE), 0) >= total:
                with engine.begin() as conn:  # the queue drained before enough kills: more work to kill
                    for n in range(total, total + 100):
                        queue.enqueue(conn, "transfer", f"t{n}", {"n": n}, now_ms=int(time.time() * 1000))
                total += 100
            time.sleep(rng.uniform(0.02, 0.15))
            with engine.connect() as conn:  # kill a worker while it holds a job, so every kill lands mid-job
                holding = sorted({str(r[0]) for r in conn.execute(sa.text(
                    "SELECT claimed_by FROM pipeline_jobs WHERE state = 'running'"))} & set(workers))
            name = rng.choice(holding) if holding else ""
            if kills < KILLS_MIN and name:
                workers[name].send_signal(signal.SIGKILL)
                workers[name].wait(timeout=10)
                kills += 1
                workers[name] = _start(pg_url, name, rng.getrandbits(32), tmp_path / "workers.log")
            elif all(p.poll() is not None for p in workers.values()):
                pytest.fail("every worker died on its own: " + (tmp_path / "workers.log").read_text()[-2000:])
            if time.time() * 1000 - now_ms > (240 + KILLS_MIN) * 1000:
                pytest.fail(f"jobs not finished in time: {queue.counts()} (seed {seed})")
    finally:
        for process in workers.values():
            process.kill()
            process.wait(timeout=10)
    with engine.connect() as conn:
        per_key = dict(conn.execute(sa.select(effects.c.key, sa.func.count()).group_by(effects.c.key)).all())
        retried = conn.execute(sa.text("SELECT count(*) FROM pipeline_jobs WHERE attempts > 1")).scalar()
    engine.dispose()
    assert KILLS_MIN <= kills
    assert {f"t{n}": 1 for n in range(total)} == per_key
    assert {("transfer", JobState.DONE): total} == queue.counts()
    assert retried is not None and retried > 0, "no kill landed inside a job: the test proved nothing"
