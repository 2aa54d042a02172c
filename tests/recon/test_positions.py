"""The position and margin check: clean books pass, each kind of corruption is named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.exchange import Contract, ContractBook, ContractKind, ExchangeSimulator, FaultKind, SimulatorFeed
from coffer.exchange.ingest import FillColumns
from coffer.recon import InvalidCheckInput, PositionCheckInput, PositionColumns, check_positions, replay_fills
from coffer.recon.reference import reference_counts
from coffer.recon.service import PositionReconciler


def collected(seed: int = 7, steps: int = 30) -> tuple[ExchangeSimulator, PositionReconciler]:
    sim = ExchangeSimulator(seed=seed, accounts=8)
    for _ in range(steps):
        sim.step(20)
    feed = SimulatorFeed(sim)
    return sim, PositionReconciler(feed, feed)


def test_clean_simulator_books_pass() -> None:
    """Positions, open interest, PnL, fees, balances and margins of an honest engine all agree."""
    _, reconciler = collected()
    data = reconciler.collect()
    result = check_positions(data)
    assert (True, {}) == (result.ok, result.counts_by_kind)
    assert {} == reference_counts(data)
    assert len(data.fills) > 500


@pytest.mark.parametrize("fault,kinds", [
    (FaultKind.DROP_FILL, {"position_size", "open_interest_replayed"}),
    (FaultKind.ALTER_POSITION, {"position_size", "open_interest"}),
    (FaultKind.ALTER_MARGIN, {"margin_balance"}),
    (FaultKind.CREDIT_FROM_NOWHERE, {"ledger_pnl"}),
])
def test_each_fault_is_named(fault: FaultKind, kinds: set[str]) -> None:
    """Each injected fault shows up as the mismatch kinds that describe it, in both implementations."""
    sim, reconciler = collected()
    sim.inject(fault)
    sim.step(10)
    data = reconciler.collect()
    result = check_positions(data)
    assert not result.ok
    assert kinds <= set(result.counts_by_kind)
    assert reference_counts(data) == result.counts_by_kind


def _input(book: ContractBook, balances: list[int], positions: list[tuple[int, int, int, int]],
           fills: list[tuple[int, int, int, int]], mark: int, liquidating: list[bool]) -> PositionCheckInput:
    def column(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    accounts = len(balances)
    fill_columns = FillColumns(column([f[0] for f in fills]), column([f[1] for f in fills]),
                               column([f[2] for f in fills]), column([f[3] for f in fills]),
                               column([0] * len(fills)))
    cells = np.array(balances, dtype=np.int64).reshape(accounts, 1)
    replay = replay_fills(book, fill_columns)
    pnl = np.zeros((accounts, 1), dtype=np.int64)
    np.add.at(pnl[:, 0], replay.account, replay.realised_minor)
    return PositionCheckInput(book, [f"a{i}" for i in range(accounts)], fill_columns,
                              PositionColumns(*(column([p[i] for p in positions]) for i in range(4))),
                              column([mark] * len(book.contracts)), cells, cells.copy(), pnl, np.zeros_like(pnl),
                              np.array(liquidating, dtype=bool))


BOOK = ContractBook([Contract("P", ContractKind.LINEAR, "USD", 1, 1000)])


def test_account_below_maintenance_not_liquidated_is_mismatch() -> None:
    """An account whose equity is below maintenance margin and is not being liquidated is a mismatch."""
    fills = [(0, 0, 10, 100), (1, 0, -10, 100)]
    positions = [(0, 0, 10, 1000), (1, 0, -10, -1000)]
    data = _input(BOOK, [60, 10_000], positions, fills, mark=95, liquidating=[False, False])
    result = check_positions(data)
    assert {"margin_below_maintenance": 1} == result.counts_by_kind
    assert "a0/USD" == result.mismatches[0].subject
    liquidating = dataclasses.replace(data, liquidating=np.array([True, False]))
    assert check_positions(liquidating).ok
    assert 1 == check_positions(liquidating).accounts_liquidating_below_maintenance


def test_engine_position_without_fills_and_duplicates_named() -> None:
    """A position the fills do not back and a position listed twice are mismatches."""
    data = _input(BOOK, [10, 10], [(0, 0, 1, 100), (0, 0, 1, 100)], [], mark=100, liquidating=[False, False])
    assert {"position_duplicate", "position_without_fills", "open_interest"} <= set(check_positions(data).counts_by_kind)


def test_bad_shapes_refused() -> None:
    """Inputs of the wrong shape or with indices out of range are refused."""
    data = _input(BOOK, [10], [], [], mark=100, liquidating=[False])
    with pytest.raises(InvalidCheckInput):
        check_positions(dataclasses.replace(data, ledger_pnl=np.zeros((2, 1), dtype=np.int64)))
    with pytest.raises(InvalidCheckInput):
        check_positions(dataclasses.replace(data, positions=PositionColumns(*(np.array([v]) for v in (5, 0, 1, 1)))))


fills_strategy = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(-30, 30).filter(bool),
                                    st.integers(1, 2000)), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(fills_strategy, st.integers(0, 5), st.integers(-3, 3))
def test_columnar_check_agrees_with_reference(fills: list[tuple[int, int, int, int]], victim: int, delta: int) -> None:
    """On random fill logs with a random corruption, numpy and plain Python report the same counts."""
    book = ContractBook([Contract("L", ContractKind.LINEAR, "USD", 7, 100),
                         Contract("I", ContractKind.INVERSE, "USD", 1_000_000, 300)])
    honest = replay_fills(book, FillColumns(*(np.array([f[i] for f in fills], dtype=np.int64) for i in range(4)),
                                            np.ones(len(fills), dtype=np.int64)))
    rows = [[int(a), int(c), int(s), int(k)] for a, c, s, k in zip(honest.account, honest.contract, honest.size,
                                                                  honest.cost_minor, strict=True)]
    if rows:
        rows[victim % len(rows)][2] += delta
    data = _input(book, [5000, 0, 100, 10**6], [tuple(r) for r in rows], fills, mark=900,  # type: ignore[misc]
                  liquidating=[False, True, False, False])
    data = dataclasses.replace(data, fills=dataclasses.replace(data.fills, fee_minor=np.ones(len(fills), np.int64)))
    assert reference_counts(data) == check_positions(data).counts_by_kind


def test_turnover_beyond_64_bits_refused() -> None:
    """A fill log whose position turnover could wrap a 64-bit sum is refused, never summed wrongly."""
    book = ContractBook([Contract("BIG", ContractKind.LINEAR, "USD", (1 << 31) - 1, 100)])
    fills = [(0, 0, (1 << 31) - 1, 1), (1, 0, -((1 << 31) - 1), 1), (0, 0, -1, 1), (1, 0, 1, 1)]
    with pytest.raises(InvalidCheckInput):
        replay_fills(book, FillColumns(*(np.array([f[i] for f in fills], dtype=np.int64) for i in range(4)),
                                       np.zeros(4, dtype=np.int64)))


@settings(max_examples=200, deadline=None)
@given(fills_strategy, st.integers(0, 80))
def test_replay_from_a_base_equals_whole_replay(fills: list[tuple[int, int, int, int]], cut: int) -> None:
    """Replaying the fills after a cut on top of the replay before it equals replaying them all."""
    book = ContractBook([Contract("L", ContractKind.LINEAR, "USD", 7, 100),
                         Contract("I", ContractKind.INVERSE, "USD", 1_000_000, 300)])

    def columns(part: list[tuple[int, int, int, int]]) -> FillColumns:
        return FillColumns(*(np.array([f[i] for f in part], dtype=np.int64) for i in range(4)),
                           np.array([f[3] % 5 for f in part], dtype=np.int64))

    cut = min(cut, len(fills))
    whole = replay_fills(book, columns(fills))
    split = replay_fills(book, columns(fills[cut:]), replay_fills(book, columns(fills[:cut])))
    for name in ("account", "contract", "size", "cost_minor", "realised_minor", "fees_minor"):
        assert getattr(whole, name).tolist() == getattr(split, name).tolist()


def test_checks_after_a_passing_check_replay_only_new_fills_and_still_catch_faults() -> None:
    """Each passing check becomes the base of the next; a later fault is still caught."""
    sim, reconciler = collected(seed=9, steps=10)
    assert reconciler.check().ok
    sim.step(50)
    second = reconciler.check()
    assert second.ok
    assert second.fills < sim.last_sequence
    sim.inject(FaultKind.ALTER_POSITION)
    sim.step(50)
    third = reconciler.check()
    feed = SimulatorFeed(sim)
    fresh = PositionReconciler(feed, feed)
    assert {"position_size", "open_interest"} <= set(third.counts_by_kind)
    assert check_positions(fresh.collect()).counts_by_kind == third.counts_by_kind
