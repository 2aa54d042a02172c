"""Ledger benchmark: durable transfers per second into PostgreSQL through the calls the
withdrawal and deposit pipeline makes, at the batch sizes it makes them, beside the naive
one-commit-per-transfer baseline in the same run, and the SQLite figure.

What is timed (the pipeline's own calls, found in src/coffer):
- a deposit credit: `Ledger.apply` of one DEPOSIT transfer (cold/custody.py `_credit`,
  eth/wallet.py `_credit`): one transfer per commit;
- a withdrawal hold: `Ledger.apply` of one WITHDRAWAL_HOLD (withdrawals.py `request`): one per commit;
- a cold batch settlement: `Ledger.apply_many` of every WITHDRAWAL_SETTLE of the batch plus its
  NETWORK_FEE (cold/custody.py `_settle_ledger`), up to cold.BATCH_MAX + 1 transfers per commit;
- a hot payment settlement: `Ledger.apply_many` of its settle and fee (hot/wallet.py): two per commit.
Every call runs the same validation, ring fence, no-negative rule, idempotency handling, audit
event and commit. (Batches of OPTIMISTIC_BATCH_MIN transfers or more skip the up-front key lookup
on PostgreSQL; the unique index and a retry with the lookup enforce the key.) After the timed
part the benchmark replays a deposit and a whole cold settlement under their keys and requires
the first results back and no new rows, then the ledger's full consistency check must pass.

Also printed, not a target: `Ledger.apply_batches` with 10,000-transfer batches, the fast path
nothing in the pipeline calls today.

The benchmark starts its own PostgreSQL with fsync=on (the test harness turns fsync off for
speed; a durability benchmark must not). The transfers are built beforehand.
Targets (issue 3): ledger_pg_tps >= 25,000 on a 2-core machine and >= 20x the naive baseline.
Last line: ledger_pg_tps=<N> naive_tps=<M> ratio=<R> sqlite_tps=<S>
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from coffer.cold.custody import BATCH_MAX
from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.testing import PostgresServer
from verdict import at_least, verdict

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FUNDING_SATS = 10**12
TARGET_PG_TPS = at_least("ledger pipeline transfers/s on durable PostgreSQL >= 25,000", 25_000)  # issue 3
TARGET_RATIO = at_least("ledger pipeline rate >= 20x the naive one-commit-per-transfer baseline", 20.0)  # issue 3


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
    funding.append(Transfer("fund-operating", Kind.COMPANY_DEPOSIT,
                            (debit(AccountKey.custody("cold", "BTC"), FUNDING_SATS),
                             credit(AccountKey.company("operating", "BTC"), FUNDING_SATS)), T0))
    ledger.apply_many(funding)
    return ids


def pipeline_calls(prefix: str, cycles: int, clients: list[str], seed: int, cold_batch: int,
                   hot_payments: int) -> list[list[Transfer]]:
    """The ledger calls of `cycles` pipeline cycles, in order: per cycle `cold_batch` deposit
    credits and `cold_batch` withdrawal holds interleaved (one transfer per call), the cold
    batch's settlement (one call), and `hot_payments` hot payments (a hold, then settle + fee)."""
    rng = random.Random(seed)
    cold, hot = AccountKey.custody("cold", "BTC"), AccountKey.custody("hot", "BTC")
    operating = AccountKey.company("operating", "BTC")
    calls: list[list[Transfer]] = []
    for cycle in range(cycles):
        at = T0 + timedelta(minutes=cycle)
        singles, settles = [], []
        for n in range(cold_batch):
            client_id, amount = rng.choice(clients), rng.randrange(1, 100_000)
            singles.append(Transfer(f"{prefix}-deposit-{cycle}-{n}", Kind.DEPOSIT, (
                debit(cold, amount), credit(AccountKey.available(client_id, "BTC"), amount)), at,
                {"txid": f"{cycle:032x}{n:032x}", "vout": 0, "address": f"bcrt1q{n:038d}"}))
            held = AccountKey.held(client_id, "BTC")
            singles.append(Transfer(f"{prefix}-hold-{cycle}-{n}", Kind.WITHDRAWAL_HOLD, (
                debit(AccountKey.available(client_id, "BTC"), amount), credit(held, amount)), at,
                {"request_digest": f"{cycle:032x}{n:032x}", "destination": f"bcrt1q{n:038d}"}))
            settles.append(Transfer(f"{prefix}-cold-settle-{cycle}-{n}", Kind.WITHDRAWAL_SETTLE, (
                debit(held, amount), credit(cold, amount)), at, {"batch_id": f"{cycle}", "txid": f"{cycle:064x}"}))
        rng.shuffle(singles)  # deposits and requests arrive interleaved; each hold precedes its settle anyway
        calls += [[transfer] for transfer in singles]
        settles.append(Transfer(f"{prefix}-cold-fee-{cycle}", Kind.NETWORK_FEE, (
            debit(operating, 5_000), credit(cold, 5_000)), at, {"batch_id": f"{cycle}", "txid": f"{cycle:064x}"}))
        calls.append(settles)
        for n in range(hot_payments):
            client_id, amount = rng.choice(clients), rng.randrange(1, 100_000)
            held = AccountKey.held(client_id, "BTC")
            calls.append([Transfer(f"{prefix}-hot-hold-{cycle}-{n}", Kind.WITHDRAWAL_HOLD, (
                debit(AccountKey.available(client_id, "BTC"), amount), credit(held, amount)), at)])
            meta = {"txid": f"{cycle:032x}{n:032x}", "request_digest": f"{cycle:032x}{n:032x}"}
            calls.append([Transfer(f"{prefix}-hot-settle-{cycle}-{n}", Kind.WITHDRAWAL_SETTLE, (
                debit(held, amount), credit(hot, amount)), at, meta),
                Transfer(f"{prefix}-hot-fee-{cycle}-{n}", Kind.NETWORK_FEE, (
                    debit(operating, 300), credit(hot, 300)), at, meta)])
    return calls


