"""Ledger benchmark: durable transfers per second into PostgreSQL, batched, beside the naive
one-commit-per-transfer baseline in the same run, and the SQLite figure.

The benchmark starts its own PostgreSQL with fsync=on (the test harness turns fsync off for
speed; a durability benchmark must not). Every transfer, batched or not, goes through
`Ledger.apply_many` / `Ledger.apply`: the same validation, ring fence, no-negative rule,
idempotency check, audit event and commit. Timed: the ledger calls only (the transfers, as a
caller would hand them in, are built beforehand). At the end the ledger's full consistency
check must pass on both databases.

Target: ledger_pg_tps >= 25,000 on a 2-core machine and >= 20x the naive baseline.
Last line: ledger_pg_tps=<N> naive_tps=<M> ratio=<R> sqlite_tps=<S>
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.testing import PostgresServer

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FUNDING_SATS = 10**12


class DurablePostgres(PostgresServer):
    """The harness server with fsync and full-page writes back on: commits reach the disk."""

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        durable = (arg.replace("fsync=off", "fsync=on").replace("full_page_writes=off", "full_page_writes=on")
                   for arg in args)
        return super()._run(*durable)


def setup(ledger: Ledger, clients: int) -> list[str]:
    ledger.open_house_accounts(["BTC"], at=T0)
    ids = [f"client-{n:06d}" for n in range(clients)]
    for client_id in ids:
        ledger.open_client(client_id, ["BTC"], at=T0)
    hot = AccountKey.custody("hot", "BTC")
    funding = [Transfer(f"fund-{client_id}", Kind.DEPOSIT,
                        (debit(hot, FUNDING_SATS), credit(AccountKey.available(client_id, "BTC"), FUNDING_SATS)), T0)
               for client_id in ids]
    ledger.apply_many(funding)
    return ids


def workload(prefix: str, count: int, clients: list[str], seed: int) -> Iterator[Transfer]:
    """A realistic mix: deposits, withdrawal holds/releases/settlements, fees and client-to-client PnL."""
    rng = random.Random(seed)
    hot = AccountKey.custody("hot", "BTC")
    fees = AccountKey.company("fees", "BTC")
    held_sats = dict.fromkeys(clients, 0)  # what each client has on hold, so settlements stay valid
    for n in range(count):
        client_id = rng.choice(clients)
        available = AccountKey.available(client_id, "BTC")
        held = AccountKey.held(client_id, "BTC")
        amount = rng.randrange(1, 100_000)
        at = T0 + timedelta(milliseconds=n)
        key = f"{prefix}-{n}"
        roll = rng.random()
        if roll < 0.30:
            yield Transfer(key, Kind.DEPOSIT, (debit(hot, amount), credit(available, amount)), at,
                           {"txid": f"{n:064x}", "vout": 0})
        elif roll < 0.50 or held_sats[client_id] == 0:
            held_sats[client_id] += amount
            yield Transfer(key, Kind.WITHDRAWAL_HOLD, (debit(available, amount), credit(held, amount)), at)
        elif roll < 0.60:
            amount = held_sats[client_id]
            held_sats[client_id] = 0
            yield Transfer(key, Kind.WITHDRAWAL_SETTLE, (debit(held, amount), credit(hot, amount)), at,
                           {"address": f"bcrt1q{n:038d}"})
        elif roll < 0.65:
            amount = held_sats[client_id]
            held_sats[client_id] = 0
            yield Transfer(key, Kind.WITHDRAWAL_RELEASE, (debit(held, amount), credit(available, amount)), at)
        elif roll < 0.80:
            yield Transfer(key, Kind.FEE, (debit(available, amount // 100 + 1), credit(fees, amount // 100 + 1)), at)
        else:
            other = AccountKey.available(rng.choice(clients), "BTC")
            yield Transfer(key, Kind.PNL, (debit(available, amount), credit(other, amount)), at,
                           {"fill": n})


def backend_cpu_s(engine: sa.engine.Engine) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (Linux /proc)."""
    with engine.connect() as conn:
        pids = [row[0] for row in conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_batched(ledger: Ledger, transfers: list[Transfer], batch: int) -> float:
    started = time.perf_counter()
    batches = (transfers[start:start + batch] for start in range(0, len(transfers), batch))
    applied = 0
    last = started
    for results in ledger.apply_batches(batches):
        applied += len(results)
        now = time.perf_counter()
        print(f"  batch of {len(results)}: {len(results) / (now - last):,.0f}/s", flush=True)
        last = now
    elapsed = time.perf_counter() - started
    if applied != len(transfers):
        raise SystemExit(f"applied {applied} of {len(transfers)}")
    return len(transfers) / elapsed


def run_naive(ledger: Ledger, transfers: list[Transfer]) -> float:
    started = time.perf_counter()
    for transfer in transfers:
        ledger.apply(transfer)
    return len(transfers) / (time.perf_counter() - started)


def verify(ledger: Ledger, engine: sa.engine.Engine, expected_transfers: int) -> None:
    report = ledger.check_consistency()
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM ledger_transfers")).scalar()
    if stored != expected_transfers or report.transfers != expected_transfers:
        raise SystemExit(f"expected {expected_transfers} transfers, found {stored}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transfers", type=int, default=200_000, help="batched transfers (PostgreSQL)")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=1_000, help="transfers for the naive baseline")
    parser.add_argument("--sqlite", type=int, default=100_000, help="batched transfers (SQLite)")
    parser.add_argument("--clients", type=int, default=2_000)
    args = parser.parse_args()

    with DurablePostgres() as server:
        engine = make_engine(server.create_database("bench"))
        migrate(engine)
        with engine.connect() as conn:
            settings = {name: conn.execute(sa.text(f"SHOW {name}")).scalar()
                        for name in ("fsync", "synchronous_commit", "full_page_writes")}
        print(f"postgresql: {settings}")
        ledger = Ledger(engine)
        clients = setup(ledger, args.clients)
        batched = list(workload("b", args.transfers, clients, seed=1))
        naive = list(workload("n", args.naive, clients, seed=2))
        naive_tps = run_naive(ledger, naive)
        print(f"naive (one commit per transfer): {args.naive} transfers, {naive_tps:,.0f}/s")
        python_cpu, backend_cpu = time.process_time(), backend_cpu_s(engine)
        pg_tps = run_batched(ledger, batched, args.batch)
        python_us = (time.process_time() - python_cpu) / args.transfers * 1e6
        backend_us = (backend_cpu_s(engine) - backend_cpu) / args.transfers * 1e6
        print(f"batched ({args.batch} per commit): {args.transfers} transfers, {pg_tps:,.0f}/s")
        print(f"cpu per batched transfer: python {python_us:.1f} us, postgresql backend {backend_us:.1f} us; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        verify(ledger, engine, args.clients + args.naive + args.transfers)
        print("postgresql: consistency check passed")
        engine.dispose()

    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
        migrate(engine)
        ledger = Ledger(engine)
        clients = setup(ledger, args.clients)
        transfers = list(workload("s", args.sqlite, clients, seed=3))
        sqlite_tps = run_batched(ledger, transfers, args.batch)
        print(f"sqlite batched ({args.batch} per commit, synchronous=FULL): {args.sqlite} transfers, "
              f"{sqlite_tps:,.0f}/s")
        verify(ledger, engine, args.clients + args.sqlite)
        print("sqlite: consistency check passed")
        engine.dispose()

    ratio = pg_tps / naive_tps
    print(f"ledger_pg_tps={pg_tps:.0f} naive_tps={naive_tps:.0f} ratio={ratio:.1f} sqlite_tps={sqlite_tps:.0f}")


if __name__ == "__main__":
    main()
