"""The exchange API over a real coordinator home: HMAC-signed requests per integration key, strict
bodies, idempotent withdrawal requests that hold funds once, states read from the owning parts,
cancellation that releases the hold and can't race attestation, and a signed event feed."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coffer.coordinator import Coordinator
from coffer.integrations import NewKey, sign_feed, sign_request
from coffer.integrations.cli import open_integrations
from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
from coffer.policy.errors import PolicyRefused
from coffer.web.console.serve import build_app
from tests.web.test_console_serve import make_home

DESTINATION = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


class Api:
    """A signed client of the exchange API, as an exchange's back office would write one."""

    def __init__(self, client: TestClient, key: NewKey) -> None:
        self.client = client
        self.key = key

    def call(self, method: str, path: str, body: object | bytes | None = None, *, headers: dict[str, str] | None = None,
             timestamp_s: int | None = None, key: NewKey | None = None, nonce: str | None = None) -> object:
        key = key or self.key
        raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
        ts = int(time.time()) if timestamp_s is None else timestamp_s
        nonce = nonce or secrets.token_hex(16)
        signed = {"X-Coffer-Key": key.key_id, "X-Coffer-Timestamp": str(ts), "X-Coffer-Nonce": nonce,
                  "X-Coffer-Signature": sign_request(bytes.fromhex(key.secret), ts, nonce, method, path, raw),
                  "Content-Type": "application/json", **(headers or {})}
        return self.client.request(method, path, content=raw, headers=signed)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Api, Coordinator]]:
    home = tmp_path / "home"
    home.mkdir()
    port, _ = make_home(home)
    coordinator = Coordinator.open(home)
    coordinator.policy.bootstrap_default(now=coordinator.now())
    served = build_app(coordinator, host="127.0.0.1", port=port, recon=False, mail=False, probe_signers=False)
    key = open_integrations(coordinator).create("back-office", by="alice", now=coordinator.now())
    try:
        with TestClient(served.app) as client:
            yield Api(client, key), coordinator
    finally:
        coordinator.close()


def _fund(coordinator: Coordinator, client_id: str, amount: int) -> None:
    coordinator.ledger.open_accounts([AccountKey.custody("cold", "BTC")], at=coordinator.now())
    coordinator.ledger.apply(Transfer(
        idempotency_key=f"test-deposit:{client_id}", kind=Kind.DEPOSIT,
        postings=(debit(AccountKey.custody("cold", "BTC"), amount), credit(AccountKey.available(client_id, "BTC"),
                                                                        amount)),
        at=coordinator.now(), metadata={}))


def _whitelist(coordinator: Coordinator) -> None:
    coordinator.policy.add_whitelist("c1", "BTC", DESTINATION, by="client:c1",
                                     now=coordinator.now() - dt.timedelta(days=3))


def _open(api: Api, coordinator: Coordinator, client_id: str = "c1", funds: int = 1_000_000) -> None:
    assert 201 == api.call("POST", "/api/v1/exchange/accounts", {"client_id": client_id}).status_code  # type: ignore[attr-defined]
    _fund(coordinator, client_id, funds)


def _balances(api: Api, client_id: str = "c1") -> dict[str, int]:
    return api.call("GET", f"/api/v1/exchange/accounts/{client_id}/balances").json()["balances"]["BTC"]  # type: ignore[attr-defined,no-any-return]


def test_unsigned_and_badly_signed_requests_are_refused(world: tuple[Api, Coordinator]) -> None:
    """No key, an unknown key, a wrong signature, a stale timestamp and a replay: 401 naming the rule."""
    api, _ = world
    path = "/api/v1/exchange/accounts"
    assert "auth.timestamp" == api.client.post(path, json={"client_id": "x"}).json()["rule"]
    assert "auth.nonce" == api.call("POST", path, {"client_id": "x"}, nonce="short").json()["rule"]  # type: ignore[attr-defined]
    stranger = NewKey("ck_000000000000000000000000", "00" * 32)
    assert "auth.key" == api.call("POST", path, {"client_id": "x"}, key=stranger).json()["rule"]  # type: ignore[attr-defined]
    forged = NewKey(api.key.key_id, "11" * 32)
    assert "auth.signature" == api.call("POST", path, {"client_id": "x"}, key=forged).json()["rule"]  # type: ignore[attr-defined]
    stale = api.call("POST", path, {"client_id": "x"}, timestamp_s=int(time.time()) - 3600)
    assert (401, "auth.timestamp") == (stale.status_code, stale.json()["rule"])  # type: ignore[attr-defined]
    ts, nonce = int(time.time()), secrets.token_hex(16)
    first = api.call("POST", path, {"client_id": "x"}, timestamp_s=ts, nonce=nonce)
    again = api.call("POST", path, {"client_id": "x"}, timestamp_s=ts, nonce=nonce)
    assert 201 == first.status_code  # type: ignore[attr-defined]
    assert (401, "auth.replay") == (again.status_code, again.json()["rule"])  # type: ignore[attr-defined]


