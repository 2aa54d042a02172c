"""Benchmark of reconciliation's two checks, each beside a naive pure-Python baseline.

(a) position and margin check (replay of the fill log + engine comparison + zero-sum open
    interest + realised PnL and fees against the ledger + equity against maintenance margin) over
    1,000,000 positions of 100,000 accounts in 10 contracts (2,000,000 fills).     target <= 1 s
    The engine's positions and the ledger's totals are built first by plain Python, fill by fill
    (`coffer.exchange.accounting`), so the checker is measured against an independent engine.
    The fill log is timed as columns, which is how `FillLog` keeps it as fills arrive.
    Baseline: `coffer.recon.reference` (plain Python loops) on 1/20 of the size, scaled by 20.
(b) on-chain check over 100,000 custody scripts and 1,000,000 UTXOs, from typed `Holding`
    values to the verdict (script lookup included).                               target <= 10 s
    Baseline: a plain-Python loop of dict sums on the full size.
Last line: positions_check_s=<A> onchain_check_s=<B>
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time

import numpy as np

from coffer.exchange import Contract, ContractBook, ContractKind, FillColumns, Position, apply_fill
from coffer.recon import (
    CustodyScript,
    Holding,
    OnchainCheckInput,
    PositionCheckInput,
    PositionColumns,
    check_onchain,
    check_positions,
    holding_columns,
    replay_fills,
)
from coffer.recon.reference import reference_counts
from verdict import at_most, verdict

CONTRACTS = 10

TARGET_POSITIONS_S = at_most("recon positions and margin check of 1,000,000 positions <= 1 s", 1.0)  # issue 9
TARGET_ONCHAIN_S = at_most("recon on-chain check of 100,000 scripts and 1,000,000 UTXOs <= 10 s", 10.0)  # issue 9


def book() -> ContractBook:
    return ContractBook([
        Contract(f"C{i}", ContractKind.LINEAR if i % 2 == 0 else ContractKind.INVERSE,
                 "USDT" if i % 2 == 0 else "BTC", 100 if i % 2 == 0 else 200_000_000, 50 + 10 * i)
        for i in range(CONTRACTS)])


def fills(accounts: int, random_trades: int, seed: int) -> FillColumns:
    """Every account trades every contract once (pairs 2k, 2k+1), then random pairs trade."""
    rng = np.random.default_rng(seed)
    pairs = accounts // 2
    first = np.tile(np.arange(pairs) * 2, CONTRACTS)
    contract = np.concatenate([np.repeat(np.arange(CONTRACTS), pairs), rng.integers(0, CONTRACTS, random_trades)])
    taker = np.concatenate([first, rng.integers(0, accounts, random_trades)])
    maker = np.concatenate([first + 1, (taker[len(first):] + rng.integers(1, accounts, random_trades)) % accounts])
    trades = len(taker)
    quantity = rng.integers(1, 100, trades) * rng.choice([-1, 1], trades)
    price = rng.integers(990_000, 1_010_000, trades)
    fee = np.abs(quantity) * 3
    def legs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(2 * trades, dtype=np.int64)
        out[0::2], out[1::2] = a, b
        return out
    return FillColumns(legs(taker, maker), legs(contract, contract), legs(quantity, -quantity), legs(price, price),
                       legs(fee, fee))


def engine_and_ledger(book: ContractBook, accounts: int, columns: FillColumns) -> PositionCheckInput:
    """The 'engine': plain Python, fill by fill; it also books PnL and fees into a ledger."""
    assets = len(book.assets)
    positions: dict[tuple[int, int], Position] = {}
    pnl = [[0] * assets for _ in range(accounts)]
    fees = [[0] * assets for _ in range(accounts)]
    values = [c.value for c in book.contracts]
    settle = [book.asset_index[c.settle_asset] for c in book.contracts]
    for account, contract, quantity, price, fee in zip(columns.account.tolist(), columns.contract.tolist(),
                                                       columns.signed_quantity.tolist(), columns.price_ticks.tolist(),
                                                       columns.fee_minor.tolist(), strict=True):
        key = (account, contract)
        positions[key], gain = apply_fill(positions.get(key, Position()), quantity, values[contract](price))
        pnl[account][settle[contract]] += gain
        fees[account][settle[contract]] += fee
    keys = list(positions)
    engine = PositionColumns(np.array([k[0] for k in keys], dtype=np.int64), np.array([k[1] for k in keys], dtype=np.int64),
                             np.array([positions[k].size for k in keys], dtype=np.int64),
                             np.array([positions[k].cost_minor for k in keys], dtype=np.int64))
    pnl_array, fee_array = np.array(pnl, dtype=np.int64), np.array(fees, dtype=np.int64)
    balances = np.full((accounts, assets), 10**13, dtype=np.int64) + pnl_array - fee_array
    marks = np.full(CONTRACTS, 1_000_000, dtype=np.int64)
    return PositionCheckInput(book, [f"acct-{i}" for i in range(accounts)], columns, engine, marks, balances,
                              balances.copy(), pnl_array, fee_array, np.zeros(accounts, dtype=bool))


BEST: dict[int, float] = {}


def timed(function, repeat: int):  # type: ignore[no-untyped-def]
    """(result, median seconds); the best run is kept in BEST for the report."""
    results, seconds = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        results = function()
        seconds.append(time.perf_counter() - start)
    BEST[id(function)] = min(seconds)
    return results, statistics.median(seconds)


def bench_positions(accounts: int, repeat: int) -> float:
    spec = book()
    columns = fills(accounts, random_trades=accounts * CONTRACTS // 2, seed=1)
    setup = time.perf_counter()
    data = engine_and_ledger(spec, accounts, columns)
    print(f"(a) engine built in plain Python in {time.perf_counter() - setup:.1f}s (not timed)")
    check = lambda: check_positions(data)  # noqa: E731
    result, seconds = timed(check, repeat)
    assert result.ok and result.positions == accounts * CONTRACTS, result.summary()
    print(f"(a) positions check: {result.positions:,} positions, {len(data.accounts):,} accounts, "
          f"{result.fills:,} fills: {seconds:.3f}s median of {repeat} (best {BEST[id(check)]:.3f}s; "
          f"target <= 1 s)")
    cut = len(columns) - len(columns) // 20
    head = FillColumns(*(getattr(columns, f)[:cut] for f in ("account", "contract", "signed_quantity",
                                                              "price_ticks", "fee_minor")))
    tail = FillColumns(*(getattr(columns, f)[cut:] for f in ("account", "contract", "signed_quantity",
                                                              "price_ticks", "fee_minor")))
    steady = dataclasses.replace(data, fills=tail, base=replay_fills(spec, head))
    steady_check = lambda: check_positions(steady)  # noqa: E731
    steady_result, steady_s = timed(steady_check, repeat)
    assert steady_result.ok
    print(f"(a) steady state (coordinator keeps the last passing replay as base): {len(tail):,} new fills on "
          f"{result.positions:,} positions: {steady_s:.3f}s median (best {BEST[id(steady_check)]:.3f}s)")
    small_accounts = accounts // 20
    small_columns = fills(small_accounts, random_trades=small_accounts * CONTRACTS // 2, seed=2)
    small = engine_and_ledger(spec, small_accounts, small_columns)
    counts, naive = timed(lambda: reference_counts(small), 1)
    assert counts == {}, counts
    fast_small, fast_small_s = timed(lambda: check_positions(small), repeat)
    print(f"(a) naive pure-Python baseline on 1/20 size ({small_accounts * CONTRACTS:,} positions): {naive:.3f}s, "
          f"scaled x20 = {naive * 20:.2f}s; numpy at that size {fast_small_s:.3f}s; "
          f"speed-up at full size vs scaled baseline: {naive * 20 / seconds:.0f}x")
    return seconds


def onchain_data(scripts: int, utxos: int, seed: int) -> tuple[list[CustodyScript], list[Holding], dict, dict]:
    rng = np.random.default_rng(seed)
    custody = [CustodyScript("BTC", "cold" if i % 5 else "hot", f"0020{i:060x}") for i in range(scripts)]
    owner = rng.integers(0, scripts, utxos).tolist()
    amounts = rng.integers(546, 10**8, utxos).tolist()
    holdings = [Holding(custody[o].script, a) for o, a in zip(owner, amounts, strict=True)]
    ledger: dict[tuple[str, str], int] = {}
    for o, a in zip(owner, amounts, strict=True):
        key = (custody[o].asset, custody[o].wallet)
        ledger[key] = ledger.get(key, 0) + a
    return custody, holdings, ledger, {"BTC": sum(ledger.values()) // 2}


def naive_onchain(custody: list[CustodyScript], holdings: list[Holding], ledger: dict, liabilities: dict) -> bool:
    wallet_of = {s.script: (s.asset, s.wallet) for s in custody}
    chain: dict[tuple[str, str], int] = {}
    for holding in holdings:
        key = wallet_of[holding.script]
        chain[key] = chain.get(key, 0) + holding.amount
    per_asset: dict[str, int] = {}
    for (asset, _), amount in chain.items():
        per_asset[asset] = per_asset.get(asset, 0) + amount
    return chain == ledger and all(liabilities[a] <= per_asset.get(a, 0) for a in liabilities)


def bench_onchain(scripts: int, utxos: int, repeat: int) -> float:
    custody, holdings, ledger, liabilities = onchain_data(scripts, utxos, seed=3)

    def run() -> bool:
        data = OnchainCheckInput({"BTC": 800_000}, custody, holding_columns(custody, holdings), ledger, liabilities)
        return check_onchain(data).ok

    ok, seconds = timed(run, repeat)
    best = BEST[id(run)]
    assert ok
    naive_ok, naive = timed(lambda: naive_onchain(custody, holdings, ledger, liabilities), 1)
    assert naive_ok
    print(f"(b) on-chain check: {scripts:,} custody scripts, {utxos:,} UTXOs (typed Holding values to verdict): "
          f"{seconds:.3f}s median of {repeat} (best {best:.3f}s; target <= 10 s)")
    print(f"(b) naive pure-Python baseline (dict sums) on the full size, not scaled: {naive:.3f}s")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--scripts", type=int, default=100_000)
    parser.add_argument("--utxos", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at start "
          "(other processes share these cores; timings grow with the load)")
    positions_s = bench_positions(arguments.accounts, arguments.repeat)
    onchain_s = bench_onchain(arguments.scripts, arguments.utxos, arguments.repeat)
    code = verdict([(TARGET_POSITIONS_S, positions_s), (TARGET_ONCHAIN_S, onchain_s)])
    print(f"positions_check_s={positions_s:.3f} onchain_check_s={onchain_s:.3f}")

    return code


if __name__ == "__main__":
    sys.exit(main())
