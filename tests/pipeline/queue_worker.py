"""A worker process for the queue's crash test: claims jobs and makes each one's effect in the
transaction that completes it, pausing at random inside the transaction so kills land mid-job.

Run: python queue_worker.py DATABASE_URL WORKER_NAME SEED
"""

from __future__ import annotations

import random
import sys
import time

import sqlalchemy as sa

from coffer.db import make_engine
from coffer.pipeline import JobQueue, LeaseLost

LEASE_MS = 400
EFFECTS = sa.Table("test_effects", sa.MetaData(), sa.Column("key", sa.String(200)),
                   sa.Column("worker", sa.String(50)))


def main() -> None:
    url, worker, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    engine = make_engine(url)
    queue = JobQueue(engine)
    while True:
        batch = queue.claim(worker, ["transfer"], now_ms=int(time.time() * 1000), lease_ms=LEASE_MS,
                            limit=rng.randint(1, 4))
        if not batch:
            time.sleep(0.02)
            continue
        for job in batch:
            try:
                with engine.begin() as conn:
                    conn.execute(EFFECTS.insert().values(key=job.dedupe_key, worker=worker))
                    time.sleep(rng.random() * 0.03)
                    queue.complete(conn, job, {"by": worker}, now_ms=int(time.time() * 1000))
            except LeaseLost:
                continue


if __name__ == "__main__":
    main()
