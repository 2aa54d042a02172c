"""Leadership of periodic work: one leader at a time, a fencing epoch, and fail-over on SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.db import make_engine
from coffer.pipeline import JobInvalid, Leadership, NotLeader
from coffer.testing.wait import wait_until

NODE = Path(__file__).with_name("leader_node.py")
NOW = 5_000_000


def test_only_one_node_leads_and_the_epoch_is_stable_while_it_does(engine: Engine) -> None:
    """The first node leads with epoch 1 and keeps it; the second is refused while the first leads."""
    first = Leadership(engine, "recon", "a", lease_ms=1_000)
    second = Leadership(engine, "recon", "b", lease_ms=1_000)
    try:
        assert 1 == first.acquire(now_ms=NOW)
        assert second.acquire(now_ms=NOW + 10) is None
        assert 1 == first.acquire(now_ms=NOW + 20)
    finally:
        first.release()
        second.release()


def test_a_deposed_leader_is_fenced_off(engine: Engine) -> None:
    """After leadership changes hands, the old leader's write under its old epoch raises NotLeader."""
    first = Leadership(engine, "recon", "a", lease_ms=1_000)
    second = Leadership(engine, "recon", "b", lease_ms=1_000)
    try:
        old = first.acquire(now_ms=NOW)
        assert old is not None
        first.release()
        new = second.acquire(now_ms=NOW + 2_000)
        assert new == old + 1
        with pytest.raises(NotLeader), engine.begin() as conn:
            first.fenced(conn, old)
        with engine.begin() as conn:
            second.fenced(conn, new)
    finally:
        second.release()


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_leadership_moves_to_the_survivor_when_the_leader_is_sigkilled(engine: Engine, pg_url: str) -> None:
    """Two coordinator processes: SIGKILL the leader; the survivor leads within 2 s under a higher epoch."""
    beats = sa.Table("test_beats", sa.MetaData(), sa.Column("node", sa.String(50)),
                     sa.Column("epoch", sa.BigInteger()), sa.Column("at_ms", sa.BigInteger()))
    beats.create(engine)
    nodes = {name: subprocess.Popen([sys.executable, str(NODE), pg_url, name]) for name in ("a", "b")}
    try:
        def last_beat() -> tuple[str, int, int] | None:
            with engine.connect() as conn:
                row = conn.execute(sa.select(beats).order_by(beats.c.at_ms.desc()).limit(1)).one_or_none()
            return None if row is None else (str(row.node), int(row.epoch), int(row.at_ms))

        first = wait_until(last_beat, timeout=30)
        leader, epoch, _ = first
        nodes[leader].send_signal(signal.SIGKILL)
        nodes[leader].wait(timeout=10)
        killed_ms = int(time.time() * 1000)
        survivor = "b" if leader == "a" else "a"
        moved = wait_until(lambda: (b := last_beat()) is not None and b[0] == survivor and b, timeout=30)
        assert moved[1] > epoch
        assert moved[2] - killed_ms < 2_000
        with engine.connect() as conn:
            leaders_per_epoch = conn.execute(sa.text(
                "SELECT epoch, count(DISTINCT node) FROM test_beats GROUP BY epoch")).all()
        assert all(count == 1 for _, count in leaders_per_epoch)
    finally:
        for process in nodes.values():
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize(("name", "node", "lease_ms"), [("", "a", 1), ("recon", "", 1), ("recon", "a", 0)])
def test_leadership_refuses_bad_arguments(tmp_path: Path, name: str, node: str, lease_ms: int) -> None:
    """A missing name or node, or a lease that is not positive, is a typed error."""
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(JobInvalid, match="leadership needs"):
        Leadership(engine, name, node, lease_ms=lease_ms)
