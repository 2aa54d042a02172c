"""Position accounting: worked examples and the order-independent PnL identity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.exchange import Position, apply_fill, maintenance_margin, unrealised_pnl
from coffer.exchange.accounting import PositionLimitExceeded
from coffer.exchange.model import QUANTITY_MAX


def test_long_then_partial_close_realises_profit() -> None:
    """Buy 2 at 100, sell 1 at 110: realise 10, keep 1 at cost 100."""
    position, gain = apply_fill(Position(), 2, 100)
    assert (Position(2, 200), 0) == (position, gain)
    position, gain = apply_fill(position, -1, 110)
    assert (Position(1, 100), 10) == (position, gain)


def test_short_profits_when_price_falls() -> None:
    """Sell 1 at 100, buy 1 at 90: a short realises 10."""
    position, _ = apply_fill(Position(), -1, 100)
    assert (Position(0, 0), 10) == apply_fill(position, 1, 90)


def test_flip_closes_all_and_opens_rest_at_fill_price() -> None:
    """Long 1 at 100, sell 3 at 120: realise 20, short 2 at cost -240."""
    assert (Position(-2, -240), 20) == apply_fill(Position(1, 100), -3, 120)


def test_reduce_rounds_removed_cost_down() -> None:
    """Removed cost is floor(cost*q/size): long 3 at total cost 100, sell 1 removes 33."""
    assert (Position(2, 67), 50 - 33) == apply_fill(Position(3, 100), -1, 50)


def test_inverse_long_gains_when_price_rises() -> None:
    """With v(p) = -(M // p), a long inverse position gains as the price rises."""
    multiplier = 200_000_000
    position, _ = apply_fill(Position(), 10, -(multiplier // 100_000))
    assert unrealised_pnl(position, -(multiplier // 110_000)) > 0


def test_position_limit_refused() -> None:
    """A fill beyond the position limit raises."""
    with pytest.raises(PositionLimitExceeded):
        apply_fill(Position(QUANTITY_MAX, 0), 1, 1)


def test_maintenance_margin_rounds_up() -> None:
    """Maintenance margin is ceil(|size| |v| bps / 10000)."""
    assert 1 == maintenance_margin(-1, 3, 1)
    assert 50 == maintenance_margin(10, -1000, 50)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50).filter(bool), st.integers(-10**6, 10**6)), max_size=60))
def test_realised_pnl_equals_final_cost_minus_sum_of_fills(fills: list[tuple[int, int]]) -> None:
    """Whatever the order and rounding, realised PnL == final cost - sum(q*v)."""
    position, realised = Position(), 0
    for quantity, value in fills:
        position, gain = apply_fill(position, quantity, value)
        realised += gain
    assert position.cost_minor - sum(q * v for q, v in fills) == realised
    assert sum(q for q, _ in fills) == position.size
