"""Benchmark: mixed read load on `coffer serve` (operator status, ledger balances, approvals queue)
from a second process on loopback, while a reconciliation runs against the same database.

Set-up: a fresh data directory (SQLite, SoftHSM2 token), the default policy, 30 withdrawal
requests waiting in the queue, 200 clients with balances, one signed-in operator session.
`coffer serve` runs as its own process. A third process runs the on-chain check back to back
(200,000 holdings per check, results stored in the same database). The load process keeps
CONCURRENCY keep-alive connections busy for DURATION_S per phase.

Baseline in the same run, under the same reconciliation: the static `/health` endpoint.
Target: 500 req/s with p99 <= 100 ms. Last line: `web_rps=<N> web_p99_ms=<P>`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DURATION_S = float(os.environ.get("BENCH_WEB_DURATION_S", "10"))
CONCURRENCY = int(os.environ.get("BENCH_WEB_CONCURRENCY", "8"))
REQUESTS_WAITING = 30
CLIENTS = 200
HOLDINGS = 200_000
TARGET_RPS = 500
TARGET_P99_MS = 100.0
MIXED = ("/api/v1/console/status", "/api/v1/console/balances", "/api/v1/console/approvals")


def _free_port() -> int:
    from coffer.testing import free_port

    return free_port()


def prepare(home: Path) -> tuple[int, str]:
    """Data directory with requests, clients and an operator session; returns (port, session cookie)."""
    from coffer.coordinator import Coordinator
    from coffer.home import init_home
    from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
    from coffer.policy import Operator, OperatorKey, RequestKind, Role, WithdrawalRequest
    from coffer.testing.tokens import process_softhsm_conf
    from coffer.web import SessionStore

    port, notice = _free_port(), _free_port()
    (home / "coffer.toml").write_text(
        f'[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\ntoken_label = "bench-web-{random.randrange(1 << 30)}"\n'
        f"[web]\nport = {port}\nnotice_port = {notice}\n")
    init_home(home)
    coordinator = Coordinator.open(home)
    now = dt.datetime.now(dt.UTC)
    policy = coordinator.policy
    policy.bootstrap_default(now=now)
    for index, (name, role) in enumerate((("ivan", Role.INITIATOR), ("ann", Role.APPROVER))):
        policy.add_operator(Operator(name, frozenset({role}), OperatorKey(bytes([index + 1]) * 32).public_key),
                            by="bench", now=now)
    ledger = coordinator.ledger
    ledger.open_house_accounts(["BTC"], at=now)
    ledger.open_accounts([AccountKey.custody("cold", "BTC")], at=now)
    for number in range(CLIENTS):
        client_id = f"client{number:04d}"
        ledger.open_client(client_id, ["BTC"], at=now)
        ledger.apply(Transfer(f"dep:{client_id}", Kind.DEPOSIT, (
            debit(AccountKey.custody("cold", "BTC"), 10_000 + number),
            credit(AccountKey.available(client_id, "BTC"), 10_000 + number)), now))
    for number in range(REQUESTS_WAITING):
        policy.submit(WithdrawalRequest(
            kind=RequestKind.CLIENT_WITHDRAWAL, asset="BTC", amount_minor=100_000 + number,
            destination="bcrt1qdestination", source_wallet="auto", account=f"client{number:04d}",
            fee_policy="normal", nonce=f"{number:032x}", expires_at_s=int(now.timestamp()) + 86_400,
            initiator="ivan"), now=now)
    token, _ = SessionStore(coordinator.engine).create("operator", "ann", now=now)
    coordinator.close()
    return port, token


def reconcile_forever(home: str, stop: Any, counter: Any) -> None:
    """The on-chain check back to back, storing its results in the served database."""
    from coffer.config import load_config
    from coffer.db import make_engine
    from coffer.recon import (
        CustodyScript,
        HaltSwitch,
        Holding,
        OnchainCheckInput,
        Reconciler,
        holding_columns,
    )
    from coffer.recon.scheduler import Scheduler

    engine = make_engine(load_config(Path(home)).database_url)
    scripts = [CustodyScript("BTC", "cold", f"0014{index:040x}") for index in range(HOLDINGS // 4)]
    holdings = [Holding(scripts[index % len(scripts)].script, 1000) for index in range(HOLDINGS)]
    data = OnchainCheckInput({"BTC": 200}, scripts, holding_columns(scripts, holdings),
                             {("BTC", "cold"): 1000 * HOLDINGS}, {"BTC": 900 * HOLDINGS}, (), ())
    reconciler = Reconciler(HaltSwitch(engine, quorum=2), onchain=lambda: data, engine=engine)
    clock = [0.0]
    scheduler = Scheduler(engine, reconciler.jobs(onchain_interval_s=1.0), node="bench", clock=lambda: clock[0])
    while not stop.is_set():
        clock[0] += 1.0
        counter.value += len(scheduler.run_due())


def _worker(port: int, cookie: str, paths: tuple[str, ...], deadline: float, out: list[float],
            errors: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": f"coffer_session={cookie}"}
    index = random.randrange(len(paths))
    while time.perf_counter() < deadline:
        path = paths[index % len(paths)]
        index += 1
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(type(exc).__name__)
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        out.append(time.perf_counter() - started)
        if response.status != 200:
            errors.append(f"{path}:{response.status}")


def load(port: int, cookie: str, paths: tuple[str, ...], duration_s: float, queue: Any) -> None:
    """The load process: CONCURRENCY closed-loop connections for `duration_s`."""
    deadline = time.perf_counter() + duration_s
    samples: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    errors: list[str] = []
    threads = [threading.Thread(target=_worker, args=(port, cookie, paths, deadline, samples[i], errors))
               for i in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(value for sample in samples for value in sample)
    queue.put({"count": len(latencies), "seconds": elapsed, "errors": errors[:5], "error_count": len(errors),
               "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
               "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0})


def phase(port: int, cookie: str, paths: tuple[str, ...], name: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=load, args=(port, cookie, paths, DURATION_S, queue))
    process.start()
    result: dict[str, Any] = queue.get(timeout=DURATION_S + 120)
    process.join(30)
    result["rps"] = result["count"] / result["seconds"]
    print(f"{name:<10} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
          f"  errors {result['error_count']} {result['errors']}", flush=True)
    return result


def main() -> int:
    from coffer.testing import ServiceProcess
    from coffer.testing.processes import port_open

    work = Path(tempfile.mkdtemp(prefix="coffer-bench-web-"))
    home = work / "home"
    home.mkdir()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    counter = context.Value("i", 0)
    recon = None
    try:
        port, cookie = prepare(home)
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        serve = ServiceProcess.python("serve", ["serve", "--home", str(home), "--port", str(port), "--no-recon"],
                                      workdir=work, port=port, env=env, ready_timeout_s=60)
        serve.env = env
        with serve:
            if os.environ.get("BENCH_WEB_RECON", "1") != "0":  # 0: diagnose without the reconciliation
                recon = context.Process(target=reconcile_forever, args=(str(home), stop, counter))
                recon.start()
            time.sleep(1.0)
            for path in (*MIXED, "/health"):  # warm up; every route answers
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", path, headers={"Cookie": f"coffer_session={cookie}"})
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    print(f"{path} answered {response.status}: {body[:200]!r}", file=sys.stderr)
                    return 1
            print(f"coffer serve on :{port}; load: {CONCURRENCY} connections x {DURATION_S:.0f} s per phase; "
                  f"reconciliation of {HOLDINGS} holdings running in another process", flush=True)
            baseline = phase(port, cookie, ("/health",), "baseline")
            runs_before = counter.value
            mixed = phase(port, cookie, MIXED, "mixed")
            checks = counter.value - runs_before
            assert port_open(port)
        print(f"reconciliation runs during the mixed phase: {checks}")
        print(f"baseline /health: {baseline['rps']:.0f} req/s p99 {baseline['p99_ms']:.1f} ms; "
              f"mixed/baseline throughput {mixed['rps'] / max(baseline['rps'], 1):.2f}")
        met = mixed["rps"] >= TARGET_RPS and mixed["p99_ms"] <= TARGET_P99_MS and not mixed["error_count"]
        print(f"target {TARGET_RPS} req/s with p99 <= {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}")
        print(f"web_rps={mixed['rps']:.0f} web_p99_ms={mixed['p99_ms']:.1f}")
        return 0
    finally:
        stop.set()
        if recon is not None:
            recon.join(30)
            if recon.is_alive():
                recon.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
