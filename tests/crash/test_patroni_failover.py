"""Patroni fail-over under load: the machine of the PostgreSQL primary dies (its Patroni and every
PostgreSQL process SIGKILLed) while integrations send withdrawal requests through `coffer serve`.
Patroni promotes the synchronous standby; the coordinator's multi-host connection finds it; every
acknowledged request is there exactly once, the ledger balances and the audit chain verifies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coffer.testing.patroni import PatroniCluster
from coffer.testing.wait import wait_until
from tests.crash.flow import Load, check_after, make_world
from tests.crash.flow import serve as serve_process

CLIENTS = 12
REQUESTS_PER_CLIENT = 25


@pytest.mark.slow
def test_primary_lost_under_load_loses_no_acknowledged_request(tmp_path: Path) -> None:
    """Kill the primary's whole member mid-flow; the sync standby takes over; nothing acknowledged is lost."""
    cluster = PatroniCluster(members=2).start()
    try:
        old = cluster.leader()
        assert old is not None and cluster.sync_standby() is not None
        home, port, key = make_world(tmp_path, cluster.create_database(), CLIENTS)
        serve = serve_process(home, port, tmp_path)
        with serve:
            load = Load(port, key, CLIENTS, REQUESTS_PER_CLIENT).start()
            wait_until(lambda: load.count() >= 40, timeout=120, what="40 acknowledged requests")
            before = load.count()
            killed_at = time.monotonic()
            cluster.kill_member(old)
            new = wait_until(lambda: (leader := cluster.leader()) is not None and leader is not old and leader,
                             timeout=120, what="a new Patroni leader")
            promoted_s = time.monotonic() - killed_at
            wait_until(lambda: load.count() > before + 5, timeout=120, what="requests acknowledged after fail-over")
            served_s = time.monotonic() - killed_at
            load.join(timeout_s=300)
            assert serve.alive(), "coffer serve died with its primary"
        print(f"patroni fail-over: {old.name} -> {new.name}: promoted in {promoted_s:.1f} s, "  # type: ignore[attr-defined]
              f"writes served again after {served_s:.1f} s; {len(load.acknowledged)} acknowledged, "
              f"{len(load.failures)} answered 503 or unreachable")
        assert load.failures, "the kill landed outside the flow: the test proved nothing"
        check_after(home, load)
    finally:
        cluster.stop()
