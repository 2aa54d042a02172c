"""The ledger in the database, on SQLite and on PostgreSQL: applying, idempotency, queries, checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.ledger import (
    AccountKey,
    AccountNumberTaken,
    Book,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAccountKey,
    InvalidAmount,
    InvalidTransfer,
    Kind,
    Ledger,
    LedgerInconsistent,
    MixedAssets,
    Posting,
    RingFenceViolation,
    Side,
    Transfer,
    UnbalancedTransfer,
    UnknownAccount,
    UnknownAsset,
    credit,
    debit,
)
from coffer.ledger.core import balance_delta
from tests.ledger.conftest import T0

HOT = AccountKey.custody("hot", "BTC")
COLD = AccountKey.custody("cold", "BTC")
ALICE = AccountKey.available("alice", "BTC")
ALICE_HELD = AccountKey.held("alice", "BTC")
BOB = AccountKey.available("bob", "BTC")
FEES = AccountKey.company("fees", "BTC")
TABLES = ("ledger_transfers", "ledger_postings", "audit_events")


def deposit(key: str, account: AccountKey, amount: int, custody: AccountKey = HOT) -> Transfer:
    return Transfer(key, Kind.DEPOSIT, (debit(custody, amount), credit(account, amount)), T0, {"txid": key})


def hold(key: str, client_id: str, amount: int, asset: str = "BTC") -> Transfer:
    return Transfer(key, Kind.WITHDRAWAL_HOLD, (debit(AccountKey.available(client_id, asset), amount),
                                                credit(AccountKey.held(client_id, asset), amount)), T0)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in TABLES}


def balances(ledger: Ledger) -> dict[AccountKey, int]:
    return ledger.balances()


def test_deposit_hold_settle_moves_balances(ledger: Ledger) -> None:
    """A deposit, a hold and a settlement move client and custody balances as expected."""
    ledger.apply(deposit("d1", ALICE, 100_000))
    ledger.apply(hold("h1", "alice", 30_000))
    ledger.apply(Transfer("s1", Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 30_000), credit(HOT, 30_000)), T0))
    assert (70_000, 0, 70_000) == (ledger.balance(ALICE), ledger.balance(ALICE_HELD), ledger.balance(HOT))
    totals = ledger.totals()["BTC"]
    assert (70_000, 70_000, True) == (totals.client, totals.custody, totals.balanced)


def test_applied_transfer_reports_what_was_stored(ledger: Ledger) -> None:
    """apply returns the stored transfer (id, digest, postings, metadata); reading it back agrees."""
    result = ledger.apply(deposit("d1", ALICE, 5))
    assert (False, "d1", Kind.DEPOSIT, "BTC") == (result.replayed, result.idempotency_key, result.kind, result.asset)
    stored = ledger.transfer("d1")
    assert stored is not None
    assert (result.transfer_id, result.digest, result.postings, dict(result.metadata), result.at) == (
        stored.transfer_id, stored.digest, stored.postings, dict(stored.metadata), stored.at)


def test_replay_returns_first_result_and_writes_nothing(ledger: Ledger, engine: Engine) -> None:
    """The same key with the same content returns the first result, even at a later time."""
    first = ledger.apply(deposit("d1", ALICE, 5))
    before = counts(engine)
    again = Transfer("d1", Kind.DEPOSIT, (debit(HOT, 5), credit(ALICE, 5)), T0 + timedelta(hours=1), {"txid": "d1"})
    replay = ledger.apply(again)
    assert (first.transfer_id, first.digest, True) == (replay.transfer_id, replay.digest, replay.replayed)
    assert before == counts(engine)
    assert 5 == ledger.balance(ALICE)


def test_replayed_large_batch_returns_first_results(ledger: Ledger, engine: Engine) -> None:
    """A batch as large as a cold settlement (OPTIMISTIC_BATCH_MIN transfers and more, which skip
    the key lookup on PostgreSQL), replayed after it emptied the holds, returns its first results
    and writes nothing, instead of a refusal for funds it already moved."""
    from coffer.ledger.store import OPTIMISTIC_BATCH_MIN

    ledger.apply(deposit("d1", ALICE, 10 * OPTIMISTIC_BATCH_MIN))
    ledger.apply(hold("h1", "alice", 10 * OPTIMISTIC_BATCH_MIN))
    settles = [Transfer(f"s{n}", Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 10), credit(HOT, 10)), T0)
               for n in range(OPTIMISTIC_BATCH_MIN)]
    first = ledger.apply_many(settles)
    before = counts(engine)
    again = ledger.apply_many(settles)
    assert [a.transfer_id for a in first] == [r.transfer_id for r in again]
    assert all(r.replayed for r in again)
    assert before == counts(engine)


def test_reused_key_with_new_content_is_refused(ledger: Ledger, engine: Engine) -> None:
    """The same key with different content raises IdempotencyConflict and writes nothing."""
    ledger.apply(deposit("d1", ALICE, 5))
    before, state = counts(engine), balances(ledger)
    with pytest.raises(IdempotencyConflict) as info:
        ledger.apply(deposit("d1", ALICE, 6))
    assert "d1" == info.value.idempotency_key
    assert (before, state) == (counts(engine), balances(ledger))


def _refused(ledger: Ledger, engine: Engine, error: type[Exception], make: Callable[[], Transfer]) -> None:
    before, state = counts(engine), balances(ledger)
    with pytest.raises(error):
        ledger.apply(make())
    assert (before, state) == (counts(engine), balances(ledger))


def test_unbalanced_postings_write_nothing(ledger: Ledger, engine: Engine) -> None:
    """Unbalanced postings raise UnbalancedTransfer; no row is written."""
    _refused(ledger, engine, UnbalancedTransfer,
             lambda: Transfer("u", Kind.DEPOSIT, (debit(HOT, 5), credit(ALICE, 4)), T0))


def test_unknown_account_writes_nothing(ledger: Ledger, engine: Engine) -> None:
    """A posting to an account never opened raises UnknownAccount; no row is written."""
    _refused(ledger, engine, UnknownAccount, lambda: deposit("u", AccountKey.available("carol", "BTC"), 5))


def test_unknown_asset_writes_nothing(ledger: Ledger, engine: Engine) -> None:
    """An asset the ledger is not configured for raises UnknownAsset; no row is written."""
    _refused(ledger, engine, UnknownAsset,
             lambda: deposit("u", AccountKey.available("alice", "DOGE"), 5, AccountKey.custody("hot", "DOGE")))


@pytest.mark.parametrize("amount", [0, -5, 2**63, 2**64 + 1])
def test_bad_amounts_write_nothing(ledger: Ledger, engine: Engine, amount: int) -> None:
    """Zero, negative and beyond-64-bit amounts raise InvalidAmount; no row is written."""
    _refused(ledger, engine, InvalidAmount, lambda: deposit("u", ALICE, amount))


def test_mixed_assets_write_nothing(ledger: Ledger, engine: Engine) -> None:
    """Postings in two assets raise MixedAssets; no row is written."""
    _refused(ledger, engine, MixedAssets, lambda: Transfer(
        "u", Kind.DEPOSIT, (debit(HOT, 5), credit(AccountKey.available("alice", "ETH"), 5)), T0))


def test_forbidden_client_to_company_kind_writes_nothing(ledger: Ledger, engine: Engine) -> None:
    """Moving client value to a company account by a settle raises RingFenceViolation; nothing written."""
    ledger.apply(deposit("d1", ALICE, 50))
    ledger.apply(hold("h1", "alice", 50))
    _refused(ledger, engine, RingFenceViolation, lambda: Transfer(
        "u", Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 50), credit(FEES, 50)), T0))


def test_adjustment_without_reason_writes_nothing(ledger: Ledger, engine: Engine) -> None:
    """An adjustment without a reason is refused; with one it applies and its audit event carries it."""
    make = lambda reason: Transfer("adj", Kind.ADJUSTMENT,  # noqa: E731
                                   (debit(AccountKey.world("BTC"), 9), credit(HOT, 9)), T0, reason=reason)
    _refused(ledger, engine, RingFenceViolation, lambda: make(""))
    ledger.apply(make("dust lost in a reorg"))
    event = AuditLog(engine).events(event="ledger.transfer_applied")[-1]
    assert ("adjustment", "dust lost in a reorg") == (event.payload["kind"], event.payload["reason"])


def test_overdraft_writes_nothing(ledger: Ledger, engine: Engine) -> None:
    """A hold beyond the available balance raises InsufficientFunds; no row is written."""
    ledger.apply(deposit("d1", ALICE, 10))
    _refused(ledger, engine, InsufficientFunds, lambda: hold("h1", "alice", 11))


def test_batch_is_atomic(ledger: Ledger, engine: Engine) -> None:
    """If one transfer in a batch is refused, none of the batch is written; the error names its index."""
    ledger.apply(deposit("d1", ALICE, 100))
    before, state = counts(engine), balances(ledger)
    with pytest.raises(InsufficientFunds) as info:
        ledger.apply_many([hold("h1", "alice", 60), deposit("d2", BOB, 5), hold("h2", "alice", 60)])
    assert 2 == info.value.index
    assert (before, state) == (counts(engine), balances(ledger))


def test_batch_with_replays_and_conflicts(ledger: Ledger, engine: Engine) -> None:
    """A batch may repeat a key with the same content (one write); a different content fails it whole."""
    ledger.apply(deposit("d1", ALICE, 100))
    results = ledger.apply_many([deposit("d1", ALICE, 100), hold("h1", "alice", 10), hold("h1", "alice", 10)])
    assert [True, False, True] == [r.replayed for r in results]
    assert results[1].transfer_id == results[2].transfer_id
    assert 90 == ledger.balance(ALICE)
    before = counts(engine)
    with pytest.raises(IdempotencyConflict):
        ledger.apply_many([hold("h2", "alice", 10), hold("h2", "alice", 11)])
    assert before == counts(engine)


def test_apply_batches_commits_each_batch(ledger: Ledger) -> None:
    """apply_batches commits batches in order and stops at the first refused one."""
    batches = [[deposit(f"d{i}", ALICE, 10) for i in range(5)], [hold("h1", "alice", 50)],
               [hold("h2", "alice", 1)], [deposit("late", ALICE, 10)]]
    applied = []
    with pytest.raises(InsufficientFunds):
        for results in ledger.apply_batches(batches):
            applied.append(len(results))
    assert [5, 1] == applied
    assert (0, 50) == (ledger.balance(ALICE), ledger.balance(ALICE_HELD))
    assert ledger.transfer("late") is None


def test_every_transfer_is_audited_in_its_transaction(ledger: Ledger, engine: Engine) -> None:
    """A single transfer is one audit event; a batch is one event naming every transfer; the chain verifies."""
    audit = AuditLog(engine)
    single = ledger.apply(deposit("d1", ALICE, 100))
    batch = ledger.apply_many([hold(f"h{i}", "alice", 1) for i in range(3)])
    (event,) = audit.events(event="ledger.transfer_applied")
    assert (single.transfer_id, single.digest) == (event.payload["transfer_id"], event.payload["digest"])
    (batch_event,) = audit.events(event="ledger.transfers_applied")
    ids = [r.transfer_id for r in batch]
    assert (3, [[ids[0], ids[-1]]]) == (batch_event.payload["count"], batch_event.payload["id_ranges"])
    assert audit.verify_chain() == len(audit.events())


def test_statement_lists_postings_with_running_balances(ledger: Ledger) -> None:
    """A client's statement shows each posting with the balance after it, and the current balances."""
    ledger.apply(deposit("d1", ALICE, 100))
    ledger.apply(hold("h1", "alice", 40))
    ledger.apply(Transfer("f1", Kind.FEE, (debit(ALICE_HELD, 1), credit(FEES, 1)), T0))
    statement = ledger.statement("alice", "BTC")
    assert (60, 39) == (statement.available, statement.held)
    assert [("available", 100, 100), ("available", -40, 60), ("held", 40, 40), ("held", -1, 39)] == [
        (line.account, line.delta, line.balance_after) for line in statement.lines]
    assert ledger.client("alice").account_number == statement.account_number


