"""The simulator's HTTP API, in-process and as its own `coffer exchange-sim` process."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from coffer.exchange import ExchangeError, ExchangeSimulator, ExchangeUnavailable, SimulatorFeed
from coffer.exchange.http import ExchangeClient, SimulatorServer
from coffer.testing import ServiceProcess, free_port, wait_until


@pytest.fixture
def served() -> tuple[ExchangeSimulator, ExchangeClient]:
    sim = ExchangeSimulator(seed=5, accounts=6)
    server = SimulatorServer(sim).start()
    yield sim, ExchangeClient(server.url)
    server.stop()


def test_client_sees_what_the_simulator_holds(served: tuple[ExchangeSimulator, ExchangeClient]) -> None:
    """Contracts, snapshot, fills and ledger totals over HTTP equal the in-process values."""
    sim, client = served
    assert client.step(40) > 0
    local = SimulatorFeed(sim)
    assert list(sim.contracts) == list(client.contracts())
    snapshot = client.snapshot()
    assert local.snapshot() == snapshot
    assert sim.fills(0, snapshot.as_of_sequence) == list(client.fills(0, snapshot.as_of_sequence))
    assert local.margin_totals(snapshot.as_of_sequence) == client.margin_totals(snapshot.as_of_sequence)


def test_fault_over_http_and_bad_requests(served: tuple[ExchangeSimulator, ExchangeClient]) -> None:
    """Faults are injected over HTTP; malformed requests get a typed 400."""
    sim, client = served
    client.step(5)
    assert "alter_margin" == client.inject("alter_margin", delta=-5)["fault"]
    assert "alter_margin" == client.status()["faults"][0]["fault"]
    with pytest.raises(ExchangeError, match="InvalidFault"):
        client.inject("no_such_fault")
    with pytest.raises(ExchangeError, match="400"):
        client.fills(-1, 5)


def test_unreachable_exchange_is_unavailable_not_bad_data() -> None:
    """An engine that cannot be reached raises ExchangeUnavailable (counted, not an instant halt)."""
    with pytest.raises(ExchangeUnavailable):
        ExchangeClient(f"http://127.0.0.1:{free_port()}", timeout_s=1).snapshot()


def test_exchange_sim_runs_as_its_own_process(tmp_path: Path, services: list[ServiceProcess]) -> None:
    """`coffer exchange-sim run` serves the API as a separate process and matches on its ticker."""
    port = free_port()
    service = ServiceProcess.python("exchange-sim", ["exchange-sim", "run", "--seed", "9", "--port", str(port),
                                                     "--tick-ms", "20"], workdir=tmp_path, port=port)
    services.append(service)
    service.start()
    client = ExchangeClient(f"http://127.0.0.1:{port}")
    wait_until(lambda: client.snapshot().as_of_sequence > 20, timeout=20, what="simulator matching")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
        assert json.loads(response.read())["halted"] is False
