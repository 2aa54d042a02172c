"""SIGKILL of the PostgreSQL server itself (every process at once, fsync on) while the exchange
API takes accounts and withdrawal requests from `coffer serve`: after the restart, everything the
API acknowledged is there, nothing is held twice, the ledger balances and the audit chain verifies."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import threading
import time
from pathlib import Path

import httpx
import pytest

from coffer.coordinator import Coordinator
from coffer.home import init_home
from coffer.integrations import NewKey, sign_request
from coffer.integrations.cli import open_integrations
from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
from coffer.testing import ServiceProcess, free_port
from coffer.testing.postgres import PostgresServer
from coffer.testing.tokens import process_softhsm_conf
from coffer.testing.wait import wait_until

DESTINATION = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
CLIENTS = 12
REQUESTS_PER_CLIENT = 25
RETRIES_MAX = 200


def _signed(key: NewKey, method: str, path: str, body: object) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts, nonce = int(time.time()), secrets.token_hex(16)
    return raw, {"X-Coffer-Key": key.key_id, "X-Coffer-Timestamp": str(ts), "X-Coffer-Nonce": nonce,
                 "X-Coffer-Signature": sign_request(bytes.fromhex(key.secret), ts, nonce, method, path, raw),
                 "Content-Type": "application/json"}


def _world(tmp_path: Path, url: str) -> tuple[Path, int, NewKey]:
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    (home / "coffer.toml").write_text(
        f'[database]\nurl = "{url}"\n[hsm]\nsofthsm_conf = "{process_softhsm_conf()}"\n'
        f'token_label = "crash-{random.randrange(1 << 30)}"\n[web]\nport = {port}\nnotice_port = {free_port()}\n')
    init_home(home)
    coordinator = Coordinator.open(home)
    try:
        now = coordinator.now()
        coordinator.policy.bootstrap_default(now=now)
        coordinator.ledger.open_accounts([AccountKey.custody("cold", "BTC")], at=now)
        for n in range(CLIENTS):
            client = f"c{n}"
            coordinator.ledger.open_client(client, ["BTC"], at=now)
            coordinator.ledger.apply(Transfer(
                idempotency_key=f"seed:{client}", kind=Kind.DEPOSIT,
                postings=(debit(AccountKey.custody("cold", "BTC"), 10**8), credit(AccountKey.available(client, "BTC"),
                                                                                10**8)), at=now, metadata={}))
            coordinator.policy.add_whitelist(client, "BTC", DESTINATION, by=f"client:{client}",
                                             now=now - dt.timedelta(days=3))
        key = open_integrations(coordinator).create("crash-test", by="alice", now=now)
    finally:
        coordinator.close()
    return home, port, key


@pytest.mark.slow
def test_acknowledged_requests_survive_a_sigkill_of_postgresql(tmp_path: Path) -> None:
    """Requests flow from 4 threads that retry with the same Idempotency-Key; PostgreSQL is SIGKILLed
    mid-flow and restarted; every request is answered once, held once, and the ledger balances."""
    server = PostgresServer(durable=True).start()
    try:
        url = server.create_database()
        home, port, key = _world(tmp_path, url)
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        serve = ServiceProcess.python("serve", ["serve", "--home", str(home), "--host", "127.0.0.1", "--port",
                                                str(port), "--no-recon"], workdir=tmp_path, port=port, env=env,
                                      ready_timeout_s=60)
        acknowledged: list[tuple[str, str, int]] = []
        failures: list[int] = []
        unexpected: list[str] = []
        lock = threading.Lock()

        def send(http: httpx.Client, client: str, n: int) -> None:
            body = {"client_id": client, "asset": "BTC", "amount_minor": 1_000 + n, "destination": DESTINATION}
            for _attempt in range(RETRIES_MAX):  # an integration retries with the same Idempotency-Key
                raw, headers = _signed(key, "POST", "/api/v1/exchange/withdrawals", body)
                headers["Idempotency-Key"] = f"{client}-{n}"
                try:
                    answer = http.post("/api/v1/exchange/withdrawals", content=raw, headers=headers)
                except httpx.HTTPError:
                    answer = None
                with lock:
                    if answer is not None and answer.status_code == 201:
                        acknowledged.append((client, answer.json()["id"], 1_000 + n))
                        return
                    failures.append(-1 if answer is None else answer.status_code)
                    if answer is not None and answer.status_code < 500:
                        unexpected.append(answer.text[:300])
                        return
                time.sleep(0.25)

        def client_loop(clients: list[str]) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
                for n in range(REQUESTS_PER_CLIENT):
                    for client in clients:
                        send(http, client, n)

        with serve:
            threads = [threading.Thread(target=client_loop, args=([f"c{n}" for n in range(i, CLIENTS, 4)],))
                       for i in range(4)]
            for thread in threads:
                thread.start()
            wait_until(lambda: len(acknowledged) >= 40, timeout=120, what="40 acknowledged requests")
            killed = server.kill()
            time.sleep(0.5)
            server.start()
            for thread in threads:
                thread.join(timeout=300)
            assert serve.alive(), "coffer serve died with its database"
        print(f"postgres kill: {killed} processes, {len(acknowledged)} acknowledged, {len(failures)} failed "
              f"{sorted(set(failures))}; serve log: {serve.log_tail(1500)}")
        assert killed >= 2 and failures, "the kill landed outside the flow: the test proved nothing"
        assert [] == unexpected
        assert CLIENTS * REQUESTS_PER_CLIENT == len(acknowledged), "a retried request never got its answer"
        assert set(failures) <= {-1, 503}, "an outage must answer 503 (retry), never another error"
        coordinator = Coordinator.open(home)
        try:
            for client, digest, amount in acknowledged:
                hold = coordinator.ledger.transfer(f"hold:{digest}")
                assert hold is not None, f"acknowledged withdrawal {digest} lost"
                assert amount == sum(p.amount for p in hold.postings if p.account == AccountKey.held(client, "BTC"))
            held = {f"c{n}": coordinator.ledger.balance(AccountKey.held(f"c{n}", "BTC")) for n in range(CLIENTS)}
            for client, total in held.items():  # exactly: every key held once, whatever the retries
                assert sum(a for c, _, a in acknowledged if c == client) == total
            coordinator.ledger.check_consistency()  # raises LedgerInconsistent
            coordinator.audit.verify_chain()
        finally:
            coordinator.close()
    finally:
        server.stop()