def test_totals_per_book(ledger: Ledger) -> None:
    """Totals give client, company, custody and external sums per asset, and they balance."""
    ledger.apply(deposit("d1", ALICE, 100))
    ledger.apply(Transfer("f1", Kind.FEE, (debit(ALICE, 3), credit(FEES, 3)), T0))
    ledger.apply(Transfer("r1", Kind.SWEEP, (debit(COLD, 50), credit(HOT, 50)), T0))
    btc = ledger.totals()["BTC"]
    assert (97, 3, 100, 0, True) == (btc.client, btc.company, btc.custody, btc.external, btc.balanced)
    assert {COLD: 50, HOT: 50} == ledger.balances(book=Book.CUSTODY, asset="BTC")


def test_wide_balances_beyond_64_bits(ledger: Ledger) -> None:
    """ETH balances in wei may sum past 2**63 and past 2**64; they are stored exactly."""
    eth_hot, eth_alice = AccountKey.custody("hot", "ETH"), AccountKey.available("alice", "ETH")
    amount = 2**63 - 1
    ledger.apply_many([deposit(f"e{i}", eth_alice, amount, eth_hot) for i in range(5)])
    assert 5 * amount == ledger.balance(eth_alice)
    liabilities = {item.client_id: item.total for item in ledger.client_liabilities("ETH")}
    assert {"alice": 5 * amount, "bob": 0} == liabilities
    ledger.check_consistency()


