"""The trading simulator: deterministic, honours the halt, injects faults on command."""

from __future__ import annotations

import pytest

from coffer.exchange import ExchangeSimulator, FaultKind, InvalidFault
from coffer.exchange.accounting import Position, apply_fill
from coffer.recon.errors import HaltInForce, HaltStateUnknown


def test_same_seed_same_fills() -> None:
    """Two simulators with one seed produce identical fills, positions and marks."""
    first, second = ExchangeSimulator(seed=3, accounts=6), ExchangeSimulator(seed=3, accounts=6)
    for sim in (first, second):
        for _ in range(20):
            sim.step(10)
    assert first.fills(0, 10**9) == second.fills(0, 10**9)
    assert first.snapshot() == second.snapshot()
    assert first.last_sequence > 100


def test_other_seed_other_fills() -> None:
    """A different seed gives a different history."""
    first, second = ExchangeSimulator(seed=3), ExchangeSimulator(seed=4)
    first.step(20)
    second.step(20)
    assert first.fills(0, 10**9) != second.fills(0, 10**9)


def test_positions_follow_published_fills() -> None:
    """Replaying the published fills with the accounting rules gives the engine's positions."""
    sim = ExchangeSimulator(seed=11, accounts=5)
    sim.step(300)
    book = {c.contract_id: c for c in sim.contracts}
    positions: dict[tuple[str, str], Position] = {}
    for fill in sim.fills(0, 10**9):
        key = (fill.account, fill.contract)
        positions[key], _ = apply_fill(positions.get(key, Position()), fill.signed_quantity,
                                       book[fill.contract].value(fill.price_ticks))
    engine = {(p.account, p.contract): Position(p.size, p.cost_minor) for p in sim.snapshot().positions}
    assert engine == {k: v for k, v in positions.items() if v.size or v.cost_minor}


@pytest.mark.parametrize("error", [HaltInForce("h1"), HaltStateUnknown("cut off"), RuntimeError("boom")])
def test_halt_gate_stops_matching(error: Exception) -> None:
    """While the gate raises (halted, unknown, or failing) the simulator matches nothing."""
    gate_open = [True]

    def gate() -> None:
        if not gate_open[0]:
            raise error

    sim = ExchangeSimulator(seed=1, halt_gate=gate)
    assert sim.step(5) > 0
    before = sim.last_sequence
    gate_open[0] = False
    assert 0 == sim.step(50)
    assert before == sim.last_sequence
    assert sim.halted
    gate_open[0] = True
    assert sim.step(5) > 0


def test_unknown_fault_and_bad_arguments_refused() -> None:
    """An unknown fault kind or bad arguments are refused."""
    sim = ExchangeSimulator(seed=1)
    with pytest.raises(InvalidFault):
        sim.inject("set_fire")
    with pytest.raises(InvalidFault):
        sim.inject(FaultKind.ALTER_MARGIN, colour="red")
    with pytest.raises(InvalidFault):
        sim.inject(FaultKind.DUPLICATE_FILL)
    with pytest.raises(InvalidFault):
        sim.inject(FaultKind.ALTER_MARGIN, account="nobody")


def test_dropped_fill_hides_its_sequence_number() -> None:
    """A dropped fill leaves no gap in the published sequence (the fault covers its tracks)."""
    sim = ExchangeSimulator(seed=2)
    sim.step(5)
    sim.inject(FaultKind.DROP_FILL)
    sim.step(5)
    sequences = [f.sequence for f in sim.fills(0, 10**9)]
    assert list(range(1, len(sequences) + 1)) == sequences
