"""`coffer serve` SIGKILLed at random moments while integrations send withdrawal requests (retrying
with the same Idempotency-Key), restarted each time, on PostgreSQL; and two coordinators on one
database, one killed: the survivor serves and takes over the periodic work."""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from coffer.testing.processes import free_port
from coffer.testing.wait import wait_until
from tests.crash.flow import Load, check_after, make_world
from tests.crash.flow import serve as serve_process

CLIENTS = 8
KILLS = int(os.environ.get("COFFER_CRASH_KILLS", "12"))  # `make soak` runs 1,000
REQUESTS_PER_CLIENT = max(30, KILLS * 3)


@pytest.mark.slow
def test_coordinator_killed_at_random_moments_answers_every_request_once(tmp_path: Path, pg_url: str) -> None:
    """SIGKILLs of `coffer serve` under load (12; `make soak` 1,000), each at a random delay: every request answered and held once."""
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"coordinator kill seed={seed}")
    rng = random.Random(seed)
    home, port, key = make_world(tmp_path, pg_url, CLIENTS)
    serve = serve_process(home, port, tmp_path).start()
    load = Load(port, key, CLIENTS, REQUESTS_PER_CLIENT).start()
    kills, landed = 0, 0
    try:
        while kills < KILLS:
            before = load.count()
            wait_until(lambda: load.count() >= min(before + 3, CLIENTS * REQUESTS_PER_CLIENT), timeout=120,
                       what="requests acknowledged by the restarted coordinator")
            time.sleep(rng.uniform(0.0, 0.5))  # a random moment while requests are in flight
            landed += load.count() < CLIENTS * REQUESTS_PER_CLIENT
            serve.kill()
            kills += 1
            serve = serve_process(home, port, tmp_path).start()
        load.join(timeout_s=600)
    finally:
        serve.stop()
    print(f"coordinator kills: {kills}, during the flow: {landed}, acknowledged {len(load.acknowledged)}, "
          f"{len(load.failures)} unreachable or 503")
    assert KILLS == kills and landed == KILLS, "the kills did not land while requests were flowing"
    check_after(home, load)


@pytest.mark.slow
def test_the_survivor_of_two_coordinators_serves_and_takes_the_periodic_work(tmp_path: Path, pg_url: str) -> None:
    """Two `coffer serve` on one PostgreSQL: SIGKILL the one leading the custody pipeline; within one lease
    the other leads it (higher epoch), and requests to it are answered once each throughout."""
    home, port, key = make_world(tmp_path, pg_url, CLIENTS)
    other_port, other_home = free_port(), tmp_path / "home-b"
    shutil.copytree(home, other_home)  # a second coordinator host: same database and HSM token, own ports
    config = (other_home / "coffer.toml").read_text()
    config = re.sub(r"port = \d+\nnotice_port = \d+", f"port = {other_port}\nnotice_port = {free_port()}", config)
    (other_home / "coffer.toml").write_text(config)
    first = serve_process(home, port, tmp_path / "a").start()
    second = serve_process(other_home, other_port, tmp_path / "b").start()
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))

    def lease() -> tuple[str, int] | None:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT holder, epoch FROM pipeline_leases WHERE name = 'custody'")).first()
        return None if row is None or row.holder is None else (str(row.holder), int(row.epoch))

    try:
        holder, epoch = wait_until(lease, timeout=60, what="a custody pipeline leader")  # type: ignore[misc]
        leader, survivor, survivor_port = ((first, second, other_port) if holder.endswith(f":{port}")
                                           else (second, first, port))
        load = Load(survivor_port, key, CLIENTS, REQUESTS_PER_CLIENT // 3).start()
        leader.kill()
        moved = wait_until(lambda: (now := lease()) is not None and now[0].endswith(f":{survivor_port}") and now,
                           timeout=30, what="the survivor leading the custody pipeline")
        assert moved[1] > epoch  # type: ignore[index]
        load.join(timeout_s=300)
    finally:
        first.stop()
        second.stop()
        engine.dispose()
    check_after(home, load)