def test_client_accounts_have_unique_63_bit_numbers(ledger: Ledger) -> None:
    """Each client has a positive 64-bit (63-bit signed-safe) account number; reopening keeps it."""
    alice, bob = ledger.client("alice"), ledger.client("bob")
    assert alice.account_number != bob.account_number
    assert all(0 < number < 2**63 for number in (alice.account_number, bob.account_number))
    assert alice == ledger.open_client("alice", ["BTC"], at=T0)
    with pytest.raises(AccountNumberTaken):
        ledger.open_client("carol", ["BTC"], at=T0, account_number=alice.account_number)
    assert 42 == ledger.open_client("dave", ["BTC"], at=T0, account_number=42).account_number


def test_opening_accounts_is_checked(ledger: Ledger) -> None:
    """Opening refuses unknown assets and client accounts outside open_client; reopening is a no-op."""
    with pytest.raises(UnknownAsset):
        ledger.open_client("carol", ["DOGE"], at=T0)
    with pytest.raises(InvalidAccountKey):
        ledger.open_accounts([ALICE], at=T0)
    assert [] == ledger.open_house_accounts(["BTC"], at=T0)
    with pytest.raises(UnknownAccount):
        ledger.balance(AccountKey.custody("eth-deposit", "ETH"))


def test_client_liabilities_for_proof_of_reserves(ledger: Ledger) -> None:
    """Client liabilities list every client with account number, available and held."""
    ledger.apply(deposit("d1", ALICE, 100))
    ledger.apply(hold("h1", "alice", 30))
    liabilities = {item.client_id: item for item in ledger.client_liabilities("BTC")}
    assert (70, 30, 100) == (liabilities["alice"].available, liabilities["alice"].held, liabilities["alice"].total)
    assert 0 == liabilities["bob"].total


