"""Reconciliation wired to its inputs and to the halt: the jobs the scheduler runs.

`PositionReconciler` pulls the engine's snapshot, the new fills and the ledger's margin totals,
ingests the fills strictly and runs the pure position check. `Reconciler` turns any failed
check (a mismatch, or engine data refused by the strict parsers) into a halt, counts checks
that could not run at all and halts after `errors_before_halt` of them in a row (a check that
cannot run is no check: fail closed), and records on-chain results for the console and the
proof of reserves. Chain adapters read holdings at one height, retrying if the tip moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.exchange.errors import ExchangeError, ExchangeUnavailable, InvalidSnapshot
from coffer.exchange.feed import ExchangeFeed, ExchangeSnapshot, LedgerMarginTotal, MarginLedger
from coffer.exchange.ingest import ContractBook, FillLog
from coffer.log import get_logger
from coffer.recon.errors import InvalidCheckInput, ReconError
from coffer.recon.halt import HaltSwitch
from coffer.recon.onchain import (
    CustodyScript,
    Holding,
    OnchainCheckInput,
    OnchainCheckResult,
    check_onchain,
)
from coffer.recon.positions import (
    PositionCheckInput,
    PositionCheckResult,
    PositionColumns,
    Replay,
    check_positions,
)
from coffer.recon.scheduler import Job, JobOutcome
from coffer.recon.tables import onchain_assets, onchain_lines, runs

__all__ = [
    "PositionReconciler", "Reconciler", "POSITIONS_JOB", "ONCHAIN_JOB", "FILL_PAGES_MAX",
    "bitcoin_holdings", "ethereum_holdings", "latest_onchain", "OnchainReport",
]

POSITIONS_JOB = "positions"
ONCHAIN_JOB = "onchain"
FILL_PAGES_MAX = 10_000
TIP_RETRIES_MAX = 5
_log = get_logger("coffer.recon.service")


class PositionReconciler:
    """Keeps the strictly ingested fill log and builds each check's input from the feeds."""

    def __init__(self, feed: ExchangeFeed, ledger: MarginLedger) -> None:
        self.feed = feed
        self.ledger = ledger
        self.book = ContractBook(feed.contracts())
        self.log = FillLog(self.book)
        # The replay of the first `_base_fills` fills, from the newest check that passed: later
        # checks replay only the fills after it (the log grows for ever; the work does not).
        self._base: Replay | None = None
        self._base_fills = 0
        self._collected_fills = 0

    def _catch_up(self, as_of: int) -> None:
        if as_of < self.log.last_sequence:
            raise InvalidSnapshot(f"engine went back to sequence {as_of} after {self.log.last_sequence}")
        for _ in range(FILL_PAGES_MAX):
            if self.log.last_sequence >= as_of:
                return
            page = self.feed.fills(self.log.last_sequence, as_of)
            if not page:
                raise InvalidSnapshot(f"engine reports sequence {as_of} but serves fills only to "
                                      f"{self.log.last_sequence}")
            self.log.ingest(page)
        raise InvalidSnapshot("too many fill pages in one check")

    def collect(self) -> PositionCheckInput:
        snapshot = self.feed.snapshot()
        self._catch_up(snapshot.as_of_sequence)
        totals = self.ledger.margin_totals(snapshot.as_of_sequence)
        return self._arrays(snapshot, totals)

    def _arrays(self, snapshot: ExchangeSnapshot, totals: Sequence[LedgerMarginTotal]) -> PositionCheckInput:
        book, log = self.book, self.log
        for name in ([p.account for p in snapshot.positions] + [b.account for b in snapshot.balances]
                     + [t.account for t in totals] + list(snapshot.liquidating)):
            log.add_account(name)
        shape = (len(log.accounts), len(book.assets))
        engine_balances = _cells(shape, book, log, ((b.account, b.asset, b.balance_minor) for b in snapshot.balances),
                                 "balance")
        ledger_balances = _cells(shape, book, log, ((t.account, t.asset, t.balance_minor) for t in totals), "ledger")
        ledger_pnl = _cells(shape, book, log, ((t.account, t.asset, t.pnl_minor) for t in totals), "ledger pnl")
        ledger_fees = _cells(shape, book, log, ((t.account, t.asset, t.fees_minor) for t in totals), "ledger fee")
        marks = np.zeros(len(book.contracts), dtype=np.int64)
        for mark in snapshot.marks:
            position = book.index.get(mark.contract)
            if position is None or marks[position]:
                raise InvalidSnapshot(f"mark for unknown or repeated contract {mark.contract!r}")
            marks[position] = mark.price_ticks
        if not marks.all():
            raise InvalidSnapshot("a configured contract has no mark price")
        liquidating = np.zeros(shape[0], dtype=bool)
        liquidating[[log.account_index[a] for a in snapshot.liquidating]] = True
        for p in snapshot.positions:
            book.get(p.contract)
        positions = PositionColumns(
            np.array([log.account_index[p.account] for p in snapshot.positions], dtype=np.int64),
            np.array([book.index[p.contract] for p in snapshot.positions], dtype=np.int64),
            np.array([p.size for p in snapshot.positions], dtype=np.int64),
            np.array([p.cost_minor for p in snapshot.positions], dtype=np.int64))
        self._collected_fills = len(log)
        return PositionCheckInput(book, tuple(log.accounts), log.columns(self._base_fills), positions, marks,
                                  engine_balances, ledger_balances, ledger_pnl, ledger_fees, liquidating,
                                  snapshot.as_of_sequence, self._base)

    def check(self) -> PositionCheckResult:
        """Collect and check; a check that passes becomes the base of the next one."""
        result = check_positions(self.collect())
        if result.ok and result.replay is not None:
            self._base, self._base_fills = result.replay, self._collected_fills
        return result


