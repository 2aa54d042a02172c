"""SIGKILL of the PostgreSQL server itself (every process at once, fsync on) while the exchange
API takes withdrawal requests from `coffer serve`: after the restart every request is answered
once, held once, the ledger balances and the audit chain verifies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coffer.testing.postgres import PostgresServer
from coffer.testing.wait import wait_until
from tests.crash.flow import Load, check_after, make_world
from tests.crash.flow import serve as serve_process

CLIENTS = 12
REQUESTS_PER_CLIENT = 25


@pytest.mark.slow
def test_acknowledged_requests_survive_a_sigkill_of_postgresql(tmp_path: Path) -> None:
    """Retrying integrations; PostgreSQL SIGKILLed mid-flow and restarted; every request held exactly once."""
    server = PostgresServer(durable=True).start()
    try:
        home, port, key = make_world(tmp_path, server.create_database(), CLIENTS)
        serve = serve_process(home, port, tmp_path)
        with serve:
            load = Load(port, key, CLIENTS, REQUESTS_PER_CLIENT).start()
            wait_until(lambda: load.count() >= 40, timeout=120, what="40 acknowledged requests")
            killed = server.kill()
            time.sleep(0.5)
            server.start()
            load.join(timeout_s=300)
            assert serve.alive(), "coffer serve died with its database"
        print(f"postgres kill: {killed} processes, {len(load.acknowledged)} acknowledged, "
              f"{len(load.failures)} answered 503 or unreachable")
        assert killed >= 2 and load.failures, "the kill landed outside the flow: the test proved nothing"
        check_after(home, load)
    finally:
        server.stop()