def test_non_transfer_input_is_refused(ledger: Ledger) -> None:
    """apply takes Transfer values only."""
    with pytest.raises(InvalidTransfer):
        ledger.apply_many(["not a transfer"])  # type: ignore[list-item]


def test_database_refuses_a_negative_client_balance(ledger: Ledger, engine: Engine) -> None:
    """Even bypassing Python, the database CHECK refuses a negative client balance."""
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_accounts SET balance = :b WHERE account_key = :k"),
                     {"b": -1 if engine.dialect.name == "postgresql" else "-1", "k": str(ALICE)})
    with engine.begin() as conn:  # a house account may go negative
        conn.execute(sa.text("UPDATE ledger_accounts SET balance = :b WHERE account_key = :k"),
                     {"b": -1 if engine.dialect.name == "postgresql" else "-1", "k": str(AccountKey.world("BTC"))})


def test_database_refuses_bad_postings(ledger: Ledger, engine: Engine) -> None:
    """The database refuses a zero posting amount and an unknown side."""
    ledger.apply(deposit("d1", ALICE, 5))
    for side, amount in (("D", 0), ("X", 5)):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO ledger_postings (transfer_id, idx, account_id, side, amount) "
                                 "SELECT min(id), 7, 1, :side, :amount FROM ledger_transfers"),
                         {"side": side, "amount": amount})