def _cells(shape: tuple[int, int], book: ContractBook, log: FillLog, rows: Iterable[tuple[str, str, int]],
           what: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    cells = np.zeros(shape, dtype=np.int64)
    seen: set[tuple[int, int]] = set()
    for account, asset, amount in rows:
        column = book.asset_index.get(asset)
        if column is None:
            raise InvalidSnapshot(f"{what}: asset {asset!r} settles no configured contract")
        key = (log.account_index[account], column)
        if key in seen:
            raise InvalidSnapshot(f"{what}: {account}/{asset} listed twice")
        seen.add(key)
        cells[key] = amount
    return cells


class Reconciler:
    """Runs the checks and halts on any failure; `jobs()` gives them to a Scheduler."""

    def __init__(self, switch: HaltSwitch, *, positions: PositionReconciler | None = None,
                 onchain: Callable[[], OnchainCheckInput] | None = None, engine: Engine | None = None,
                 errors_before_halt: int = 3, actor: str = "recon") -> None:
        if errors_before_halt < 1:
            raise ReconError("errors_before_halt must be at least 1")
        self.switch = switch
        self.positions = positions
        self.onchain = onchain
        self._engine = engine
        self._errors_before_halt = errors_before_halt
        self._errors: dict[str, int] = {}
        self._actor = actor
        self.last_positions: PositionCheckResult | None = None
        self.last_onchain: OnchainCheckResult | None = None

    def _failed_to_run(self, job: str, exc: Exception) -> None:
        count = self._errors.get(job, 0) + 1
        self._errors[job] = count
        _log.error("recon.check.unavailable", job=job, consecutive=count, error=type(exc).__name__)
        if count >= self._errors_before_halt:
            self.switch.trip("check_unavailable", {"job": job, "consecutive_failures": count,
                                                   "error": type(exc).__name__, "message": str(exc)[:500]},
                             actor=self._actor)

    def run_positions(self, run_id: int = 0) -> JobOutcome:
        """One position and margin check; a mismatch or refused engine data halts."""
        if self.positions is None:
            raise ReconError("no position source configured")
        try:
            result = self.positions.check()
        except ExchangeUnavailable as exc:
            self._failed_to_run(POSITIONS_JOB, exc)
            raise
        except (ExchangeError, InvalidCheckInput) as exc:
            self._errors[POSITIONS_JOB] = 0
            details = {"run_id": run_id, "error": type(exc).__name__, "message": str(exc)[:2000]}
            self.switch.trip("engine_data_refused", details, actor=self._actor)
            return JobOutcome("mismatch", details)
        except Exception as exc:
            self._failed_to_run(POSITIONS_JOB, exc)
            raise
        self._errors[POSITIONS_JOB] = 0
        self.last_positions = result
        summary = result.summary()
        if not result.ok:
            self.switch.trip("position_mismatch", {"run_id": run_id, **summary}, actor=self._actor)
            return JobOutcome("mismatch", summary)
        return JobOutcome("ok", summary)

    def run_onchain(self, run_id: int = 0) -> JobOutcome:
        """One on-chain check; results are stored under `run_id`; a mismatch halts."""
        if self.onchain is None:
            raise ReconError("no on-chain source configured")
        try:
            result = check_onchain(self.onchain())
        except Exception as exc:
            self._failed_to_run(ONCHAIN_JOB, exc)
            raise
        self._errors[ONCHAIN_JOB] = 0
        self.last_onchain = result
        if run_id and self._engine is not None:
            _store_onchain(self._engine, run_id, result)
        summary = result.summary()
        if not result.ok:
            self.switch.trip("onchain_mismatch", {"run_id": run_id,
                                                  "mismatches": summary["mismatches"]}, actor=self._actor)
            return JobOutcome("mismatch", summary)
        return JobOutcome("ok", summary)

    def jobs(self, *, positions_interval_s: float = 15.0, onchain_interval_s: float = 600.0) -> list[Job]:
        jobs = []
        if self.positions is not None:
            jobs.append(Job(POSITIONS_JOB, positions_interval_s, self.run_positions))
        if self.onchain is not None:
            jobs.append(Job(ONCHAIN_JOB, onchain_interval_s, self.run_onchain))
        return jobs


def _store_onchain(engine: Engine, run_id: int, result: OnchainCheckResult) -> None:
    with engine.begin() as conn:
        if result.wallets:
            conn.execute(onchain_lines.insert(), [
                {"run_id": run_id, "asset": w.asset, "wallet": w.wallet, "height": w.height, "scripts": w.scripts,
                 "ledger_custody": str(w.ledger_custody), "chain_holdings": str(w.chain_holdings),
                 "pending_deposits": str(w.pending_deposits), "inflight_withdrawals": str(w.inflight_withdrawals),
                 "difference": str(w.difference), "ok": w.ok} for w in result.wallets])
        if result.assets:
            conn.execute(onchain_assets.insert(), [
                {"run_id": run_id, "asset": a.asset, "client_liabilities": str(a.client_liabilities),
                 "chain_holdings": str(a.chain_holdings), "backing": str(a.backing), "ok": a.ok}
                for a in result.assets])


@dataclass(frozen=True, slots=True)
class OnchainReport:
    """The newest finished on-chain run with its lines (amounts as exact integers)."""

    run_id: int
    finished_at: str
    status: str
    wallets: tuple[Mapping[str, Any], ...]
    assets: tuple[Mapping[str, Any], ...]


def latest_onchain(engine: Engine) -> OnchainReport | None:
    """For the console and the proof of reserves: the newest on-chain run that stored results."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(runs).where((runs.c.job == ONCHAIN_JOB) & runs.c.finished_at.is_not(None)
                                                 & runs.c.id.in_(sa.select(onchain_lines.c.run_id)))
                           .order_by(runs.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        wallets = conn.execute(sa.select(onchain_lines).where(onchain_lines.c.run_id == row.id)
                               .order_by(onchain_lines.c.asset, onchain_lines.c.wallet)).all()
        assets = conn.execute(sa.select(onchain_assets).where(onchain_assets.c.run_id == row.id)
                              .order_by(onchain_assets.c.asset)).all()
    money = ("ledger_custody", "chain_holdings", "pending_deposits", "inflight_withdrawals", "difference",
             "client_liabilities", "backing")

    def as_dict(line: Any) -> Mapping[str, Any]:
        data = dict(line._mapping)
        return {k: (int(v) if k in money else v) for k, v in data.items() if k != "run_id"}

    return OnchainReport(int(row.id), row.finished_at, row.status, tuple(as_dict(w) for w in wallets),
                         tuple(as_dict(a) for a in assets))


def bitcoin_holdings(chain: Any, scripts: Sequence[CustodyScript]) -> tuple[int, list[Holding]]:
    """(height, one Holding per UTXO) on `scripts` (hex scriptPubKeys) from a coffer.chain
    BitcoinChain, read at one tip: if the tip moves during the scan, scan again."""
    wanted = [bytes.fromhex(s.script) for s in scripts]
    for _ in range(TIP_RETRIES_MAX):
        before = chain.tip()
        utxos = chain.unspent(wanted)
        after = chain.tip()
        if (before.height, before.hash) == (after.height, after.hash):
            return int(after.height), [Holding(u.script_pubkey.hex(), int(u.amount_sats)) for u in utxos]
    raise ReconError("the chain tip kept moving during the scan")


def ethereum_holdings(chain: Any, scripts: Sequence[CustodyScript]) -> tuple[int, list[Holding]]:
    """(block number, one Holding per address) from a coffer.chain EthereumChain at one block."""
    for _ in range(TIP_RETRIES_MAX):
        before = chain.block_number()
        holdings = [Holding(s.script, int(chain.balance_wei(s.script))) for s in scripts]
        if chain.block_number() == before:
            return int(before), holdings
    raise ReconError("the chain head kept moving during the scan")

