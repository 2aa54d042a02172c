"""Fixtures of the web tests: the app over SQLite with a controllable clock, clients alice and bob."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from coffer.clients import ClientDirectory
from coffer.db import make_engine, migrate
from coffer.ledger import Ledger
from coffer.notify import NotifyParts, open_notify
from coffer.policy.service import PolicyService
from coffer.por.nonces import create_account_nonce
from coffer.web import WebContext, create_app, por_nonce_lookup
from tests.notify.conftest import client_gpg, team_key  # noqa: F401  (shared session fixtures)

PASSWORD = "correct horse battery staple"
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    """The app's clock; TOTP codes follow it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Web:
    app: FastAPI
    context: WebContext
    engine: Engine
    notify: NotifyParts
    policy: PolicyService
    clock: Clock
    secrets: dict[str, str]
    nonces: dict[str, str]

    def code(self, client_id: str) -> str:
        """The TOTP code now."""
        return pyotp.TOTP(self.secrets[client_id]).at(self.clock().timestamp())

    def next_code(self, client_id: str) -> str:
        """Move the clock one TOTP step on and give that step's code (each code is accepted once)."""
        self.clock.advance(30)
        return self.code(client_id)

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="https://testserver")


def build_web(engine: Engine, team_key_armored: str, *, secure_cookies: bool = True) -> Web:
    clock = Clock(START)
    clients = ClientDirectory(engine, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    secrets = {}
    for client_id in ("alice", "bob"):
        secrets[client_id] = clients.register(client_id, f"{client_id}@example.com", PASSWORD, now=clock()).secret
    notify = open_notify(engine, address_of=clients.email, team_address="team@example.com")
    notify.keys.add_team_key(team_key_armored.encode(), name="team", by="test", now=clock())
    ledger = Ledger(engine)
    nonces = {}
    for client_id in ("alice", "bob"):
        account = ledger.open_client(client_id, ["BTC"], at=clock())
        nonces[client_id] = create_account_nonce(engine, account.account_number).hex()
    policy = PolicyService(engine, hsm=None, halted=lambda: False, hot_balance=lambda asset: 0)
    context = WebContext(engine=engine, clients=clients, notify=notify, policy=policy,
                         account_nonce=por_nonce_lookup(engine), clock=clock, secure_cookies=secure_cookies)
    return Web(create_app(context), context, engine, notify, policy, clock, secrets, nonces)


@pytest.fixture
def web_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def web(web_engine: Engine, team_key) -> Web:  # type: ignore[no-untyped-def]  # noqa: F811
    """The security centre app over SQLite, alice and bob registered, one team key."""
    return build_web(web_engine, str(team_key.extract_certificate()))


def sign_in(web: Web, client: TestClient, client_id: str) -> str:
    """Sign in through the API; returns the CSRF token."""
    response = client.post("/api/v1/session", json={"client_id": client_id, "password": PASSWORD,
                                                    "code": web.next_code(client_id)})
    assert 200 == response.status_code, response.text
    return str(response.json()["csrf_token"])
