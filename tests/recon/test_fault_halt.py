"""End to end: every injected engine fault halts the exchange within one check interval, and the
halt stops matching (in-process, and in a separate simulator process that polls signed notices)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from coffer.exchange import ExchangeSimulator, FaultKind, SimulatorFeed
from coffer.exchange.http import ExchangeClient
from coffer.hsm import KeyKind
from coffer.recon import (
    HaltSwitch,
    NoticeIssuer,
    NoticeServer,
    PositionReconciler,
    Reconciler,
    Scheduler,
    hsm_notice_signer,
    recent_runs,
)
from coffer.testing import ServiceProcess, TokenHandle, free_port, wait_until

INTERVAL_S = 0.25



@pytest.mark.parametrize("fault", list(FaultKind))
def test_fault_halts_within_one_check_interval(sqlite_engine: Engine, fault: FaultKind) -> None:
    """After the fault, the first position check that starts trips the halt, and matching stops."""
    switch = HaltSwitch(sqlite_engine, quorum=2)
    sim = ExchangeSimulator(seed=21, accounts=8, halt_gate=switch.require_clear)
    for _ in range(10):
        sim.step(20)
    feed = SimulatorFeed(sim)
    reconciler = Reconciler(switch, positions=PositionReconciler(feed, feed), engine=sqlite_engine)
    scheduler = Scheduler(sqlite_engine, reconciler.jobs(positions_interval_s=INTERVAL_S), node="c1")
    scheduler.start(tick_s=0.02)
    try:
        wait_until(lambda: recent_runs(sqlite_engine, job="positions"), timeout=20, what="a clean first run")
        assert not switch.is_halted()
        # Runs with a higher id than this were claimed after the fault, so the first of them is
        # the first check that began after it.
        last_before = recent_runs(sqlite_engine, job="positions", limit=1)[0].run_id
        sim.inject(fault)
        sim.step(10)
        wait_until(switch.is_halted, timeout=20, what="halt")
    finally:
        scheduler.stop()
    halting_run = switch.history()[0].details["run_id"]
    assert halting_run <= last_before + 1
    earlier = [r.status for r in recent_runs(sqlite_engine, job="positions", limit=1000) if r.run_id < halting_run]
    assert "mismatch" not in earlier
    assert 0 == sim.step(20)


def test_check_that_cannot_run_halts_after_bound(sqlite_engine: Engine) -> None:
    """A position feed that keeps failing halts after `errors_before_halt` runs (fail closed)."""
    switch = HaltSwitch(sqlite_engine, quorum=1)

    class DeadFeed:
        def check(self) -> None:
            raise ConnectionError("engine unreachable")

    reconciler = Reconciler(switch, positions=DeadFeed(), errors_before_halt=2)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(ConnectionError):
            reconciler.run_positions()
    assert "check_unavailable" == switch.history()[0].cause


def test_separate_simulator_process_stops_matching_on_signed_halt(
        tmp_path: Path, services: list[ServiceProcess], sqlite_engine: Engine, token: TokenHandle) -> None:
    """The simulator as its own process polls HSM-signed notices: a fault halts it, then it refuses to match."""
    with token.open() as hsm:
        hsm.generate_key("notice", KeyKind.ED25519)
        switch = HaltSwitch(sqlite_engine, quorum=2)
        notices = NoticeServer(NoticeIssuer(switch, hsm_notice_signer(hsm, "notice"))).start()
        port = free_port()
        services.append(ServiceProcess.python(
            "exchange-sim", ["exchange-sim", "run", "--seed", "4", "--port", str(port), "--tick-ms", "20",
                             "--halt-url", notices.url, "--halt-public-key", hsm.public_key("notice").hex(),
                             "--halt-max-age-s", "2"], workdir=tmp_path, port=port))
        services[-1].start()
        client = ExchangeClient(f"http://127.0.0.1:{port}")
        reconciler = Reconciler(switch, positions=PositionReconciler(client, client))
        try:
            wait_until(lambda: client.snapshot().as_of_sequence > 50, timeout=20, what="matching")
            assert "ok" == reconciler.run_positions().status
            client.inject("alter_position")
            assert "mismatch" == reconciler.run_positions().status
            wait_until(lambda: client.status()["halted"], timeout=10, what="simulator sees the halt")
            stopped_at = client.status()["last_sequence"]
            assert 0 == client.step(50)
            assert stopped_at == client.status()["last_sequence"]
        finally:
            notices.stop()
