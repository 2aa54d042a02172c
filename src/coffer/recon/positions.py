"""The position and margin check: pure, columnar, exact integers (numpy int64, never floats).

From the fill log alone it rebuilds every position (size, cost) and the realised PnL and fees of
every account, following `coffer.exchange.accounting` exactly, then compares:
  1. replayed positions == the engine's positions, size and cost, exactly;
  2. open interest nets to zero per contract (engine's and replayed);
  3. ledger PnL postings == realised PnL the fills imply; ledger fees == fees of the fills;
  4. engine margin balances == ledger balances;
  5. equity (ledger balance + unrealised PnL at mark) >= maintenance margin, unless the engine
     is liquidating the account.
It reports mismatches; it never decides what to do about them (the halt switch does).

The replay processes all positions at once, one vector step per fill rank within a position
(first fill of every position, then the second, ...), so its cost is a few numpy passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from coffer.exchange.ingest import ContractBook, FillColumns
from coffer.exchange.model import BPS_DENOMINATOR, QUANTITY_MAX
from coffer.recon.errors import InvalidCheckInput

__all__ = [
    "PositionColumns", "PositionCheckInput", "Mismatch", "PositionCheckResult", "Replay",
    "replay_fills", "check_positions", "contract_values", "MISMATCHES_PER_KIND_MAX",
]

MISMATCHES_PER_KIND_MAX = 20
TURNOVER_MAX = 1 << 62
Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class PositionColumns:
    """The engine's positions as columns (account and contract are dense indices)."""

    account: Int64Array
    contract: Int64Array
    size: Int64Array
    cost_minor: Int64Array