def test_database_keeps_history_append_only(ledger: Ledger, engine: Engine) -> None:
    """Transfers and postings can be neither updated nor deleted, even by SQL that bypasses Python."""
    ledger.apply(deposit("d1", ALICE, 5))
    for statement in ("UPDATE ledger_postings SET amount = 6", "DELETE FROM ledger_postings",
                      "UPDATE ledger_transfers SET kind = 'fee'", "DELETE FROM ledger_transfers"):
        with pytest.raises(sa.exc.IntegrityError, match="ledger_append_only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    ledger.check_consistency()


def test_database_ring_fence_refuses_client_to_company(ledger: Ledger, engine: Engine) -> None:
    """Rows written behind the ledger's back that move client value to the company book by a
    settle are refused by the database; a fee to the fees account is not."""
    ledger.apply(deposit("d1", ALICE, 50))
    alice_id, fees_id = _account_id(engine, ALICE), _account_id(engine, FEES)
    insert_transfer = ("INSERT INTO ledger_transfers (id, idempotency_key, kind, asset, digest, reason, metadata, at) "
                       "VALUES (:id, :key, :kind, 'BTC', 'x', '', '{}', 'now')")
    insert_postings = ("INSERT INTO ledger_postings (transfer_id, idx, account_id, side, amount) "
                       "VALUES (:id, 0, :client, 'D', 5), (:id, 1, :company, 'C', 5)")
    for transfer_id, kind, refused in ((900, "withdrawal_settle", True), (901, "pnl", True), (902, "fee", False)):
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(sa.text(insert_transfer), {"id": transfer_id, "key": f"raw-{transfer_id}", "kind": kind})
            if refused:
                with pytest.raises(sa.exc.IntegrityError, match="ledger_ring_fence"):
                    conn.execute(sa.text(insert_postings), {"id": transfer_id, "client": alice_id, "company": fees_id})
            else:
                conn.execute(sa.text(insert_postings), {"id": transfer_id, "client": alice_id, "company": fees_id})
            transaction.rollback()


def _account_id(engine: Engine, key: AccountKey) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT id FROM ledger_accounts WHERE account_key = :k"),
                                {"k": str(key)}).scalar_one())


