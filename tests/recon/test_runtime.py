"""The reconciliation runtime built from a data directory's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffer.config import load_config
from coffer.db import make_engine, migrate
from coffer.exchange import ExchangeSimulator, FaultKind, SimulatorFeed
from coffer.recon import HaltSwitch, ReconError, recent_runs
from coffer.recon.runtime import ReconRuntime
from coffer.testing import wait_until


def test_runtime_from_config_checks_and_halts(tmp_path: Path) -> None:
    """With a 1 s interval from the environment, the runtime checks the simulator and halts on a fault."""
    config = load_config(tmp_path, environ={"COFFER_RECON_POSITIONS_INTERVAL_S": "1"})
    engine = make_engine(config.database_url)
    migrate(engine)
    switch = HaltSwitch(engine, quorum=int(config.get("halt", "officer_quorum")))
    sim = ExchangeSimulator(seed=5, halt_gate=switch.require_clear)
    sim.step(100)
    runtime = ReconRuntime.from_config(config, engine, switch, node="c1", exchange=SimulatorFeed(sim)).start()
    try:
        wait_until(lambda: recent_runs(engine, job="positions"), timeout=20, what="first check")
        sim.inject(FaultKind.ALTER_MARGIN)
        wait_until(switch.is_halted, timeout=20, what="halt")
    finally:
        runtime.stop()
        engine.dispose()
    assert "position_mismatch" == switch.history()[0].cause


def test_runtime_needs_something_to_check(tmp_path: Path) -> None:
    """A runtime with neither an exchange feed nor an on-chain source is refused."""
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    with pytest.raises(ReconError):
        ReconRuntime(engine, HaltSwitch(engine, quorum=1), node="c1")
    engine.dispose()
