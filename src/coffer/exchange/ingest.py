"""Strict ingestion of the engine's fill log into columns the checker replays.

Fills must arrive in sequence order with no gap and no repeat; a fill id is never reused; every
field is in range for its contract. A batch is validated whole before any of it is kept, so a
refused batch changes nothing. Columns are kept as they arrive (array('q')), so the periodic
check reads them without converting millions of objects.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coffer.exchange.errors import (
    DuplicateFill,
    DuplicateSequence,
    InvalidContract,
    InvalidFill,
    SequenceGap,
    UnknownContract,
)
from coffer.exchange.model import Contract, Fill

__all__ = ["ContractBook", "FillColumns", "FillLog", "FILL_BATCH_MAX", "ACCOUNTS_MAX"]

FILL_BATCH_MAX = 1_000_000
ACCOUNTS_MAX = 10_000_000
FILLS_MAX = 1 << 32

Int64Array = npt.NDArray[np.int64]


class ContractBook:
    """The configured contracts, each with a dense index, and their settlement assets."""

    def __init__(self, contracts: Sequence[Contract]) -> None:
        if not contracts:
            raise InvalidContract("at least one contract must be configured")
        self.contracts: tuple[Contract, ...] = tuple(contracts)
        self.index: dict[str, int] = {}
        for position, contract in enumerate(self.contracts):
            if contract.contract_id in self.index:
                raise InvalidContract(f"contract {contract.contract_id!r} configured twice")
            self.index[contract.contract_id] = position
        self.assets: tuple[str, ...] = tuple(sorted({c.settle_asset for c in self.contracts}))
        self.asset_index = {asset: position for position, asset in enumerate(self.assets)}
        self._arrays = self._build_arrays()

    def get(self, contract_id: str) -> Contract:
        position = self.index.get(contract_id)
        if position is None:
            raise UnknownContract(contract_id)
        return self.contracts[position]

    def arrays(self) -> tuple[npt.NDArray[np.bool_], Int64Array, Int64Array, Int64Array]:
        """(is_inverse, multiplier, maintenance_margin_bps, settle asset index) per contract."""
        return self._arrays

    def _build_arrays(self) -> tuple[npt.NDArray[np.bool_], Int64Array, Int64Array, Int64Array]:
        inverse = np.array([c.kind.value == "inverse" for c in self.contracts], dtype=np.bool_)
        multiplier = np.array([c.multiplier for c in self.contracts], dtype=np.int64)
        bps = np.array([c.maintenance_margin_bps for c in self.contracts], dtype=np.int64)
        asset = np.array([self.asset_index[c.settle_asset] for c in self.contracts], dtype=np.int64)
        return inverse, multiplier, bps, asset


@dataclass(frozen=True, slots=True)
class FillColumns:
    """A fill log as columns, in sequence order: account and contract are dense indices."""

    account: Int64Array
    contract: Int64Array
    signed_quantity: Int64Array
    price_ticks: Int64Array
    fee_minor: Int64Array

    def __len__(self) -> int:
        return int(self.account.shape[0])


class FillLog:
    """Accepts fills strictly in sequence; keeps them as columns and remembers every fill id."""

    def __init__(self, book: ContractBook, *, next_sequence: int = 1) -> None:
        self.book = book
        self.next_sequence = next_sequence
        self.accounts: list[str] = []
        self.account_index: dict[str, int] = {}
        self._fill_ids: set[str] = set()
        self._account = array("q")
        self._contract = array("q")
        self._quantity = array("q")
        self._price = array("q")
        self._fee = array("q")

    def __len__(self) -> int:
        return len(self._account)

    @property
    def last_sequence(self) -> int:
        return self.next_sequence - 1

    def _validate(self, fills: Sequence[Fill]) -> None:
        expected = self.next_sequence
        batch_ids: set[str] = set()
        for fill in fills:
            if not isinstance(fill, Fill):
                raise InvalidFill("expected a Fill", field="fill")
            if fill.sequence > expected:
                raise SequenceGap(expected=expected, received=fill.sequence)
            if fill.sequence < expected:
                raise DuplicateSequence(expected=expected, received=fill.sequence)
            if fill.fill_id in self._fill_ids or fill.fill_id in batch_ids:
                raise DuplicateFill(fill.fill_id)
            contract = self.book.get(fill.contract)
            if fill.price_ticks > contract.price_ticks_max:
                raise InvalidFill(f"{fill.price_ticks} above {contract.price_ticks_max} for this contract",
                                  field="price_ticks", fill_id=fill.fill_id)
            batch_ids.add(fill.fill_id)
            expected += 1

    def ingest(self, fills: Iterable[Fill]) -> int:
        """Append `fills` (sequence next_sequence, next_sequence+1, ...); all or nothing."""
        batch = list(fills)
        if len(batch) > FILL_BATCH_MAX:
            raise InvalidFill(f"batch of {len(batch)} fills above {FILL_BATCH_MAX}", field="batch")
        if len(self._account) + len(batch) > FILLS_MAX:
            raise InvalidFill("fill log full", field="batch")
        self._validate(batch)
        new_accounts = {f.account for f in batch if f.account not in self.account_index}
        if len(self.accounts) + len(new_accounts) > ACCOUNTS_MAX:
            raise InvalidFill(f"more than {ACCOUNTS_MAX} accounts", field="account")
        for fill in batch:
            account = self.account_index.get(fill.account)
            if account is None:
                account = self.add_account(fill.account)
            self._fill_ids.add(fill.fill_id)
            self._account.append(account)
            self._contract.append(self.book.index[fill.contract])
            self._quantity.append(fill.signed_quantity)
            self._price.append(fill.price_ticks)
            self._fee.append(fill.fee_minor)
        self.next_sequence += len(batch)
        return len(batch)

    def add_account(self, account: str) -> int:
        """The dense index of `account`, created if new (accounts with balances but no fills)."""
        existing = self.account_index.get(account)
        if existing is not None:
            return existing
        self.account_index[account] = len(self.accounts)
        self.accounts.append(account)
        return len(self.accounts) - 1

    def columns(self, start: int = 0) -> FillColumns:
        """The log from its `start`-th fill on, as numpy columns (copies: later ingests do not
        change them)."""
        if not 0 <= start <= len(self._account):
            raise InvalidFill(f"start {start} outside 0..{len(self._account)}", field="start")

        def column(values: array[int]) -> Int64Array:
            if len(values) == start:
                return np.zeros(0, np.int64)
            return np.frombuffer(values, dtype=np.int64)[start:].copy()

        return FillColumns(column(self._account), column(self._contract), column(self._quantity),
                           column(self._price), column(self._fee))