def test_revoked_and_rotated_keys(world: tuple[Api, Coordinator]) -> None:
    """A rotated key stops at once (grace 0) while its successor works; a revoked key stops."""
    api, coordinator = world
    store = open_integrations(coordinator)
    new = store.rotate(api.key.key_id, by="alice", now=coordinator.now())
    path = "/api/v1/exchange/accounts"
    assert "auth.key" == api.call("POST", path, {"client_id": "r"}).json()["rule"]  # type: ignore[attr-defined]
    assert 201 == api.call("POST", path, {"client_id": "r"}, key=new).status_code  # type: ignore[attr-defined]
    store.revoke(new.key_id, by="alice", now=coordinator.now())
    assert 401 == api.call("POST", path, {"client_id": "r2"}, key=new).status_code  # type: ignore[attr-defined]
    events = [e.event for e in coordinator.audit.events() if e.event.startswith("integration.")]
    assert ["integration.created", "integration.created", "integration.rotated", "integration.revoked"] == events
    assert "sealed" not in repr(new) and new.secret not in repr(new)


def test_withdrawal_request_is_idempotent_and_holds_once(world: tuple[Api, Coordinator]) -> None:
    """The same Idempotency-Key twice: one request, one hold; the same key with another body: 409."""
    api, coordinator = world
    _open(api, coordinator)
    _whitelist(coordinator)
    body = {"client_id": "c1", "asset": "BTC", "amount_minor": 250_000, "destination": DESTINATION}
    first = api.call("POST", "/api/v1/exchange/withdrawals", body, headers={"Idempotency-Key": "w-1"})
    second = api.call("POST", "/api/v1/exchange/withdrawals", body, headers={"Idempotency-Key": "w-1"})
    assert 201 == first.status_code == second.status_code  # type: ignore[attr-defined]
    assert first.json() == second.json()  # type: ignore[attr-defined]
    assert "true" == second.headers["Idempotent-Replayed"]  # type: ignore[attr-defined]
    other = api.call("POST", "/api/v1/exchange/withdrawals", {**body, "amount_minor": 1},
                     headers={"Idempotency-Key": "w-1"})
    assert (409, "idempotency_conflict") == (other.status_code, other.json()["error"])  # type: ignore[attr-defined]
    assert 1 == len([e for e in coordinator.audit.events(event="policy.request_submitted")])
    assert {"available": 750_000, "held": 250_000} == _balances(api)


def test_a_refused_withdrawal_releases_its_hold(world: tuple[Api, Coordinator]) -> None:
    """A destination never whitelisted is refused by the policy; the state says so and the funds are back."""
    api, coordinator = world
    _open(api, coordinator)
    body = {"client_id": "c1", "asset": "BTC", "amount_minor": 250_000, "destination": DESTINATION}
    answer = api.call("POST", "/api/v1/exchange/withdrawals", body, headers={"Idempotency-Key": "w-2"})
    assert (403, "whitelist.unlisted") == (answer.status_code, answer.json()["rule"])  # type: ignore[attr-defined]
    assert {"available": 1_000_000, "held": 0} == _balances(api)
    _whitelist(coordinator)
    again = api.call("POST", "/api/v1/exchange/withdrawals", body, headers={"Idempotency-Key": "w-2"})
    assert (403, "whitelist.unlisted") == (again.status_code, again.json()["rule"])  # type: ignore[attr-defined]
    assert 1 == len(coordinator.audit.events(event="policy.request_submitted"))


