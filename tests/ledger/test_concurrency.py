"""Concurrent writers on separate connections (threads) and separate processes: each unit of a
balance is spent once, and an idempotency key takes effect once."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, InsufficientFunds, Kind, Ledger, Transfer, credit, debit
from tests.ledger.conftest import T0

ALICE = AccountKey.available("alice", "BTC")
ALICE_HELD = AccountKey.held("alice", "BTC")
HOT = AccountKey.custody("hot", "BTC")


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _hold(key: str, amount: int) -> Transfer:
    return Transfer(key, Kind.WITHDRAWAL_HOLD, (debit(ALICE, amount), credit(ALICE_HELD, amount)), T0)


def _race(workers: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` on `workers` threads released together; return each result or exception."""
    barrier = threading.Barrier(workers)
    results: list[object] = [None] * workers

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_writers_spending_the_same_balance_exactly_one_succeeds(ledger: Ledger, engine: Engine) -> None:
    """Two connections holding 70 of a 100 balance at once: one succeeds, one gets InsufficientFunds."""
    url = _url(engine)
    for round_number in range(4):
        ledger.apply(Transfer(f"dep-{round_number}", Kind.DEPOSIT, (debit(HOT, 100), credit(ALICE, 100)), T0))
        ledgers = [Ledger(make_engine(url)) for _ in range(2)]
        try:
            results = _race(2, lambda i, r=round_number: ledgers[i].apply(_hold(f"h-{r}-{i}", 70)))
        finally:
            for each in ledgers:
                each._engine.dispose()
        assert 1 == sum(not isinstance(result, Exception) for result in results), results
        assert 1 == sum(isinstance(result, InsufficientFunds) for result in results), results
        release = Transfer(f"rel-{round_number}", Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 70), credit(HOT, 70)), T0)
        ledger.apply(release)
        ledger.apply(Transfer(f"fee-{round_number}", Kind.WITHDRAWAL_HOLD, (debit(ALICE, 30), credit(ALICE_HELD, 30)), T0))
        ledger.apply(Transfer(f"set-{round_number}", Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 30), credit(HOT, 30)), T0))
        assert (0, 0) == (ledger.balance(ALICE), ledger.balance(ALICE_HELD))
    ledger.check_consistency()


def test_many_writers_never_overspend(ledger: Ledger, engine: Engine) -> None:
    """Four connections each trying ten holds of 10 against a balance of 100: exactly ten succeed."""
    ledger.apply(Transfer("dep", Kind.DEPOSIT, (debit(HOT, 100), credit(ALICE, 100)), T0))
    url = _url(engine)
    ledgers = [Ledger(make_engine(url)) for _ in range(4)]

    def work(index: int) -> int:
        applied = 0
        for attempt in range(10):
            try:
                ledgers[index].apply(_hold(f"h-{index}-{attempt}", 10))
                applied += 1
            except InsufficientFunds:
                pass
        return applied

    try:
        results = _race(4, work)
    finally:
        for each in ledgers:
            each._engine.dispose()
    assert 10 == sum(result for result in results if isinstance(result, int)), results
    assert (0, 100) == (ledger.balance(ALICE), ledger.balance(ALICE_HELD))
    ledger.check_consistency()


def test_same_key_from_many_writers_takes_effect_once(ledger: Ledger, engine: Engine) -> None:
    """Four connections sending the same transfer at once all get one and the same stored transfer."""
    url = _url(engine)
    ledgers = [Ledger(make_engine(url)) for _ in range(4)]
    same = Transfer("dep-once", Kind.DEPOSIT, (debit(HOT, 100), credit(ALICE, 100)), T0)
    try:
        results = _race(4, lambda i: ledgers[i].apply(same))
    finally:
        for each in ledgers:
            each._engine.dispose()
    ids = {getattr(result, "transfer_id", result) for result in results}
    assert 1 == len(ids), results
    assert 1 == sum(not getattr(result, "replayed", True) for result in results)
    assert 100 == ledger.balance(ALICE)


def _spend_in_process(url: str, index: int, attempts: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = Ledger(make_engine(url))
    applied = 0
    for attempt in range(attempts):
        try:
            ledger.apply(_hold(f"p-{index}-{attempt}", 10))
            applied += 1
        except InsufficientFunds:
            pass
    queue.put(applied)


def test_two_processes_spending_the_same_balance(pg_url: str) -> None:
    """Two OS processes each trying ten holds of 10 against 100 on PostgreSQL: exactly ten succeed."""
    engine = make_engine(pg_url)
    migrate(engine)
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=T0)
    ledger.open_client("alice", ["BTC"], at=T0)
    ledger.apply(Transfer("dep", Kind.DEPOSIT, (debit(HOT, 100), credit(ALICE, 100)), T0))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_spend_in_process, args=(_url(engine), i, 10, queue)) for i in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [0, 0] == [process.exitcode for process in processes]
    assert 10 == queue.get(timeout=5) + queue.get(timeout=5)
    assert (0, 100) == (ledger.balance(ALICE), ledger.balance(ALICE_HELD))
    ledger.check_consistency()
    engine.dispose()
