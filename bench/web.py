"""Benchmark: `coffer serve` under a mix of writes and uncached reads from a second process on
loopback, while a reconciliation runs against the same database.

Set-up: a fresh data directory (SQLite, SoftHSM2 token), the default policy, APPROVALS
withdrawal requests waiting for approval, an integration key for the exchange API, 200 clients
with balances and a whitelisted destination each, SIGNIN_CLIENTS clients registered with a
password and TOTP, one signed-in operator (approver) and one signed-in client session.
`coffer serve` runs as its own process. Another process runs the on-chain check back to back
(200,000 holdings per check, results stored in the same database).

The load process keeps CONCURRENCY keep-alive connections busy for DURATION_S per phase. In the
mixed phase, per connection, one call in SIGNIN_EVERY is a client sign-in (POST /api/v1/session:
argon2 password check, TOTP, new session, sign-in mail; each from its own 127.x.y.z address, as
clients come from their own addresses, and each client once); one in WITHDRAWAL_EVERY a
withdrawal request through the exchange API (POST /api/v1/exchange/withdrawals, HMAC-signed by
an integration key, with an Idempotency-Key: hold, policy decision, audit); one in
APPROVAL_EVERY an approval (POST .../approvals/{digest}/approval: an operator's Ed25519
approval, checked and recorded; a read instead once every waiting request has had one); the
rest reads with no response cache: console status, the approvals queue (cached only until the
next audit event, and every write appends one), one request's detail, the client's balances.

Baseline in the same run, under the same reconciliation: the static `/health` endpoint.
Target (issue 12): 500 req/s with p99 <= 100 ms over every request of the mixed phase, and no
error. Last line: `web_rps=<N> web_p99_ms=<P>`.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import multiprocessing
import os
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verdict import at_least, at_most, verdict

DURATION_S = float(os.environ.get("BENCH_WEB_DURATION_S", "10"))
CONCURRENCY = int(os.environ.get("BENCH_WEB_CONCURRENCY", "8"))
REQUESTS_WAITING = 30
CLIENTS = 200
HOLDINGS = 200_000
SIGNIN_CLIENTS = 400
SIGNIN_EVERY = 25
APPROVAL_EVERY = 20
APPROVALS = 300
WITHDRAWAL_EVERY = 15
DESTINATION = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
PASSWORD = "bench-password-0123"
READS = ("/api/v1/console/status", "/api/v1/console/approvals", "/api/v1/console/approvals/{digest}",
         "/api/v1/me/balances")
TARGET_RPS = at_least("web mixed writes and reads >= 500 req/s", 500)  # issue 12
TARGET_P99_MS = at_most("web mixed writes and reads p99 <= 100 ms", 100.0)  # issue 12
TARGET_ERRORS = at_most("web mixed phase errors == 0", 0)  # issue 12: every request answered


def _free_port() -> int:
    from coffer.testing import free_port

    return free_port()


@dataclass(frozen=True)
class Plan:
    """What the load process needs: the port, sessions, sign-in clients and approvals to submit."""

    port: int
    operator_cookie: str
    operator_csrf: str
    client_cookie: str
    signins: tuple[tuple[str, str], ...]  # (client id, TOTP secret)
    approvals: tuple[tuple[str, str], ...]  # (request digest hex, approval document hex)
    api_key: tuple[str, str]  # (integration key id, secret hex)


class _OneHash:
    """Set-up only: hashes PASSWORD once with the directory's own argon2 hasher and reuses the hash
    (every sign-in client has the same password); verification is the hasher's own."""

    def __init__(self, hasher: Any) -> None:
        self._hasher = hasher
        self._hash = hasher.hash(PASSWORD)

    def hash(self, password: str) -> str:
        return self._hash if password == PASSWORD else str(self._hasher.hash(password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)


def prepare(home: Path) -> Plan:
    """Data directory with requests, clients, sign-in clients and sessions."""
    from coffer.clients import ClientDirectory, HsmSeal
    from coffer.coordinator import Coordinator
    from coffer.home import init_home
    from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
    from coffer.policy import Operator, OperatorKey, RequestKind, Role, WithdrawalRequest, sign_approval
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
    keys = {name: OperatorKey(bytes([index + 1]) * 32) for index, name in enumerate(("ivan", "ann"))}
    for name, role in (("ivan", Role.INITIATOR), ("ann", Role.APPROVER)):
        policy.add_operator(Operator(name, frozenset({role}), keys[name].public_key), by="bench", now=now)
    ledger = coordinator.ledger
    ledger.open_house_accounts(["BTC"], at=now)
    ledger.open_accounts([AccountKey.custody("cold", "BTC")], at=now)
    for number in range(CLIENTS):
        client_id = f"client{number:04d}"
        ledger.open_client(client_id, ["BTC"], at=now)
        ledger.apply(Transfer(f"dep:{client_id}", Kind.DEPOSIT, (
            debit(AccountKey.custody("cold", "BTC"), 10**9 + number),
            credit(AccountKey.available(client_id, "BTC"), 10**9 + number)), now))
    approvals = []
    for number in range(APPROVALS):
        request = WithdrawalRequest(
            kind=RequestKind.CLIENT_WITHDRAWAL, asset="BTC", amount_minor=100_000 + number,
            destination="bcrt1qdestination", source_wallet="auto", account=f"client{number % CLIENTS:04d}",
            fee_policy="normal", nonce=f"{number:032x}", expires_at_s=int(now.timestamp()) + 86_400,
            initiator="ivan")
        policy.submit(request, now=now)
        approval = sign_approval(keys["ann"], request=request, operator_id="ann", role=Role.APPROVER,
                                 expires_at_s=int(now.timestamp()) + 86_400)
        approvals.append((request.digest_hex, approval.encode().hex()))
    directory = ClientDirectory(coordinator.engine, seal=HsmSeal(coordinator.hsm))
    directory._hasher = _OneHash(directory._hasher)  # set-up only: one argon2 hash for every client's password
    signins = []
    for number in range(SIGNIN_CLIENTS):
        secret = base64.b32encode(random.randbytes(20)).decode()
        directory.register(f"signin{number:04d}", f"signin{number:04d}@clients.coffer.invalid", PASSWORD, now=now,
                           totp_secret=secret)
        signins.append((f"signin{number:04d}", secret))
    from coffer.integrations.cli import open_integrations

    for number in range(CLIENTS):
        policy.add_whitelist(f"client{number:04d}", "BTC", DESTINATION, by=f"client:client{number:04d}",
                             now=now - dt.timedelta(days=3))
    api_key = open_integrations(coordinator).create("bench", by="bench", now=now)
    sessions = SessionStore(coordinator.engine)
    operator_cookie, operator = sessions.create("operator", "ann", now=now)
    client_cookie, _ = sessions.create("client", "client0000", now=now)
    coordinator.close()
    return Plan(port, operator_cookie, operator.csrf_token, client_cookie, tuple(signins), tuple(approvals),
                (api_key.key_id, api_key.secret))


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


def _send(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
          headers: dict[str, str]) -> None:
    """Send on a keep-alive connection; if the server had closed it while idle (its keep-alive
    timeout), the request never left: reconnect and send it once more, as HTTP clients do."""
    try:
        connection.request(method, path, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        connection.close()
        connection.request(method, path, body=body, headers=headers)


class Load:
    """One load process: the mixed calls of CONCURRENCY connections, with per-kind samples."""

    def __init__(self, plan: Plan, reads: tuple[str, ...]) -> None:
        self.plan = plan
        self.reads = reads
        self.samples: list[tuple[str, float]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._signins = list(plan.signins)
        self._approvals = list(plan.approvals)

    def _take(self, pool: list[tuple[str, str]]) -> tuple[str, str] | None:
        with self._lock:
            return pool.pop() if pool else None

    def _call(self, connection: http.client.HTTPConnection, method: str, path: str, body: dict[str, Any] | None,
              headers: dict[str, str]) -> int:
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        _send(connection, method, path, data, headers)
        response = connection.getresponse()
        response.read()
        return response.status

    def signin(self, index: int) -> tuple[str, int]:
        import pyotp

        taken = self._take(self._signins)
        if taken is None:
            raise RuntimeError("ran out of sign-in clients")
        client_id, secret = taken
        source = (f"127.{1 + index // 65536 % 250}.{index // 256 % 256}.{1 + index % 250}", 0)
        connection = http.client.HTTPConnection("127.0.0.1", self.plan.port, timeout=30, source_address=source)
        try:
            return "signin", self._call(connection, "POST", "/api/v1/session",
                                        {"client_id": client_id, "password": PASSWORD,
                                         "code": pyotp.TOTP(secret).now()}, {})
        finally:
            connection.close()

    def approvals_left(self) -> bool:
        """Whether a request is left to approve (when none is, the call is a read instead)."""
        with self._lock:
            return bool(self._approvals)

    def approve(self, connection: http.client.HTTPConnection) -> tuple[str, int]:
        taken = self._take(self._approvals)
        if taken is None:
            raise RuntimeError("ran out of approvals")
        digest, document = taken
        headers = {"Cookie": f"coffer_session={self.plan.operator_cookie}", "X-CSRF-Token": self.plan.operator_csrf}
        return "approval", self._call(connection, "POST", f"/api/v1/console/approvals/{digest}/approval",
                                      {"approval": document}, headers)

    def withdraw(self, connection: http.client.HTTPConnection, index: int) -> tuple[str, int]:
        from coffer.integrations import sign_request
        from coffer.integrations.hmac_auth import HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP

        path = "/api/v1/exchange/withdrawals"
        raw = json.dumps({"client_id": f"client{index % CLIENTS:04d}", "asset": "BTC",
                          "amount_minor": 10_000 + index % 1000, "destination": DESTINATION}).encode()
        key_id, secret = self.plan.api_key
        stamp, nonce = int(time.time()), secrets.token_hex(16)
        headers = {HEADER_KEY: key_id, HEADER_TIMESTAMP: str(stamp), HEADER_NONCE: nonce,
                   HEADER_SIGNATURE: sign_request(bytes.fromhex(secret), stamp, nonce, "POST", path, raw),
                   "Idempotency-Key": secrets.token_hex(16), "Content-Type": "application/json"}
        _send(connection, "POST", path, raw, headers)
        response = connection.getresponse()
        response.read()
        return "withdrawal", 200 if response.status == 201 else response.status

    def read(self, connection: http.client.HTTPConnection, index: int) -> tuple[str, int]:
        path = self.reads[index % len(self.reads)]
        if "{digest}" in path:
            path = path.format(digest=self.plan.approvals[index % len(self.plan.approvals)][0])
        cookie = self.plan.client_cookie if path.startswith("/api/v1/me") else self.plan.operator_cookie
        return "read", self._call(connection, "GET", path, None, {"Cookie": f"coffer_session={cookie}"})

    def worker(self, number: int, deadline: float, mixed: bool) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.plan.port, timeout=30)
        index = random.randrange(1 << 16)
        while time.perf_counter() < deadline:
            index += 1
            started = time.perf_counter()
            try:
                if mixed and index % SIGNIN_EVERY == 0:
                    kind, status = self.signin(number * 100_000 + index)
                elif mixed and index % WITHDRAWAL_EVERY == 0:
                    kind, status = self.withdraw(connection, number * 100_000 + index)
                elif mixed and index % APPROVAL_EVERY == 0 and self.approvals_left():
                    kind, status = self.approve(connection)
                else:
                    kind, status = self.read(connection, index)
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                with self._lock:
                    self.errors.append(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.plan.port, timeout=30)
                continue
            with self._lock:
                self.samples.append((kind, time.perf_counter() - started))
                if status != 200:
                    self.errors.append(f"{kind}:{status}")


def _stats(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0}
    return {"count": len(ordered), "p50_ms": 1000 * ordered[len(ordered) // 2],
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def load(plan: Plan, reads: tuple[str, ...], mixed: bool, duration_s: float, queue: Any) -> None:
    """The load process: CONCURRENCY closed-loop connections for `duration_s`."""
    runner = Load(plan, reads)
    deadline = time.perf_counter() + duration_s
    threads = [threading.Thread(target=runner.worker, args=(i, deadline, mixed)) for i in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    kinds = {kind: _stats([t for k, t in runner.samples if k == kind]) for kind in ("read", "approval", "signin", "withdrawal")}
    queue.put({**_stats([t for _, t in runner.samples]), "seconds": elapsed, "kinds": kinds,
               "errors": runner.errors[:5], "error_count": len(runner.errors)})


def phase(plan: Plan, reads: tuple[str, ...], mixed: bool, name: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=load, args=(plan, reads, mixed, DURATION_S, queue))
    process.start()
    result: dict[str, Any] = queue.get(timeout=DURATION_S + 120)
    process.join(30)
    result["rps"] = result["count"] / result["seconds"]
    print(f"{name:<10} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
          f"  errors {result['error_count']} {result['errors']}", flush=True)
    if mixed:
        for kind, figures in result["kinds"].items():
            print(f"  {kind:<9} {figures['count']:6d} calls  p50 {figures['p50_ms']:6.1f} ms  "
                  f"p99 {figures['p99_ms']:6.1f} ms", flush=True)
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
    helpers = []
    try:
        plan = prepare(home)
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        serve = ServiceProcess.python("serve", ["serve", "--home", str(home), "--port", str(plan.port), "--no-recon"],
                                      workdir=work, port=plan.port, env=env, ready_timeout_s=60)
        serve.env = env
        with serve:
            if os.environ.get("BENCH_WEB_RECON", "1") != "0":  # 0: diagnose without the reconciliation
                helpers.append(context.Process(target=reconcile_forever, args=(str(home), stop, counter)))
                helpers[-1].start()
            time.sleep(1.0)
            print(f"coffer serve on :{plan.port}; load: {CONCURRENCY} connections x {DURATION_S:.0f} s per phase; "
                  f"reconciliation of {HOLDINGS} holdings running in another process", flush=True)
            baseline = phase(plan, ("/health",), False, "baseline")
            runs_before = counter.value
            mixed = phase(plan, READS, True, "mixed")
            checks = counter.value - runs_before
            assert port_open(plan.port)
        print(f"reconciliation runs during the mixed phase: {checks}")
        print(f"baseline /health: {baseline['rps']:.0f} req/s p99 {baseline['p99_ms']:.1f} ms; "
              f"mixed/baseline throughput {mixed['rps'] / max(baseline['rps'], 1):.2f}")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        code = verdict([(TARGET_RPS, mixed["rps"]), (TARGET_P99_MS, mixed["p99_ms"]),
                        (TARGET_ERRORS, mixed["error_count"])])
        print(f"web_rps={mixed['rps']:.0f} web_p99_ms={mixed['p99_ms']:.1f}")
        return code
    finally:
        stop.set()
        for helper in helpers:
            helper.join(30)
            if helper.is_alive():
                helper.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