def test_cancel_releases_the_hold_and_closes_the_request_for_good(world: tuple[Api, Coordinator]) -> None:
    """A whitelisted withdrawal awaiting approval is cancelled: funds back, and it can never be attested."""
    api, coordinator = world
    _open(api, coordinator)
    _whitelist(coordinator)
    body = {"client_id": "c1", "asset": "BTC", "amount_minor": 250_000, "destination": DESTINATION}
    view = api.call("POST", "/api/v1/exchange/withdrawals", body, headers={"Idempotency-Key": "w-3"}).json()  # type: ignore[attr-defined]
    assert "awaiting_approval" == view["state"]
    assert {"available": 750_000, "held": 250_000} == _balances(api)
    cancelled = api.call("POST", f"/api/v1/exchange/withdrawals/{view['id']}/cancel", b"")
    assert "cancelled" == cancelled.json()["state"]  # type: ignore[attr-defined]
    assert {"available": 1_000_000, "held": 0} == _balances(api)
    again = api.call("POST", f"/api/v1/exchange/withdrawals/{view['id']}/cancel", b"")
    assert 400 == again.status_code  # type: ignore[attr-defined]
    with pytest.raises(PolicyRefused) as refused:
        coordinator.policy.attest(view["id"], now=coordinator.now())
    assert "request.closed" == refused.value.rule
    assert {"available": 1_000_000, "held": 0} == _balances(api)


@pytest.mark.parametrize(("raw", "rule"), [
    (b'{"client_id": "c1", "asset": "BTC", "amount_minor": 1.5, "destination": "x"}', "request.malformed"),
    (b'{"client_id": "c1", "asset": "BTC", "amount_minor": 1, "destination": "x", "extra": 1}', "request.malformed"),
    (b'{"client_id": "c1", "client_id": "c2", "asset": "BTC", "amount_minor": 1, "destination": "x"}',
     "request.malformed"),
    (b'{"client_id": "c1", "asset": "BTC", "amount_minor": -5, "destination": "x"}', "request.malformed"),
    (b'{"client_id": "c1", "asset": "BTC", "amount_minor": 1, "destination": ' + b"[" * 50 + b"]" * 50 + b"}",
     "json.depth"),  # the app-wide depth limit answers first
    (b'{"client_id": "c1", "asset": "BTC", "amount_minor": 1, "destination": ' + b"[" * 5 + b"]" * 5 + b"}",
     "request.too_deep"),  # within the app's limit, past the exchange API's own
    (b"\xff\xfe", "request.malformed"),
    (b'{"client_id": "' + b"a" * 20_000 + b'"}', "request.too_large"),
])
def test_bad_withdrawal_bodies_change_nothing(world: tuple[Api, Coordinator], raw: bytes, rule: str) -> None:
    """Floats, unknown or duplicate fields, negative amounts, deep nesting, bad bytes: 4xx naming the rule, no hold."""
    api, coordinator = world
    _open(api, coordinator)
    answer = api.call("POST", "/api/v1/exchange/withdrawals", raw, headers={"Idempotency-Key": "bad"})
    assert 400 <= answer.status_code < 500  # type: ignore[attr-defined]
    assert rule == answer.json().get("rule", "request.too_large")  # type: ignore[attr-defined]
    assert {"available": 1_000_000, "held": 0} == _balances(api)
    assert [] == coordinator.audit.events(event="policy.request_submitted")


def test_the_event_feed_is_signed_and_follows_a_cursor(world: tuple[Api, Coordinator]) -> None:
    """Feed pages carry an HMAC under the integration's secret and resume from their cursor."""
    api, coordinator = world
    _open(api, coordinator)
    body = {"client_id": "c1", "asset": "BTC", "amount_minor": 5_000, "destination": DESTINATION}
    api.call("POST", "/api/v1/exchange/withdrawals", body, headers={"Idempotency-Key": "f-1"})
    page = api.call("GET", "/api/v1/exchange/events?after=0&limit=1")
    assert sign_feed(bytes.fromhex(api.key.secret), page.content) == page.headers["X-Coffer-Feed-Signature"]  # type: ignore[attr-defined]
    first = page.json()  # type: ignore[attr-defined]
    assert ["policy.request_submitted"] == [e["event"] for e in first["events"]]
    rest = api.call("GET", f"/api/v1/exchange/events?after={first['next']}&limit=100").json()  # type: ignore[attr-defined]
    assert "policy.decision" in [e["event"] for e in rest["events"]]
    assert all(e["seq"] > first["next"] for e in rest["events"])
