"""The durable job queue on SQLite and PostgreSQL: idempotent enqueue, exclusive claims, fenced completion."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.pipeline import JobInvalid, JobQueue, JobState, LeaseLost

NOW = 1_000_000


def _effects(engine: Engine) -> sa.Table:
    table = sa.Table("test_effects", sa.MetaData(), sa.Column("key", sa.String(200)), sa.Column("worker", sa.String(50)))
    table.create(engine, checkfirst=True)
    return table


def test_enqueue_is_idempotent_per_dedupe_key(engine: Engine) -> None:
    """The same dedupe key twice gives the first job's id and one row."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        first = queue.enqueue(conn, "cold.batch", "batch:1", {"n": 1}, now_ms=NOW)
        second = queue.enqueue(conn, "cold.batch", "batch:1", {"n": 2}, now_ms=NOW)
    assert first == second
    assert {("cold.batch", JobState.READY): 1} == queue.counts()


def test_enqueue_refuses_a_dedupe_key_of_another_kind(engine: Engine) -> None:
    """A dedupe key already used by another kind is refused, not silently merged."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "deposit.credit", "k", {}, now_ms=NOW)
    with pytest.raises(JobInvalid, match="already names"), engine.begin() as conn:
        queue.enqueue(conn, "cold.batch", "k", {}, now_ms=NOW)


@pytest.mark.parametrize("kind", ["", "a" * 65, "drop table;", "kind with space"])
def test_enqueue_refuses_bad_kinds(engine: Engine, kind: str) -> None:
    """A kind outside the limits is a typed error and adds nothing."""
    queue = JobQueue(engine)
    with pytest.raises(JobInvalid), engine.begin() as conn:
        queue.enqueue(conn, kind, "k", {}, now_ms=NOW)
    assert {} == queue.counts()


def test_enqueue_rolls_back_with_the_callers_transaction(engine: Engine) -> None:
    """A job enqueued in a transaction that fails is not there: state change and job commit together."""
    queue = JobQueue(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        queue.enqueue(conn, "cold.batch", "b", {}, now_ms=NOW)
        raise RuntimeError("the state change failed")
    assert {} == queue.counts()


def test_a_job_not_yet_due_is_not_claimed(engine: Engine) -> None:
    """`not_before_ms` holds a job back until its time."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "k", "later", {}, now_ms=NOW, not_before_ms=NOW + 5_000)
    assert [] == queue.claim("w1", ["k"], now_ms=NOW, lease_ms=1_000)
    assert ["later"] == [j.dedupe_key for j in queue.claim("w1", ["k"], now_ms=NOW + 5_000, lease_ms=1_000)]


def test_a_claimed_job_is_not_claimed_again_while_leased(engine: Engine) -> None:
    """Two workers never hold the same job while its lease runs."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "k", "only", {}, now_ms=NOW)
    assert 1 == len(queue.claim("w1", ["k"], now_ms=NOW, lease_ms=1_000))
    assert [] == queue.claim("w2", ["k"], now_ms=NOW + 999, lease_ms=1_000)


def test_a_stalled_worker_cannot_complete_after_its_lease_was_taken(engine: Engine) -> None:
    """A worker whose lease expired and was re-claimed gets LeaseLost, and its effects roll back."""
    queue = JobQueue(engine)
    effects = _effects(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "k", "pay:1", {}, now_ms=NOW)
    (stalled,) = queue.claim("w1", ["k"], now_ms=NOW, lease_ms=1_000)
    (taker,) = queue.claim("w2", ["k"], now_ms=NOW + 1_001, lease_ms=1_000)
    assert taker.fence == stalled.fence + 1
    with pytest.raises(LeaseLost), engine.begin() as conn:
        conn.execute(effects.insert().values(key="pay:1", worker="w1"))
        queue.complete(conn, stalled, {}, now_ms=NOW + 1_002)
    with engine.begin() as conn:
        conn.execute(effects.insert().values(key="pay:1", worker="w2"))
        queue.complete(conn, taker, {"paid": True}, now_ms=NOW + 1_003)
    with engine.connect() as conn:
        assert [("pay:1", "w2")] == [tuple(r) for r in conn.execute(sa.select(effects)).all()]
    assert (JobState.DONE, 2, {"paid": True}) == queue.state_of("pay:1")


def test_failures_retry_then_the_job_is_dead(engine: Engine) -> None:
    """A failed attempt goes back to ready after its delay; the last one leaves the job dead, for an alert."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "k", "flaky", {}, now_ms=NOW, attempts_max=2)
    (job,) = queue.claim("w", ["k"], now_ms=NOW, lease_ms=1_000)
    assert JobState.READY == queue.fail(job, "node unreachable", now_ms=NOW, retry_in_ms=500)
    assert [] == queue.claim("w", ["k"], now_ms=NOW + 499, lease_ms=1_000)
    (job,) = queue.claim("w", ["k"], now_ms=NOW + 500, lease_ms=1_000)
    assert JobState.DEAD == queue.fail(job, "node unreachable", now_ms=NOW + 501, retry_in_ms=500)
    assert [(1, "k", JobState.DEAD)] == [(1, k, s) for _, k, s in queue.stuck(now_ms=NOW + 10_000, older_than_ms=1)]


def test_a_job_whose_last_lease_expired_is_buried_not_run_again(engine: Engine) -> None:
    """A job that used its last attempt and was abandoned is marked dead, not run past its limit."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "k", "once", {}, now_ms=NOW, attempts_max=1)
    assert 1 == len(queue.claim("w", ["k"], now_ms=NOW, lease_ms=10))
    assert [] == queue.claim("w", ["k"], now_ms=NOW + 11, lease_ms=10)
    assert JobState.DEAD == queue.state_of("once")[0]  # type: ignore[index]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_concurrent_claims_on_postgresql_hand_out_each_job_once(engine: Engine) -> None:
    """Eight threads claiming with SKIP LOCKED take 400 jobs between them, each exactly once."""
    queue = JobQueue(engine)
    with engine.begin() as conn:
        for n in range(400):
            queue.enqueue(conn, "k", f"j{n}", {"n": n}, now_ms=NOW)
    taken: list[str] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        while True:
            batch = queue.claim(worker, ["k"], now_ms=NOW, lease_ms=60_000, limit=7)
            if not batch:
                return
            with lock:
                taken.extend(j.dedupe_key for j in batch)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(f"j{n}" for n in range(400)) == sorted(taken)
