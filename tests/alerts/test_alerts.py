"""Alerts: raised once while a condition lasts, resolved when it clears, mailed encrypted to the
security team, posted to a signed webhook with retries through the job queue, shown to operators."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.alerts import AlertCenter, AlertWatcher, SignedWebhook, deliver_webhooks, webhook_signature
from coffer.audit import AuditLog
from coffer.errors import CofferError
from coffer.pipeline import JobQueue
from coffer.recon import HaltSwitch

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def send(self, alert: object, *, now: dt.datetime) -> None:
        if self.fail:
            raise CofferError("no team key")
        self.sent.append(alert.subject)  # type: ignore[attr-defined]


def test_an_alert_is_raised_once_while_it_lasts_and_resolved_after(engine: Engine) -> None:
    """The same condition twice is one open alert seen twice; resolving closes it and a recurrence is a new one."""
    channel = Recorder()
    center = AlertCenter(engine, AuditLog(engine), [channel])
    assert center.raise_alert("check_failed", "onchain", "mismatch", now=NOW) is not None
    assert center.raise_alert("check_failed", "onchain", "mismatch", now=NOW) is None
    (alert,) = center.open_alerts()
    assert (2, ["onchain"]) == (alert.seen, channel.sent)
    assert center.resolve("check_failed", "onchain", now=NOW)
    assert [] == center.open_alerts()
    assert center.raise_alert("check_failed", "onchain", "again", now=NOW) is not None
    assert ["onchain", "onchain"] == channel.sent
    assert ["alert.raised", "alert.resolved", "alert.raised"] == [
        e.event for e in AuditLog(engine).events() if e.event.startswith("alert.")]


def test_a_failing_channel_never_hides_the_alert(engine: Engine) -> None:
    """A channel that fails (no team key) still leaves the alert open for the console."""
    center = AlertCenter(engine, AuditLog(engine), [Recorder(fail=True)])
    assert center.raise_alert("halt", "h1", "halted", now=NOW) is not None
    assert ["h1"] == [a.subject for a in center.open_alerts()]


def test_the_watcher_raises_for_a_halt_a_dead_job_and_an_unseen_key_holder(engine: Engine) -> None:
    """Halted, a dead pipeline job, a key holder silent too long: three alerts; cleared, they resolve."""
    switch = HaltSwitch(engine, quorum=2)
    center = AlertCenter(engine, AuditLog(engine))
    seen: dict[str, str | None] = {"signer-1": NOW.isoformat(), "signer-2": None}
    watcher = AlertWatcher(engine, center, halt=switch, key_holders_seen=lambda: seen)
    switch.trip("onchain_mismatch", {"asset": "BTC"}, actor="recon")
    queue = JobQueue(engine)
    with engine.begin() as conn:
        queue.enqueue(conn, "withdrawal.dispatch", "d1", {}, now_ms=0, attempts_max=1)
    (job,) = queue.claim("w", ["withdrawal.dispatch"], now_ms=0, lease_ms=1)
    queue.fail(job, "signer unreachable", now_ms=0, retry_in_ms=0)
    held = watcher.check(NOW)
    kinds = sorted(kind for kind, _ in held)
    assert ["halt", "job_stuck", "keyholder_unseen"] == kinds
    assert ("keyholder_unseen", "signer-2") in held and ("keyholder_unseen", "signer-1") not in held
    seen["signer-2"] = NOW.isoformat()
    assert ("keyholder_unseen", "signer-2") not in watcher.check(NOW)
    assert [] == center.open_alerts(kind="keyholder_unseen")


def test_webhooks_are_signed_and_retried_until_delivered(engine: Engine) -> None:
    """The first post fails (500), the retry after the backoff succeeds; the body carries a valid HMAC."""
    center = AlertCenter(engine, AuditLog(engine), [SignedWebhook(engine, "https://alerts.example/hook")])
    center.raise_alert("halt", "h2", "halted", now=NOW)
    answers = iter([500, 204])
    posted: list[tuple[bytes, dict[str, str]]] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        posted.append((body, headers))
        return next(answers)

    assert 0 == deliver_webhooks(engine, b"k" * 32, worker="w", now=NOW, post=post)
    assert 0 == deliver_webhooks(engine, b"k" * 32, worker="w", now=NOW, post=post), "retried before its backoff"
    later = NOW + dt.timedelta(seconds=11)
    assert 1 == deliver_webhooks(engine, b"k" * 32, worker="w", now=later, post=post)
    body, headers = posted[-1]
    assert webhook_signature(b"k" * 32, body) == headers["X-Coffer-Alert-Signature"]
    assert "h2" == json.loads(body)["subject"]
    assert 2 == len(posted)


def test_a_plain_http_webhook_off_loopback_is_refused(tmp_path: Path) -> None:
    """Alerts never go out in clear text to another host."""
    from coffer.db import make_engine

    with pytest.raises(CofferError, match="https"):
        SignedWebhook(make_engine(f"sqlite:///{tmp_path / 'x.db'}"), "http://alerts.example/hook")


def test_two_coordinators_raising_at_once_open_one_alert(engine: Engine) -> None:
    """The open alert is unique per (kind, subject) in the database, whoever raises it."""
    first, second = AlertCenter(engine, AuditLog(engine)), AlertCenter(engine, AuditLog(engine))
    first.raise_alert("job_stuck", "x:1", "stuck", now=NOW)
    second.raise_alert("job_stuck", "x:1", "stuck", now=NOW)
    with engine.connect() as conn:
        assert 1 == conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar()


def test_operators_read_alerts_and_nobody_else(tmp_path: Path) -> None:
    """`coffer serve`'s app lists alerts to operators only: anonymous callers get 401."""
    from fastapi.testclient import TestClient

    from coffer.coordinator import Coordinator
    from coffer.web.console.serve import build_app
    from tests.web.test_console_serve import make_home

    home = tmp_path / "home"
    home.mkdir()
    port, _ = make_home(home)
    coordinator = Coordinator.open(home)
    try:
        served = build_app(coordinator, host="127.0.0.1", port=port, recon=False, mail=False, probe_signers=False,
                           pipeline=False)
        with TestClient(served.app) as client:
            assert 401 == client.get("/api/v1/console/alerts").status_code
            assert "/api/v1/console/alerts" in client.get("/openapi.json").json()["paths"]
    finally:
        coordinator.close()
