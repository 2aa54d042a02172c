"""Hypothesis over random sequences of transfers, on the pure core and on both databases:
every transfer balances, no client balance goes below zero, totals stay consistent, conflicting
withdrawals spend a balance once and replayed idempotency keys take effect once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coffer.ledger import (
    AccountKey,
    Book,
    IdempotencyConflict,
    InsufficientFunds,
    Kind,
    Ledger,
    Posting,
    RingFenceViolation,
    Side,
    Transfer,
    apply_transfers,
    check_transfer,
    credit,
    debit,
)
from tests.ledger.conftest import T0

HOT = AccountKey.custody("hot", "BTC")
COLD = AccountKey.custody("cold", "BTC")
FEES = AccountKey.company("fees", "BTC")
INSURANCE = AccountKey.company("insurance_fund", "BTC")
CLIENTS = 3
_examples = itertools.count()

client_index = st.integers(0, CLIENTS - 1)
amounts = st.integers(1, 200)
operations = st.one_of(
    st.tuples(st.sampled_from(["deposit", "hold", "release", "settle", "fee", "pnl", "insurance"]),
              client_index, amounts, client_index),
    st.tuples(st.just("replay"), st.integers(0, 40)),
    st.tuples(st.just("conflict"), st.integers(0, 40)),
    st.tuples(st.just("batch"), st.lists(st.tuples(client_index, amounts), min_size=2, max_size=4)),
)


@dataclass
class Model:
    """What the ledger must show: client balances, and each key sent with whether it took effect."""

    prefix: str
    balances: dict[AccountKey, int] = field(default_factory=dict)
    sent: list[tuple[Transfer, bool]] = field(default_factory=list)
    counter: itertools.count = field(default_factory=itertools.count)  # type: ignore[type-arg]

    def client(self, index: int) -> str:
        return f"{self.prefix}c{index}"

    def key(self) -> str:
        return f"{self.prefix}t{next(self.counter)}"

    def after(self, transfers: list[Transfer]) -> dict[AccountKey, int] | None:
        """Client balances after `transfers` in order, or None if one would go below zero."""
        result = dict(self.balances)
        for transfer in transfers:
            for posting in transfer.postings:
                if posting.account.book is Book.CLIENT:
                    sign = 1 if posting.side is Side.CREDIT else -1
                    result[posting.account] = result.get(posting.account, 0) + sign * posting.amount
            if any(value < 0 for value in result.values()):
                return None
        return result


def make_transfer(model: Model, operation: tuple[object, ...]) -> Transfer:
    name, index, amount, other = operation
    assert isinstance(index, int) and isinstance(amount, int) and isinstance(other, int)
    client_id = model.client(index)
    available, held = AccountKey.available(client_id, "BTC"), AccountKey.held(client_id, "BTC")
    postings: dict[str, tuple[Kind, tuple[Posting, ...]]] = {
        "deposit": (Kind.DEPOSIT, (debit(HOT, amount), credit(available, amount))),
        "hold": (Kind.WITHDRAWAL_HOLD, (debit(available, amount), credit(held, amount))),
        "release": (Kind.WITHDRAWAL_RELEASE, (debit(held, amount), credit(available, amount))),
        "settle": (Kind.WITHDRAWAL_SETTLE, (debit(held, amount), credit(HOT, amount))),
        "fee": (Kind.FEE, (debit(available, amount), credit(FEES, amount))),
        "pnl": (Kind.PNL, (debit(available, amount),
                           credit(AccountKey.available(model.client((index + 1 + other % (CLIENTS - 1)) % CLIENTS),
                                                       "BTC"), amount))),
        "insurance": (Kind.PNL, (debit(INSURANCE, amount), credit(available, amount))),
    }
    kind, legs = postings[str(name)]
    return Transfer(model.key(), kind, legs, T0, {"op": str(name)})


def apply_and_check(ledger: Ledger, model: Model, transfers: list[Transfer], replay: bool = False) -> None:
    expected = model.after(transfers)
    if expected is None:
        try:
            ledger.apply_many(transfers)
        except InsufficientFunds:
            event(f"refused overdraft ({len(transfers)} transfers)")
        else:
            raise AssertionError("an overdraft was applied")
        model.sent += [(t, False) for t in transfers]
        return
    results = ledger.apply_many(transfers)
    assert [replay] * len(transfers) == [r.replayed for r in results]
    model.balances = expected
    model.sent += [(t, True) for t in transfers]


def run_operation(ledger: Ledger, model: Model, operation: tuple[object, ...]) -> None:
    name = operation[0]
    if name == "replay" and model.sent:
        transfer, _ = model.sent[int(operation[1]) % len(model.sent)]  # type: ignore[call-overload]
        if any(ok and sent.idempotency_key == transfer.idempotency_key for sent, ok in model.sent):
            event("replayed a key")
            assert ledger.apply(transfer).replayed
        else:  # it was refused before, so this is a fresh attempt that may succeed now
            apply_and_check(ledger, model, [transfer])
    elif name == "conflict":
        applied = [t for t, ok in model.sent if ok]
        if applied:
            first = applied[int(operation[1]) % len(applied)]  # type: ignore[call-overload]
            changed = Transfer(first.idempotency_key, first.kind, first.postings, T0, {"op": "changed"})
            try:
                ledger.apply(changed)
            except IdempotencyConflict:
                event("refused a reused key")
            else:
                raise AssertionError("a reused key with new content was applied")
    elif name == "batch":  # conflicting withdrawals: several holds in one atomic batch
        holds = [make_transfer(model, ("hold", index, amount, 0)) for index, amount in operation[1]]  # type: ignore[attr-defined]
        apply_and_check(ledger, model, holds)
    elif name not in ("replay", "conflict"):
        apply_and_check(ledger, model, [make_transfer(model, operation)])


@pytest.mark.slow  # 200 sequences of database transactions per backend
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operations, min_size=1, max_size=14))
def test_random_sequences_keep_the_ledger_sound(ledger: Ledger, sequence: list[tuple[object, ...]]) -> None:
    """Random deposits, holds, releases, settlements, fees, PnL, conflicting batches and replays keep
    every transfer balanced, no client below zero and the totals consistent (SQLite and PostgreSQL)."""
    model = Model(prefix=f"x{next(_examples)}-")
    for index in range(CLIENTS):
        ledger.open_client(model.client(index), ["BTC"], at=T0)
        apply_and_check(ledger, model, [make_transfer(model, ("deposit", index, 300, 0))])
    for operation in sequence:
        run_operation(ledger, model, operation)
        # this example's clients only (one indexed query each): the database keeps every earlier example's accounts
        mine = {key: value for index in range(CLIENTS)
                for key, value in ledger.balances(book=Book.CLIENT, asset="BTC", client_id=model.client(index)).items()}
        assert {key: value for key, value in model.balances.items() if value} == \
            {key: value for key, value in mine.items() if value}
        assert all(value >= 0 for value in mine.values())
        assert ledger.totals()["BTC"].balanced
    report = ledger.check_consistency()
    assert all(totals.balanced for totals in report.totals.values())


accounts = st.sampled_from([HOT, COLD, FEES, INSURANCE, AccountKey.world("BTC"),
                            AccountKey.available("a", "BTC"), AccountKey.held("a", "BTC"),
                            AccountKey.available("b", "BTC")])


@st.composite
def balanced_transfers(draw: st.DrawFn) -> Transfer:
    """A random balanced transfer of an adjustment (any books but client to company) with a reason."""
    legs = draw(st.lists(st.tuples(accounts, st.integers(1, 10**6)), min_size=1, max_size=3))
    target = draw(accounts)
    postings = [debit(account, amount) for account, amount in legs]
    postings.append(credit(target, sum(amount for _, amount in legs)))
    return Transfer(f"k{draw(st.integers(0, 10**9))}", Kind.ADJUSTMENT, tuple(postings), T0, {}, "property")


@settings(max_examples=200, deadline=None)
@given(st.lists(balanced_transfers(), max_size=12))
def test_core_keeps_books_balanced_and_clients_non_negative(transfers: list[Transfer]) -> None:
    """In the pure core, any accepted sequence leaves custody = client + company + external and
    no client below zero; a refused one is refused whole."""
    balances: dict[AccountKey, int] = {}
    for transfer in transfers:
        try:
            check_transfer(transfer, {"BTC"})
            balances.update(apply_transfers(balances, [transfer]))
        except (InsufficientFunds, RingFenceViolation):  # refused whole: balances stay as they were
            pass
        totals = {book: sum(v for k, v in balances.items() if k.book is book) for book in Book}
        assert totals[Book.CUSTODY] == totals[Book.CLIENT] + totals[Book.COMPANY] + totals[Book.EXTERNAL]
        assert all(value >= 0 for key, value in balances.items() if key.book is Book.CLIENT)
