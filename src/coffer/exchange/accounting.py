"""Position accounting, the one definition both the engine (simulator) and the checker follow.

A position is (size, cost_minor). A fill of signed quantity q at contract value v = v(p):
- opening or adding (size == 0 or same sign):  size += q; cost += q*v; realised 0.
- reducing (|q| <= |size|, opposite sign):     removed = floor(cost*|q| / |size|);
                                                size += q; cost -= removed;
                                                realised = -(q*v) - removed.
- flipping (|q| > |size|):                     realised = size*v - cost  (close all),
                                                size = q + size; cost = size*v.
In every case cost' = cost + q*v + realised, so the realised PnL of a whole fill log equals
`cost_final - sum(q*v)`, whatever the order or the rounding. Floor is Python's `//` (towards
minus infinity), which numpy's integer floor_divide matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from coffer.exchange.model import BPS_DENOMINATOR, QUANTITY_MAX
from coffer.invariant import invariant

__all__ = ["Position", "apply_fill", "unrealised_pnl", "maintenance_margin", "PositionLimitExceeded"]


class PositionLimitExceeded(ValueError):
    """A fill would take a position beyond +-QUANTITY_MAX (the engine must have refused it)."""


@dataclass(frozen=True, slots=True)
class Position:
    size: int = 0
    cost_minor: int = 0


def apply_fill(position: Position, signed_quantity: int, value: int) -> tuple[Position, int]:
    """Apply one fill; return the new position and the realised PnL in settlement minor units."""
    size, cost = position.size, position.cost_minor
    invariant(signed_quantity != 0, "a fill has a non-zero quantity")
    new_size = size + signed_quantity
    if abs(new_size) > QUANTITY_MAX:
        raise PositionLimitExceeded(f"position size {new_size} beyond +-{QUANTITY_MAX}")
    if size == 0 or (size > 0) == (signed_quantity > 0):
        return Position(new_size, cost + signed_quantity * value), 0
    if abs(signed_quantity) <= abs(size):
        removed = (cost * abs(signed_quantity)) // abs(size)
        return Position(new_size, cost - removed), -(signed_quantity * value) - removed
    realised = size * value - cost
    return Position(new_size, new_size * value), realised


def unrealised_pnl(position: Position, mark_value: int) -> int:
    """PnL of `position` if closed at the mark, whose contract value is `mark_value`."""
    return position.size * mark_value - position.cost_minor


def maintenance_margin(size: int, mark_value: int, maintenance_margin_bps: int) -> int:
    """ceil(|size| * |v(mark)| * bps / 10_000): rounded up, in the exchange's disfavour."""
    notional = abs(size) * abs(mark_value)
    return -((-notional * maintenance_margin_bps) // BPS_DENOMINATOR)