def run_pipeline(ledger: Ledger, calls: list[list[Transfer]]) -> float:
    """Transfers/s through `apply` (one-transfer calls) and `apply_many` (the rest), in order."""
    started = time.perf_counter()
    for call in calls:
        if len(call) == 1:
            ledger.apply(call[0], actor="bench.pipeline")
        else:
            ledger.apply_many(call, actor="bench.pipeline")
    return sum(len(call) for call in calls) / (time.perf_counter() - started)


def check_replays(ledger: Ledger, engine: sa.engine.Engine, calls: list[list[Transfer]]) -> None:
    """A deposit and a whole cold settlement replayed under their keys return the first results
    and write nothing: the idempotency keys were checked on the measured path."""
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM ledger_transfers")).scalar()
    single = calls[0][0]
    settlement = max(calls, key=len)
    first_single = ledger.transfer(single.idempotency_key)
    first_settlement = [ledger.transfer(t.idempotency_key) for t in settlement]
    replayed_single = ledger.apply(single)
    replayed_settlement = ledger.apply_many(settlement)
    with engine.connect() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM ledger_transfers")).scalar()
    if first_single is None or replayed_single.transfer_id != first_single.transfer_id or before != after or [
            a.transfer_id if a else None for a in first_settlement] != [r.transfer_id for r in replayed_settlement]:
        raise SystemExit("an idempotency key did not hold: a replay wrote or returned something new")


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
    for results in ledger.apply_batches(batches):
        applied += len(results)
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


def measure_postgres(args: argparse.Namespace) -> tuple[float, float]:
    """(pipeline transfers/s, naive transfers/s) on a durable PostgreSQL, with the checks."""
    with DurablePostgres() as server:
        engine = make_engine(server.create_database("bench"))
        migrate(engine)
        with engine.connect() as conn:
            settings = {name: conn.execute(sa.text(f"SHOW {name}")).scalar()
                        for name in ("fsync", "synchronous_commit", "full_page_writes")}
        print(f"postgresql: {settings}")
        ledger = Ledger(engine)
        clients = setup(ledger, args.clients)
        calls = pipeline_calls("p", args.cycles, clients, 1, args.cold_batch, args.hot_payments)
        naive = list(workload("n", args.naive, clients, seed=2))
        fast = list(workload("b", args.batched, clients, seed=4))
        naive_tps = run_naive(ledger, naive)
        print(f"naive (one commit per transfer): {args.naive} transfers, {naive_tps:,.0f}/s")
        python_cpu, backend_cpu = time.process_time(), backend_cpu_s(engine)
        pg_tps = run_pipeline(ledger, calls)
        transfers = sum(len(call) for call in calls)
        python_us = (time.process_time() - python_cpu) / transfers * 1e6
        backend_us = (backend_cpu_s(engine) - backend_cpu) / transfers * 1e6
        print(f"pipeline calls: {transfers} transfers in {len(calls)} commits (cold batch {args.cold_batch} + 1 fee, "
              f"{args.hot_payments} hot payments per cycle, {args.cycles} cycles): {pg_tps:,.0f}/s")
        print(f"cpu per pipeline transfer: python {python_us:.1f} us, postgresql backend {backend_us:.1f} us; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        check_replays(ledger, engine, calls)
        print("postgresql: replayed deposit and cold settlement returned their first results, wrote nothing")
        batched_tps = run_batched(ledger, fast, 10_000)
        print(f"not the pipeline's path: apply_batches, 10,000 per commit: {args.batched} transfers, "
              f"{batched_tps:,.0f}/s")
        verify(ledger, engine, args.clients + 1 + args.naive + transfers + args.batched)
        print("postgresql: consistency check passed")
        engine.dispose()
    return pg_tps, naive_tps


def measure_sqlite(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
        migrate(engine)
        ledger = Ledger(engine)
        clients = setup(ledger, args.clients)
        calls = pipeline_calls("s", args.cycles, clients, 3, args.cold_batch, args.hot_payments)
        sqlite_tps = run_pipeline(ledger, calls)
        transfers = sum(len(call) for call in calls)
        print(f"sqlite pipeline calls (synchronous=FULL): {transfers} transfers, {sqlite_tps:,.0f}/s")
        verify(ledger, engine, args.clients + 1 + transfers)
        print("sqlite: consistency check passed")
        engine.dispose()
    return sqlite_tps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2, help="pipeline cycles (a cold batch and hot payments each)")
    parser.add_argument("--cold-batch", type=int, default=BATCH_MAX, help="withdrawals per cold batch")
    parser.add_argument("--hot-payments", type=int, default=200, help="hot payments per cycle")
    parser.add_argument("--naive", type=int, default=1_000, help="transfers for the naive baseline")
    parser.add_argument("--batched", type=int, default=50_000, help="transfers through apply_batches (not a target)")
    parser.add_argument("--clients", type=int, default=2_000)
    args = parser.parse_args()
    pg_tps, naive_tps = measure_postgres(args)
    sqlite_tps = measure_sqlite(args)
    ratio = pg_tps / naive_tps
    code = verdict([(TARGET_PG_TPS, pg_tps), (TARGET_RATIO, ratio)])
    print(f"ledger_pg_tps={pg_tps:.0f} naive_tps={naive_tps:.0f} ratio={ratio:.1f} sqlite_tps={sqlite_tps:.0f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