@dataclass(frozen=True, slots=True)
class PositionCheckInput:
    """Everything one position check needs; balances are (accounts x settlement assets) arrays."""

    book: ContractBook
    accounts: Sequence[str]
    fills: FillColumns
    positions: PositionColumns
    mark_price_ticks: Int64Array
    engine_balances: Int64Array
    ledger_balances: Int64Array
    ledger_pnl: Int64Array
    ledger_fees: Int64Array
    liquidating: BoolArray
    as_of_sequence: int = 0
    base: Replay | None = None  # replay of the fills before `fills`, from a check that passed


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One disagreement: `kind` names the rule, `subject` what it is about."""

    kind: str
    subject: str
    expected: int
    actual: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "expected": self.expected, "actual": self.actual}


@dataclass(frozen=True, slots=True)
class PositionCheckResult:
    ok: bool
    mismatch_count: int
    mismatches: tuple[Mismatch, ...]
    fills: int
    positions: int
    accounts: int
    accounts_liquidating_below_maintenance: int
    as_of_sequence: int
    counts_by_kind: dict[str, int] = field(default_factory=dict)
    replay: Replay | None = field(default=None, compare=False, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "mismatch_count": self.mismatch_count, "fills": self.fills,
                "positions": self.positions, "accounts": self.accounts,
                "as_of_sequence": self.as_of_sequence, "counts_by_kind": dict(self.counts_by_kind),
                "liquidating_below_maintenance": self.accounts_liquidating_below_maintenance,
                "mismatches": [m.to_json() for m in self.mismatches]}


@dataclass(frozen=True, slots=True)
class Replay:
    """Positions rebuilt from fills: one row per (account, contract) that has fills, sorted by key."""

    account: Int64Array
    contract: Int64Array
    size: Int64Array
    cost_minor: Int64Array
    realised_minor: Int64Array
    fees_minor: Int64Array
    over_limit: int


def contract_values(book: ContractBook, contract: Int64Array, price_ticks: Int64Array) -> Int64Array:
    """v(p) per row (see coffer.exchange.model), vectorised and exact."""
    inverse, multiplier, _, _ = book.arrays()
    if np.any(price_ticks <= 0):
        raise InvalidCheckInput("prices must be positive")
    mult = multiplier[contract]
    if not inverse.any():
        return price_ticks * mult
    # Both forms are computed everywhere and the right one kept; the discarded lanes may wrap.
    return np.where(inverse[contract], -(mult // price_ticks), price_ticks * mult)


def _mul_div_floor(numerator: Int64Array, factor: Int64Array, divisor: Int64Array) -> Int64Array:
    """floor(numerator * factor / divisor) for 0 <= factor <= divisor, without a 128-bit product."""
    whole = numerator // divisor
    rest = numerator - whole * divisor
    return whole * factor + (rest * factor) // divisor


def _sort_order(key: Int64Array) -> tuple[Int64Array, Int64Array]:
    """(order, key[order]) for a stable sort of non-negative `key`.

    Packs (key, index) into one int64 and sorts values, which is several times faster than a
    stable argsort; falls back to the argsort when the packed value would not fit.
    """
    count = key.shape[0]
    if count == 0:
        return key.copy(), key.copy()
    bits = max(int(count - 1).bit_length(), 1)
    if int(key.max()).bit_length() + bits <= 62:
        packed = np.sort((key << bits) | np.arange(count, dtype=np.int64))
        return packed & ((1 << bits) - 1), packed >> bits
    order = np.argsort(key, kind="stable")
    return order, key[order]


def _group(fills: FillColumns, contracts: int) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array, Int64Array]:
    """Fill order by (rank, position); position id and rank of each; sorted unique position keys;
    fees summed per position."""
    order, sorted_key = _sort_order(fills.account * contracts + fills.contract)
    change = np.empty(sorted_key.shape[0], dtype=bool)
    change[:1] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    group = np.cumsum(change, dtype=np.int64) - 1
    rank = np.arange(sorted_key.shape[0], dtype=np.int64) - starts[group]
    by_rank, sorted_rank = _sort_order(rank)
    fees = np.add.reduceat(fills.fee_minor[order], starts)
    return order[by_rank], group[by_rank], sorted_rank, sorted_key[starts], fees


def _empty_replay() -> Replay:
    empty = np.zeros(0, dtype=np.int64)
    return Replay(empty, empty, empty, empty, empty, empty, 0)


def replay_fills(book: ContractBook, fills: FillColumns, base: Replay | None = None) -> Replay:
    """Rebuild every position from the fill log (in sequence order) by the accounting rules.

    With `base` (the replay of every earlier fill, from a check that passed) only the fills after
    it are replayed, starting from its positions: the result equals a replay of the whole log.
    """
    contracts = len(book.contracts)
    if len(fills) == 0:
        return base if base is not None else _empty_replay()
    if np.any(fills.contract < 0) or np.any(fills.contract >= contracts) or np.any(fills.account < 0):
        raise InvalidCheckInput("fill contract or account index out of range")
    fill_index, group, rank, keys, fees = _group(fills, contracts)
    quantity = fills.signed_quantity[fill_index]
    value = contract_values(book, fills.contract, fills.price_ticks)[fill_index]
    # Every cost and PnL sum of a position is bounded by its turnover, at most (fills of the
    # busiest position) x (largest |q*v|), plus what the base carries; below 2**62 nothing wraps.
    bound = (int(rank[-1]) + 1) * int(np.abs(quantity * value).max())
    if base is not None and base.size.shape[0]:
        bound += int(np.abs(base.realised_minor).max()) + int(np.abs(base.cost_minor).max())
    if bound >= TURNOVER_MAX:
        raise InvalidCheckInput(f"position turnover bound {bound} beyond the 64-bit replay")
    bounds = np.searchsorted(rank, np.arange(int(rank[-1]) + 2))
    if base is None or base.size.shape[0] == 0:
        size = np.zeros(keys.shape[0], dtype=np.int64)
        cost = np.zeros(keys.shape[0], dtype=np.int64)
        realised = np.zeros(keys.shape[0], dtype=np.int64)
        first = slice(0, int(bounds[1]))
        # Rank 0 opens every position: no PnL, no rounding.
        size[group[first]] = quantity[first]
        cost[group[first]] = quantity[first] * value[first]
        over_limit = _replay_steps(group, bounds, 1, quantity, value, size, cost, realised)
        return Replay(keys // contracts, keys % contracts, size, cost, realised, fees, over_limit)
    base_keys = base.account * contracts + base.contract
    merged = np.sort(np.concatenate((base_keys, keys)))
    keep = np.ones(merged.shape[0], dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    union = merged[keep]  # np.union1d hashes; a sort of two sorted runs is far faster here
    at_base, at_new = np.searchsorted(union, base_keys), np.searchsorted(union, keys)
    size, cost, realised, all_fees = (np.zeros(union.shape[0], dtype=np.int64) for _ in range(4))
    size[at_base], cost[at_base] = base.size, base.cost_minor
    realised[at_base], all_fees[at_base] = base.realised_minor, base.fees_minor
    all_fees[at_new] += fees
    over_limit = _replay_steps(at_new[group], bounds, 0, quantity, value, size, cost, realised)
    return Replay(union // contracts, union % contracts, size, cost, realised, all_fees,
                  base.over_limit + over_limit)


def _replay_steps(group: Int64Array, bounds: Int64Array, first_step: int, quantity: Int64Array,
                  value: Int64Array, size: Int64Array, cost: Int64Array, realised: Int64Array) -> int:
    """Apply the fills of ranks first_step.. in place, one vector step per rank; returns how many
    went beyond the position limit."""
    over_limit = 0
    for step in range(first_step, bounds.shape[0] - 1):
        lo, hi = int(bounds[step]), int(bounds[step + 1])
        g = group[lo:hi]
        q, v = quantity[lo:hi], value[lo:hi]
        s, c = size[g], cost[g]
        qv = q * v
        new_size = s + q
        abs_q, abs_s = np.abs(q), np.abs(s)
        adding = s * q >= 0
        # `removed` is the cost leaving the position; adding lanes "remove" -q*v so one formula
        # gives both the new cost and the gain; flipping lanes are overwritten below.
        removed = np.where(adding, -qv, _mul_div_floor(c, abs_q, np.maximum(abs_s, 1)))
        new_cost = c - removed
        gain = -qv - removed
        flipping = ~adding & (abs_q > abs_s)
        if flipping.any():
            gain = np.where(flipping, s * v - c, gain)
            new_cost = np.where(flipping, new_size * v, new_cost)
        if (np.abs(new_size) > QUANTITY_MAX).any():
            over_limit += int(np.count_nonzero(np.abs(new_size) > QUANTITY_MAX))
        size[g] = new_size
        cost[g] = new_cost
        realised[g] += gain
    return over_limit


DENSE_CELLS_MAX = 1 << 25


class _Cells:
    """Sums of per-position values by contract and by (account, settlement asset), exact int64.

    Positions are unique (account, contract) pairs, so when accounts x contracts is small enough
    the values are placed in a dense matrix and summed along its axes (much faster than
    scattered additions); otherwise np.add.at does the same sums.
    """

    def __init__(self, book: ContractBook, accounts: int, account: Int64Array, contract: Int64Array) -> None:
        self.contracts = len(book.contracts)
        self.assets = len(book.assets)
        self.accounts = accounts
        self._flat = account * self.contracts + contract
        _, _, _, settle = book.arrays()
        self._settle = settle
        self._columns = [np.flatnonzero(settle == asset) for asset in range(self.assets)]
        self._cell = account * self.assets + settle[contract]
        self._dense = accounts * self.contracts <= max(DENSE_CELLS_MAX, 4 * account.shape[0])

    def _matrix(self, values: Int64Array) -> Int64Array:
        matrix = np.zeros(self.accounts * self.contracts, dtype=np.int64)
        matrix[self._flat] = values
        return matrix.reshape(self.accounts, self.contracts)

    def by_contract(self, values: Int64Array) -> Int64Array:
        if self._dense:
            totals: Int64Array = self._matrix(values).sum(axis=0, dtype=np.int64)
            return totals
        totals = np.zeros(self.contracts, dtype=np.int64)
        np.add.at(totals, self._flat % self.contracts, values)
        return totals

    def by_account_asset(self, values: Int64Array) -> Int64Array:
        """Flat (account * assets + asset) sums."""
        if self._dense:
            matrix = self._matrix(values)
            out = np.empty((self.accounts, self.assets), dtype=np.int64)
            for asset, columns in enumerate(self._columns):
                out[:, asset] = matrix[:, columns].sum(axis=1, dtype=np.int64)
            return out.ravel()
        totals = np.zeros(self.accounts * self.assets, dtype=np.int64)
        np.add.at(totals, self._cell, values)
        return totals


class _Collector:
    def __init__(self, accounts: Sequence[str], book: ContractBook) -> None:
        self.accounts = accounts
        self.book = book
        self.examples: list[Mismatch] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, mask: BoolArray, subject: Any, expected: Int64Array, actual: Int64Array) -> None:
        where = np.flatnonzero(mask)
        if where.shape[0] == 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + int(where.shape[0])
        for row in where[:MISMATCHES_PER_KIND_MAX].tolist():
            self.examples.append(Mismatch(kind, str(subject(row)), int(expected[row]), int(actual[row])))

    def account_name(self, index: int) -> str:
        return self.accounts[index] if 0 <= index < len(self.accounts) else f"#{index}"

    def position_name(self, account: Int64Array, contract: Int64Array) -> Any:
        return lambda row: (f"{self.account_name(int(account[row]))}/"
                            f"{self.book.contracts[int(contract[row])].contract_id}")

    def balance_name(self, assets: int) -> Any:
        return lambda row: f"{self.account_name(row // assets)}/{self.book.assets[row % assets]}"


def _check_shapes(data: PositionCheckInput) -> None:
    shape = (len(data.accounts), len(data.book.assets))
    for name in ("engine_balances", "ledger_balances", "ledger_pnl", "ledger_fees"):
        if getattr(data, name).shape != shape:
            raise InvalidCheckInput(f"{name} must have shape {shape}")
    if data.liquidating.shape != (shape[0],) or data.mark_price_ticks.shape != (len(data.book.contracts),):
        raise InvalidCheckInput("liquidating or marks have the wrong shape")
    positions = data.positions
    for column in (positions.account, positions.contract, positions.size, positions.cost_minor):
        if column.shape != positions.account.shape:
            raise InvalidCheckInput("position columns differ in length")
    if positions.account.shape[0] and (positions.account.min() < 0 or positions.account.max() >= shape[0]
                                       or positions.contract.min() < 0
                                       or positions.contract.max() >= len(data.book.contracts)):
        raise InvalidCheckInput("position account or contract index out of range")
    if len(data.fills) and data.fills.account.max() >= shape[0]:
        raise InvalidCheckInput("fill account index out of range")


def _compare_positions(data: PositionCheckInput, replay: Replay, out: _Collector) -> Int64Array:
    """Compare positions; return the engine's open interest per contract."""
    contracts = len(data.book.contracts)
    engine = data.positions
    engine_key = engine.account * contracts + engine.contract
    if engine_key.shape[0] and engine_key.min() < 0:
        raise InvalidCheckInput("negative position index")
    order, keys = _sort_order(engine_key)
    duplicated = np.zeros(keys.shape[0], dtype=bool)
    duplicated[1:] = keys[1:] == keys[:-1]
    out.add("position_duplicate", duplicated, out.position_name(engine.account[order], engine.contract[order]),
            np.zeros_like(keys), keys)
    size, cost = engine.size[order], engine.cost_minor[order]
    replay_key = replay.account * contracts + replay.contract
    if keys.shape == replay_key.shape and np.array_equal(keys, replay_key):
        # The usual case: the engine lists exactly the positions the fills made.
        engine_size, engine_cost = size, cost
        backed = np.ones(keys.shape[0], dtype=bool)
    else:
        at = np.minimum(np.searchsorted(keys, replay_key), max(keys.shape[0] - 1, 0))
        found = (keys[at] == replay_key) if keys.shape[0] else np.zeros(replay_key.shape[0], dtype=bool)
        engine_size = np.where(found, size[at] if keys.shape[0] else 0, 0)
        engine_cost = np.where(found, cost[at] if keys.shape[0] else 0, 0)
        back = np.minimum(np.searchsorted(replay_key, keys), max(replay_key.shape[0] - 1, 0))
        backed = (replay_key[back] == keys) if replay_key.shape[0] else np.zeros(keys.shape[0], dtype=bool)
    name = out.position_name(replay.account, replay.contract)
    out.add("position_size", engine_size != replay.size, name, replay.size, engine_size)
    out.add("position_cost", engine_cost != replay.cost_minor, name, replay.cost_minor, engine_cost)
    unbacked = ~backed & ((size != 0) | (cost != 0))
    out.add("position_without_fills", unbacked, out.position_name(engine.account[order], engine.contract[order]),
            np.zeros_like(size), size)
    if duplicated.any():
        totals = np.zeros(contracts, dtype=np.int64)
        np.add.at(totals, engine.contract, engine.size)
        return totals
    return _Cells(data.book, len(data.accounts), keys // contracts, keys % contracts).by_contract(size)


def _open_interest(data: PositionCheckInput, engine_total: Int64Array, replay_cells: _Cells, replay: Replay,
                   out: _Collector) -> None:
    contracts = len(data.book.contracts)
    replay_total = replay_cells.by_contract(replay.size)
    zero = np.zeros(contracts, dtype=np.int64)
    name = lambda row: data.book.contracts[row].contract_id  # noqa: E731
    out.add("open_interest", engine_total != 0, name, zero, engine_total)
    out.add("open_interest_replayed", replay_total != 0, name, zero, replay_total)


def _margin(data: PositionCheckInput, replay: Replay, cells: _Cells, out: _Collector) -> int:
    _, _, bps, _ = data.book.arrays()
    mark_value = contract_values(data.book, np.arange(len(data.book.contracts), dtype=np.int64),
                                 data.mark_price_ticks)[replay.contract]
    unrealised = replay.size * mark_value - replay.cost_minor
    notional = np.abs(replay.size) * np.abs(mark_value)
    rate = bps[replay.contract]
    whole, rest = np.divmod(notional, BPS_DENOMINATOR)
    requirement = whole * rate + (rest * rate + BPS_DENOMINATOR - 1) // BPS_DENOMINATOR
    equity = data.ledger_balances.ravel() + cells.by_account_asset(unrealised)
    margin = cells.by_account_asset(requirement)
    below = equity < margin
    assets = len(data.book.assets)
    liquidating = np.repeat(data.liquidating, assets)
    out.add("margin_below_maintenance", below & ~liquidating, out.balance_name(assets), margin, equity)
    return int(np.count_nonzero(below & liquidating))


def check_positions(data: PositionCheckInput) -> PositionCheckResult:
    """Run every position and margin rule over `data`; pure."""
    _check_shapes(data)
    out = _Collector(data.accounts, data.book)
    replay = replay_fills(data.book, data.fills, data.base)
    if replay.over_limit:
        out.counts["position_limit"] = replay.over_limit
    engine_open_interest = _compare_positions(data, replay, out)
    cells = _Cells(data.book, len(data.accounts), replay.account, replay.contract)
    _open_interest(data, engine_open_interest, cells, replay, out)
    assets = len(data.book.assets)
    realised = cells.by_account_asset(replay.realised_minor)
    fees = cells.by_account_asset(replay.fees_minor)
    name = out.balance_name(assets)
    out.add("ledger_pnl", data.ledger_pnl.ravel() != realised, name, realised, data.ledger_pnl.ravel())
    out.add("ledger_fees", data.ledger_fees.ravel() != fees, name, fees, data.ledger_fees.ravel())
    ledger = data.ledger_balances.ravel()
    engine = data.engine_balances.ravel()
    out.add("margin_balance", engine != ledger, name, ledger, engine)
    liquidating_below = _margin(data, replay, cells, out)
    total = sum(out.counts.values())
    return PositionCheckResult(total == 0, total, tuple(out.examples), len(data.fills), int(replay.size.shape[0]),
                               len(data.accounts), liquidating_below, data.as_of_sequence, dict(out.counts),
                               replay)
