"""A deterministic trading simulator for the demo and the tests: a toy perpetuals engine.

N accounts trade the configured perpetuals against each other; every trade produces two fills
(taker and maker), moves positions and margin balances by `coffer.exchange.accounting`, and posts
realised PnL and fees to a ledger (`MemoryLedger` here; the coordinator's ledger in production).
Everything follows from the seed: the same seed and the same calls give the same fills.

It honours the halt: before matching it calls `halt_gate`, and when that raises (halt in force,
or halt state unknown) it matches nothing. Faults are injected on command to prove the checks
catch them: drop a fill, duplicate one, alter a position, alter a margin balance, credit a balance
out of nowhere. Faults are for tests and demos only; nothing else calls `inject`.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coffer.errors import CofferError
from coffer.exchange.accounting import Position, apply_fill, maintenance_margin, unrealised_pnl
from coffer.exchange.errors import InvalidFault, InvalidSnapshot
from coffer.exchange.feed import ExchangeSnapshot, LedgerMarginTotal
from coffer.exchange.model import (
    AccountBalance,
    Contract,
    ContractKind,
    Fill,
    MarkPrice,
    PositionSnapshot,
    Side,
)
from coffer.invariant import invariant

__all__ = [
    "DEFAULT_CONTRACTS", "INITIAL_MARKS", "INITIAL_DEPOSITS", "FaultKind", "MemoryLedger", "ExchangeSimulator",
    "SimulatorFeed", "ACCOUNTS_MAX", "TRADES_PER_STEP_MAX",
]

ACCOUNTS_MAX = 10_000
TRADES_PER_STEP_MAX = 10_000
TRADE_QUANTITY_MAX = 20
TAKER_FEE_BPS = 5
MAKER_FEE_BPS = 2
INITIAL_MARGIN_FACTOR = 2
FAULTS_KEPT_MAX = 1000

# BTC-USDT: 0.001 BTC per contract, price in 0.1 USD ticks, settled in 10^-6 USDT: v(p) = 100 p.
# ETH-USDT: 0.01 ETH per contract, price in 0.01 USD ticks: v(p) = 100 p.
# BTC-USD inverse: 1 USD per contract, price in 0.5 USD ticks, settled in sats: v(p) = -(2e8 // p).
DEFAULT_CONTRACTS: tuple[Contract, ...] = (
    Contract("BTC-USDT", ContractKind.LINEAR, "USDT", 100, 50),
    Contract("ETH-USDT", ContractKind.LINEAR, "USDT", 100, 100),
    Contract("BTC-USD", ContractKind.INVERSE, "BTC", 200_000_000, 50),
)
INITIAL_MARKS: Mapping[str, int] = {"BTC-USDT": 600_000, "ETH-USDT": 300_000, "BTC-USD": 120_000}
INITIAL_DEPOSITS: Mapping[str, int] = {"USDT": 100_000 * 10**6, "BTC": 10**8}


class FaultKind(enum.Enum):
    DROP_FILL = "drop_fill"
    DUPLICATE_FILL = "duplicate_fill"
    ALTER_POSITION = "alter_position"
    ALTER_MARGIN = "alter_margin"
    CREDIT_FROM_NOWHERE = "credit_from_nowhere"


@dataclass(slots=True)
class _Cell:
    balance_minor: int = 0
    pnl_minor: int = 0
    fees_minor: int = 0


class MemoryLedger:
    """The simulator's view of what it posted to the ledger, per account and asset."""

    def __init__(self) -> None:
        self._cells: dict[tuple[str, str], _Cell] = {}

    def _cell(self, account: str, asset: str) -> _Cell:
        return self._cells.setdefault((account, asset), _Cell())

    def deposit(self, account: str, asset: str, amount_minor: int) -> None:
        self._cell(account, asset).balance_minor += amount_minor

    def post_pnl(self, account: str, asset: str, amount_minor: int) -> None:
        cell = self._cell(account, asset)
        cell.balance_minor += amount_minor
        cell.pnl_minor += amount_minor

    def post_fee(self, account: str, asset: str, amount_minor: int) -> None:
        cell = self._cell(account, asset)
        cell.balance_minor -= amount_minor
        cell.fees_minor += amount_minor

    def totals(self) -> tuple[LedgerMarginTotal, ...]:
        return tuple(LedgerMarginTotal(account, asset, c.balance_minor, c.pnl_minor, c.fees_minor)
                     for (account, asset), c in sorted(self._cells.items()))


