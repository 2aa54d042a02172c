"""A plain-Python position check, rule for rule the same as `coffer.recon.positions`.

It is the naive baseline of the benchmark and the oracle the columnar check is tested against;
it loops over fills one by one with `coffer.exchange.accounting.apply_fill`.
"""

from __future__ import annotations

from coffer.exchange.accounting import Position, PositionLimitExceeded, apply_fill, maintenance_margin
from coffer.recon.positions import PositionCheckInput

__all__ = ["reference_counts"]


def _replay(data: PositionCheckInput) -> tuple[dict[tuple[int, int], Position], dict[tuple[int, int], int],
                                               dict[tuple[int, int], int], int]:
    contracts = data.book.contracts
    positions: dict[tuple[int, int], Position] = {}
    realised: dict[tuple[int, int], int] = {}
    fees: dict[tuple[int, int], int] = {}
    over_limit = 0
    fills = data.fills
    for account, contract, quantity, price, fee in zip(fills.account.tolist(), fills.contract.tolist(),
                                                       fills.signed_quantity.tolist(), fills.price_ticks.tolist(),
                                                       fills.fee_minor.tolist(), strict=True):
        key = (account, contract)
        value = contracts[contract].value(price)
        try:
            position, gain = apply_fill(positions.get(key, Position()), quantity, value)
        except PositionLimitExceeded:
            over_limit += 1
            old = positions.get(key, Position())
            position, gain = Position(old.size + quantity, old.cost_minor + quantity * value), 0
        positions[key] = position
        cell = (account, data.book.asset_index[contracts[contract].settle_asset])
        realised[cell] = realised.get(cell, 0) + gain
        fees[cell] = fees.get(cell, 0) + fee
    return positions, realised, fees, over_limit


def reference_counts(data: PositionCheckInput) -> dict[str, int]:
    """Mismatch counts by kind, as `check_positions(data).counts_by_kind` must report them."""
    if data.base is not None:
        raise ValueError("the reference replays whole fill logs only (no base)")
    counts: dict[str, int] = {}

    def bump(kind: str, by: int = 1) -> None:
        if by:
            counts[kind] = counts.get(kind, 0) + by

    positions, realised, fees, over_limit = _replay(data)
    bump("position_limit", over_limit)
    engine: dict[tuple[int, int], Position] = {}
    for account, contract, size, cost in zip(data.positions.account.tolist(), data.positions.contract.tolist(),
                                             data.positions.size.tolist(), data.positions.cost_minor.tolist(),
                                             strict=True):
        if (account, contract) in engine:
            bump("position_duplicate")
        engine.setdefault((account, contract), Position(size, cost))
    for key, position in positions.items():
        theirs = engine.get(key, Position())
        bump("position_size", int(theirs.size != position.size))
        bump("position_cost", int(theirs.cost_minor != position.cost_minor))
    for key, theirs in engine.items():
        if key not in positions and (theirs.size or theirs.cost_minor):
            bump("position_without_fills")
    for name, book in (("open_interest", engine), ("open_interest_replayed", positions)):
        totals = [0] * len(data.book.contracts)
        for (_, contract), position in book.items():
            totals[contract] += position.size
        bump(name, sum(1 for total in totals if total))
    assets = len(data.book.assets)
    ledger = data.ledger_balances.tolist()
    for account in range(len(data.accounts)):
        for asset in range(assets):
            cell = (account, asset)
            bump("ledger_pnl", int(realised.get(cell, 0) != int(data.ledger_pnl[account, asset])))
            bump("ledger_fees", int(fees.get(cell, 0) != int(data.ledger_fees[account, asset])))
            bump("margin_balance", int(ledger[account][asset] != int(data.engine_balances[account, asset])))
    equity = [row[:] for row in ledger]
    requirement = [[0] * assets for _ in ledger]
    for (account, contract), position in positions.items():
        spec = data.book.contracts[contract]
        asset = data.book.asset_index[spec.settle_asset]
        mark_value = spec.value(int(data.mark_price_ticks[contract]))
        equity[account][asset] += position.size * mark_value - position.cost_minor
        requirement[account][asset] += maintenance_margin(position.size, mark_value, spec.maintenance_margin_bps)
    liquidating = data.liquidating.tolist()
    for account in range(len(data.accounts)):
        for asset in range(assets):
            if equity[account][asset] < requirement[account][asset] and not liquidating[account]:
                bump("margin_below_maintenance")
    return counts
