"""A load of withdrawal requests through the exchange API, as an integration sends them: signed,
retried with the same Idempotency-Key until answered; and the checks made after a crash."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coffer.coordinator import Coordinator
from coffer.home import init_home
from coffer.integrations import NewKey, sign_request
from coffer.integrations.cli import open_integrations
from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
from coffer.testing import ServiceProcess, free_port
from coffer.testing.tokens import process_softhsm_conf

DESTINATION = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
RETRY_S_MAX = 300.0


def make_world(tmp_path: Path, url: str, clients: int) -> tuple[Path, int, NewKey]:
    """A coordinator home on `url` with funded, whitelisted clients and an integration key."""
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
        for n in range(clients):
            client = f"c{n}"
            coordinator.ledger.open_client(client, ["BTC"], at=now)
            coordinator.ledger.apply(Transfer(
                idempotency_key=f"seed:{client}", kind=Kind.DEPOSIT,
                postings=(debit(AccountKey.custody("cold", "BTC"), 10**8),
                          credit(AccountKey.available(client, "BTC"), 10**8)), at=now, metadata={}))
            coordinator.policy.add_whitelist(client, "BTC", DESTINATION, by=f"client:{client}",
                                             now=now - dt.timedelta(days=3))
        key = open_integrations(coordinator).create("crash-test", by="alice", now=now)
    finally:
        coordinator.close()
    return home, port, key


def serve(home: Path, port: int, workdir: Path) -> ServiceProcess:
    """`coffer serve` over `home` on `port` (not yet started), reconciliation off: these tests are about intake."""
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    return ServiceProcess.python("serve", ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                                           "--no-recon"], workdir=workdir, port=port, env=env, ready_timeout_s=60)


def signed(key: NewKey, method: str, path: str, body: object) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts, nonce = int(time.time()), secrets.token_hex(16)
    return raw, {"X-Coffer-Key": key.key_id, "X-Coffer-Timestamp": str(ts), "X-Coffer-Nonce": nonce,
                 "X-Coffer-Signature": sign_request(bytes.fromhex(key.secret), ts, nonce, method, path, raw),
                 "Content-Type": "application/json"}


@dataclass
class Load:
    """`threads` integrations sending `per_client` withdrawal requests for each of `clients` clients."""

    port: int
    key: NewKey
    clients: int
    per_client: int
    threads: int = 4
    acknowledged: list[tuple[str, str, int]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _send(self, http: httpx.Client, client: str, n: int) -> None:
        body = {"client_id": client, "asset": "BTC", "amount_minor": 1_000 + n, "destination": DESTINATION}
        deadline = time.monotonic() + RETRY_S_MAX
        while time.monotonic() < deadline:
            raw, headers = signed(self.key, "POST", "/api/v1/exchange/withdrawals", body)
            headers["Idempotency-Key"] = f"{client}-{n}"
            try:
                answer: httpx.Response | None = http.post("/api/v1/exchange/withdrawals", content=raw,
                                                          headers=headers)
            except httpx.HTTPError:
                answer = None
            with self._lock:
                if answer is not None and answer.status_code == 201:
                    self.acknowledged.append((client, answer.json()["id"], 1_000 + n))
                    return
                self.failures.append(-1 if answer is None else answer.status_code)
                if answer is not None and answer.status_code < 500:
                    self.unexpected.append(answer.text[:300])
                    return
            time.sleep(0.25)

    def _loop(self, clients: list[str]) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=20) as http:
            for n in range(self.per_client):
                for client in clients:
                    self._send(http, client, n)

    def start(self) -> Load:
        self._workers = [threading.Thread(target=self._loop, args=([f"c{n}" for n in
                                                                     range(i, self.clients, self.threads)],))
                         for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def join(self, timeout_s: float) -> None:
        for worker in self._workers:
            worker.join(timeout=timeout_s)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)


def check_after(home: Path, load: Load) -> None:
    """Every request answered once; each acknowledged hold in the ledger exactly once; books and audit intact."""
    assert [] == load.unexpected
    assert load.clients * load.per_client == len(load.acknowledged), "a retried request never got its answer"
    assert set(load.failures) <= {-1, 503}, "an outage must answer 503 (retry), never another error"
    coordinator = Coordinator.open(home)
    try:
        for client, digest, amount in load.acknowledged:
            hold = coordinator.ledger.transfer(f"hold:{digest}")
            assert hold is not None, f"acknowledged withdrawal {digest} lost"
            assert amount == sum(p.amount for p in hold.postings if p.account == AccountKey.held(client, "BTC"))
        for n in range(load.clients):
            client = f"c{n}"
            expected = sum(a for c, _, a in load.acknowledged if c == client)
            assert expected == coordinator.ledger.balance(AccountKey.held(client, "BTC")), f"{client} held twice"
        coordinator.ledger.check_consistency()  # raises LedgerInconsistent
        coordinator.audit.verify_chain()
    finally:
        coordinator.close()