@dataclass(slots=True)
class _State:
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    liquidating: set[str] = field(default_factory=set)
    fills: list[Fill] = field(default_factory=list)
    next_sequence: int = 1
    fill_counter: int = 0
    drops_pending: int = 0


class ExchangeSimulator:
    """In-process simulator; thread-safe. `step(n)` matches up to n trades unless halted."""

    def __init__(self, *, seed: int, accounts: int = 10, contracts: Sequence[Contract] = DEFAULT_CONTRACTS,
                 marks: Mapping[str, int] = INITIAL_MARKS, deposits: Mapping[str, int] = INITIAL_DEPOSITS,
                 halt_gate: Callable[[], None] | None = None) -> None:
        if not 2 <= accounts <= ACCOUNTS_MAX:
            raise InvalidFault(f"accounts must be 2..{ACCOUNTS_MAX}")
        self.seed = seed
        self.contracts = tuple(contracts)
        self._by_id = {c.contract_id: c for c in self.contracts}
        self.accounts = tuple(f"acct-{n:05d}" for n in range(1, accounts + 1))
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._halt_gate = halt_gate
        self.halted = False
        self.ledger = MemoryLedger()
        self.faults: list[dict[str, Any]] = []
        self._state = _State(marks={c.contract_id: marks[c.contract_id] for c in self.contracts})
        for account in self.accounts:
            for asset in sorted({c.settle_asset for c in self.contracts}):
                amount = deposits.get(asset, 0)
                self._state.balances[(account, asset)] = amount
                self.ledger.deposit(account, asset, amount)

    # -- matching ----------------------------------------------------------------------------
    def step(self, trades: int = 1) -> int:
        """Move marks and match up to `trades` trades; 0 when the halt gate refuses."""
        if not 0 <= trades <= TRADES_PER_STEP_MAX:
            raise InvalidFault(f"trades must be 0..{TRADES_PER_STEP_MAX}")
        with self._lock:
            if self._halt_gate is not None:
                try:
                    self._halt_gate()
                except CofferError:
                    self.halted = True
                    return 0
                except Exception:  # an unknown gate failure means an unknown state: do not match
                    self.halted = True
                    return 0
            self.halted = False
            done = 0
            for _ in range(trades):
                self._move_marks()
                done += int(self._try_trade())
            self._liquidations()
            return done

    def _move_marks(self) -> None:
        for contract in self.contracts:
            mark = self._state.marks[contract.contract_id]
            self._state.marks[contract.contract_id] = max(1, mark + mark * self._rng.randint(-5, 5) // 10_000)

    def _active(self) -> list[str]:
        return [a for a in self.accounts if a not in self._state.liquidating]

    def _try_trade(self) -> bool:
        active = self._active()
        contract = self._rng.choice(self.contracts)
        side = self._rng.choice((Side.BUY, Side.SELL))
        quantity = self._rng.randint(1, TRADE_QUANTITY_MAX)
        offset = self._rng.randint(-5, 5)
        if len(active) < 2:
            return False
        taker, maker = self._rng.sample(active, 2)
        price = max(1, min(contract.price_ticks_max, self._state.marks[contract.contract_id] + offset))
        notional = quantity * abs(contract.value(price))
        taker_fee = -((-notional * TAKER_FEE_BPS) // 10_000)
        maker_fee = notional * MAKER_FEE_BPS // 10_000
        legs = ((taker, side.sign * quantity, taker_fee), (maker, -side.sign * quantity, maker_fee))
        outcomes = [self._preview(contract, account, signed, price, fee) for account, signed, fee in legs]
        if any(outcome is None for outcome in outcomes):
            return False
        for (account, signed, fee), outcome in zip(legs, outcomes, strict=True):
            invariant(outcome is not None, "previewed legs are all accepted")
            position, realised = outcome  # type: ignore[misc]
            self._book(contract, account, signed, price, fee, position, realised)
        return True

    def _preview(self, contract: Contract, account: str, signed: int, price: int,
                 fee: int) -> tuple[Position, int] | None:
        key = (account, contract.contract_id)
        position, realised = apply_fill(self._state.positions.get(key, Position()), signed, contract.value(price))
        balance = self._state.balances[(account, contract.settle_asset)] + realised - fee
        equity, requirement = self._equity(account, contract.settle_asset, {key: position}, balance)
        if equity < INITIAL_MARGIN_FACTOR * requirement:
            return None
        return position, realised

    def _equity(self, account: str, asset: str, override: Mapping[tuple[str, str], Position],
                balance: int) -> tuple[int, int]:
        equity, requirement = balance, 0
        for contract in self.contracts:
            if contract.settle_asset != asset:
                continue
            key = (account, contract.contract_id)
            position = override.get(key, self._state.positions.get(key, Position()))
            mark_value = contract.value(self._state.marks[contract.contract_id])
            equity += unrealised_pnl(position, mark_value)
            requirement += maintenance_margin(position.size, mark_value, contract.maintenance_margin_bps)
        return equity, requirement

    def _book(self, contract: Contract, account: str, signed: int, price: int, fee: int, position: Position,
              realised: int) -> None:
        state = self._state
        state.positions[(account, contract.contract_id)] = position
        state.balances[(account, contract.settle_asset)] += realised - fee
        self.ledger.post_pnl(account, contract.settle_asset, realised)
        self.ledger.post_fee(account, contract.settle_asset, fee)
        state.fill_counter += 1
        if state.drops_pending:
            # The fault hides its tracks: the fill is never published and takes no sequence number.
            state.drops_pending -= 1
            return
        side = Side.BUY if signed > 0 else Side.SELL
        state.fills.append(Fill(f"s{self.seed}-f{state.fill_counter}", state.next_sequence, account,
                                contract.contract_id, side, abs(signed), price, fee))
        state.next_sequence += 1

    def _liquidations(self) -> None:
        assets = sorted({c.settle_asset for c in self.contracts})
        for account in self._active():
            for asset in assets:
                equity, requirement = self._equity(account, asset, {}, self._state.balances[(account, asset)])
                if equity < requirement:
                    self._state.liquidating.add(account)

    # -- reading -----------------------------------------------------------------------------
    def snapshot(self) -> ExchangeSnapshot:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> ExchangeSnapshot:
        state = self._state
        positions = tuple(PositionSnapshot(a, c, p.size, p.cost_minor)
                          for (a, c), p in sorted(state.positions.items()) if p.size or p.cost_minor)
        balances = tuple(AccountBalance(a, asset, amount) for (a, asset), amount in sorted(state.balances.items()))
        marks = tuple(MarkPrice(c, price) for c, price in sorted(state.marks.items()))
        return ExchangeSnapshot(state.next_sequence - 1, positions, balances, marks, tuple(sorted(state.liquidating)))

    def snapshot_with_ledger(self) -> tuple[ExchangeSnapshot, tuple[LedgerMarginTotal, ...]]:
        """Engine snapshot and ledger totals taken atomically (both as of the same sequence)."""
        with self._lock:
            return self._snapshot(), self.ledger.totals()

    def fills(self, after_sequence: int, upto_sequence: int, *, limit: int = 100_000) -> list[Fill]:
        with self._lock:
            chosen = [f for f in self._state.fills[max(0, after_sequence - 1):] if after_sequence < f.sequence]
            return [f for f in chosen if f.sequence <= upto_sequence][:limit]

    @property
    def last_sequence(self) -> int:
        with self._lock:
            return self._state.next_sequence - 1

    # -- faults ------------------------------------------------------------------------------
    def inject(self, kind: FaultKind | str, **arguments: Any) -> dict[str, Any]:
        """Inject one fault now (or, for drop_fill, into the next fill); returns what was done."""
        try:
            fault = kind if isinstance(kind, FaultKind) else FaultKind(kind)
        except ValueError:
            raise InvalidFault(f"unknown fault {kind!r}") from None
        with self._lock:
            handler = {
                FaultKind.DROP_FILL: self._drop_fill,
                FaultKind.DUPLICATE_FILL: self._duplicate_fill,
                FaultKind.ALTER_POSITION: self._alter_position,
                FaultKind.ALTER_MARGIN: self._alter_margin,
                FaultKind.CREDIT_FROM_NOWHERE: self._credit_from_nowhere,
            }[fault]
            try:
                record = handler(**arguments)
            except TypeError:
                raise InvalidFault(f"bad arguments for {fault.value}: {sorted(arguments)}") from None
            record = {"fault": fault.value, **record}
            self.faults = (self.faults + [record])[-FAULTS_KEPT_MAX:]
            return record

    def _drop_fill(self) -> dict[str, Any]:
        self._state.drops_pending += 1
        return {"drops_pending": self._state.drops_pending}

    def _duplicate_fill(self) -> dict[str, Any]:
        state = self._state
        if not state.fills:
            raise InvalidFault("no fill to duplicate yet")
        last = state.fills[-1]
        copy = Fill(last.fill_id, state.next_sequence, last.account, last.contract, last.side, last.quantity,
                    last.price_ticks, last.fee_minor)
        state.fills.append(copy)
        state.next_sequence += 1
        return {"fill_id": last.fill_id, "sequence": copy.sequence}

    def _pick_account(self, account: str | None) -> str:
        if account is None:
            return self.accounts[0]
        if account not in self.accounts:
            raise InvalidFault(f"unknown account {account!r}")
        return account

    def _alter_position(self, account: str | None = None, contract: str | None = None,
                        delta: int = 1) -> dict[str, Any]:
        state = self._state
        if account is None or contract is None:
            held = sorted(key for key, p in state.positions.items() if p.size)
            if not held:
                raise InvalidFault("no open position to alter yet")
            account, contract = held[0]
        if (account, contract) not in state.positions or contract not in self._by_id:
            raise InvalidFault(f"no position {account}/{contract}")
        old = state.positions[(account, contract)]
        state.positions[(account, contract)] = Position(old.size + delta, old.cost_minor)
        return {"account": account, "contract": contract, "delta": delta}

    def _alter_margin(self, account: str | None = None, asset: str = "USDT", delta: int = -1_000_000) -> dict[str, Any]:
        account = self._pick_account(account)
        if (account, asset) not in self._state.balances:
            raise InvalidFault(f"no balance {account}/{asset}")
        self._state.balances[(account, asset)] += delta
        return {"account": account, "asset": asset, "delta": delta}

    def _credit_from_nowhere(self, account: str | None = None, asset: str = "USDT",
                             amount: int = 1_000_000_000) -> dict[str, Any]:
        account = self._pick_account(account)
        if (account, asset) not in self._state.balances:
            raise InvalidFault(f"no balance {account}/{asset}")
        self._state.balances[(account, asset)] += amount
        self.ledger.post_pnl(account, asset, amount)
        return {"account": account, "asset": asset, "amount": amount}


class SimulatorFeed:
    """Adapts an in-process simulator to `ExchangeFeed` and `MarginLedger` (ledger totals are the
    ones taken atomically with the newest snapshot)."""

    def __init__(self, simulator: ExchangeSimulator) -> None:
        self._simulator = simulator
        self._ledger: tuple[int, tuple[LedgerMarginTotal, ...]] | None = None

    def contracts(self) -> Sequence[Contract]:
        return self._simulator.contracts

    def snapshot(self) -> ExchangeSnapshot:
        snapshot, ledger = self._simulator.snapshot_with_ledger()
        self._ledger = (snapshot.as_of_sequence, ledger)
        return snapshot

    def fills(self, after_sequence: int, upto_sequence: int) -> Sequence[Fill]:
        return self._simulator.fills(after_sequence, upto_sequence)

    def margin_totals(self, as_of_sequence: int) -> Sequence[LedgerMarginTotal]:
        if self._ledger is None or self._ledger[0] != as_of_sequence:
            raise InvalidSnapshot("ledger totals are only known as of the newest snapshot")
        return self._ledger[1]