def test_python_bug_cannot_breach_the_ring_fence(ledger: Ledger, engine: Engine,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With the core's ring-fence check switched off, the database still refuses client value to
    the company book: LedgerInconsistent, nothing written."""
    import coffer.ledger.core as core

    ledger.apply(deposit("d1", ALICE, 50))
    monkeypatch.setattr(core, "check_ring_fence", lambda *args, **kwargs: None)
    _refused(ledger, engine, LedgerInconsistent,
             lambda: Transfer("bug", Kind.WITHDRAWAL_SETTLE, (debit(ALICE, 50), credit(FEES, 50)), T0))


def test_python_bug_cannot_write_a_negative_balance(ledger: Ledger, engine: Engine,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With the core's no-negative check switched off, the database CHECK still refuses an
    overdraft: LedgerInconsistent, nothing written."""
    import coffer.ledger.store as store

    def unchecked(balances: dict[AccountKey, int], transfers: list[Transfer]) -> dict[AccountKey, int]:
        result = dict(balances)
        for transfer in transfers:
            for posting in transfer.postings:
                result[posting.account] = result.get(posting.account, 0) + balance_delta(posting)
        return result

    ledger.apply(deposit("d1", ALICE, 10))
    monkeypatch.setattr(store, "apply_transfers", unchecked)
    _refused(ledger, engine, LedgerInconsistent, lambda: hold("h1", "alice", 11))


def test_consistency_check_passes_then_catches_tampering(ledger: Ledger, engine: Engine) -> None:
    """check_consistency passes on a sound ledger and raises LedgerInconsistent after each tampering."""
    ledger.apply(deposit("d1", ALICE, 100))
    ledger.apply(hold("h1", "alice", 40))
    ledger.apply_many([hold("h2", "alice", 1), hold("h3", "alice", 1)])
    report = ledger.check_consistency()
    assert (4, 8) == (report.transfers, report.postings)
    tamperings = [
        "UPDATE ledger_accounts SET balance = {b} WHERE account_key = 'custody:hot:BTC'",
        "UPDATE ledger_postings SET amount = 99 WHERE transfer_id = (SELECT min(id) FROM ledger_transfers) AND idx = 0",
        "UPDATE ledger_transfers SET metadata = '{{\"txid\":\"zz\"}}'",
        "UPDATE ledger_transfers SET kind = 'fee'",
        "DELETE FROM ledger_postings WHERE idx = 1",
        "INSERT INTO ledger_postings (transfer_id, idx, account_id, side, amount) VALUES (999, 0, 1, 'D', 5)",
        "DELETE FROM audit_events WHERE event = 'ledger.transfer_applied' AND seq = "
        "(SELECT max(seq) FROM audit_events WHERE event = 'ledger.transfer_applied')",
        "UPDATE audit_events SET payload = replace(payload, 'batch_digest\":\"', 'batch_digest\":\"f')",
        "UPDATE audit_events SET payload = replace(payload, 'id_ranges', 'id_rangez')",
    ]
    sqlite = engine.dialect.name == "sqlite"
    for statement in tamperings:
        with engine.connect() as conn:
            transaction = conn.begin()
            _drop_guards(conn)  # as an intruder with rights to change the schema would
            conn.execute(sa.text(statement.format(b="'101'" if sqlite else "101")))
            try:
                with pytest.raises(LedgerInconsistent):
                    Ledger(_OneConnection(conn)).check_consistency()  # type: ignore[arg-type]
            finally:
                transaction.rollback()
    ledger.check_consistency()


def _drop_guards(conn: sa.Connection) -> None:
    """Remove the append-only and ring-fence triggers inside `conn`'s transaction (rolled back later)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ALTER TABLE ledger_postings DISABLE TRIGGER USER"))
        conn.execute(sa.text("ALTER TABLE ledger_transfers DISABLE TRIGGER USER"))
        return
    names = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ledger%'"))
    for (name,) in list(names):
        conn.execute(sa.text(f'DROP TRIGGER "{name}"'))


class _OneConnection:
    """Stands in for an engine whose every connection is `conn`: checks uncommitted tampering."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        yield self.conn


def test_posting_side_is_typed() -> None:
    """A posting side is a Side value."""
    with pytest.raises(InvalidTransfer):
        Posting(HOT, "D", 5)  # type: ignore[arg-type]
    assert Side.DEBIT == debit(HOT, 5).side


def test_large_batch_meeting_a_stored_key(ledger: Ledger, engine: Engine) -> None:
    """A large batch (written optimistically on PostgreSQL) with an already stored key replays it,
    or, if that key's content changed, is refused whole."""
    first = ledger.apply(deposit("d1", ALICE, 1))
    batch = [deposit(f"big-{i}", ALICE, 1) for i in range(1_200)]
    before, state = counts(engine), balances(ledger)
    with pytest.raises(IdempotencyConflict):
        ledger.apply_many([*batch[:600], deposit("d1", ALICE, 2), *batch[600:]])
    assert (before, state) == (counts(engine), balances(ledger))
    results = ledger.apply_many([*batch[:600], deposit("d1", ALICE, 1), *batch[600:]])
    assert (first.transfer_id, True) == (results[600].transfer_id, results[600].replayed)
    assert 1_200 == sum(not r.replayed for r in results)
    assert 1_201 == ledger.balance(ALICE)
    ledger.check_consistency()


def test_awkward_text_survives_storage(ledger: Ledger) -> None:
    """Backslashes, tabs, newlines, quotes and non-ASCII in metadata and reasons are stored exactly
    (on PostgreSQL through COPY): read back equal, and the digests still verify."""
    metadata = {"note": "a\\b\t\n\"c\r", "ünïcode": "ß→€", "nested": {"list": ["\\", "\t"]}}
    reason = "line one\nline\ttwo \\ back"
    transfers = [Transfer(f"w{i}", Kind.ADJUSTMENT, (debit(AccountKey.world("BTC"), 5), credit(HOT, 5)), T0,
                          metadata, reason) for i in range(3)]
    ledger.apply(transfers[0])
    ledger.apply_many(transfers[1:])
    for transfer in transfers:
        stored = ledger.transfer(transfer.idempotency_key)
        assert stored is not None
        assert (metadata, reason) == (dict(stored.metadata), stored.reason)
    ledger.check_consistency()
