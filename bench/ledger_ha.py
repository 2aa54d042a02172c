"""Ledger benchmark against PostgreSQL with fail-over: the pipeline's own ledger calls (the same
mix as bench/ledger.py: single deposit credits and holds, cold batch settlements, hot payments)
against a Patroni cluster of two members in synchronous replication (every commit waits for the
standby), and against one durable server, in the same run.

Target (issue 25): the cluster's rate >= 50 % of the single server's.
Last line: ledger_ha_tps=<N> single_tps=<M> ratio=<R>
"""

from __future__ import annotations

import argparse
import os
import sys

import sqlalchemy as sa

from coffer.db import make_engine, migrate
from coffer.ledger import Ledger
from coffer.testing.patroni import PatroniCluster
from ledger import DurablePostgres, check_replays, pipeline_calls, run_pipeline, setup
from verdict import at_least, verdict

TARGET_RATIO = at_least("ledger pipeline rate on a synchronous Patroni pair >= 50% of one server", 0.5)  # issue 25


def measure(url: str, args: argparse.Namespace, label: str) -> float:
    engine = make_engine(url)
    migrate(engine)
    with engine.connect() as conn:
        settings = {name: conn.execute(sa.text(f"SHOW {name}")).scalar()
                    for name in ("fsync", "synchronous_commit", "synchronous_standby_names")}
    print(f"{label}: {settings}", flush=True)
    ledger = Ledger(engine)
    clients = setup(ledger, args.clients)
    calls = pipeline_calls(label, args.cycles, clients, 1, args.cold_batch, args.hot_payments)
    tps = run_pipeline(ledger, calls)
    check_replays(ledger, engine, calls)
    ledger.check_consistency()
    print(f"{label}: {sum(len(c) for c in calls)} transfers in {len(calls)} commits: {tps:,.0f}/s", flush=True)
    engine.dispose()
    return tps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--cold-batch", type=int, default=200)
    parser.add_argument("--hot-payments", type=int, default=20)
    args = parser.parse_args()
    with DurablePostgres() as server:
        single = measure(server.create_database("bench"), args, "single")
    cluster = PatroniCluster(members=2).start()
    try:
        if cluster.sync_standby() is None:
            raise SystemExit("no synchronous standby: the cluster figure would not be what it claims")
        ha = measure(cluster.create_database("bench"), args, "patroni")
    finally:
        cluster.stop()
    ratio = ha / single
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus", flush=True)
    status = verdict([(TARGET_RATIO, ratio)])
    print(f"ledger_ha_tps={ha:.0f} single_tps={single:.0f} ratio={ratio:.2f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
