"""The ledger in a database (SQLite by default, PostgreSQL in production): `Ledger(engine)`.

Every write runs in one database transaction that holds the rows it changes: on PostgreSQL the
account rows are locked (`SELECT ... FOR UPDATE`, in id order so writers never deadlock); on
SQLite the transaction starts with `BEGIN IMMEDIATE`, which takes the database's write lock up
front. Inside it the pure core decides (`coffer.ledger.core`), then transfers, postings, new
balances and one audit event are written and committed together. A batch (`apply_many`) is
written with COPY on PostgreSQL and its balance updates are aggregated per account.

It must never write a transfer the core refused, nor a transfer without its audit event.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coffer.audit import AuditLog
from coffer.invariant import invariant
from coffer.ledger.core import (
    CLIENT_ACCOUNTS,
    COMPANY_ACCOUNTS,
    DEFAULT_ASSETS,
    AccountKey,
    Asset,
    Book,
    Kind,
    Posting,
    Side,
    Transfer,
    apply_transfers,
    balance_delta,
    check_idempotent_replay,
    check_ring_fence,
    check_transfer,
    transfer_digest,
)
from coffer.ledger.errors import (
    AccountNumberTaken,
    InsufficientFunds,
    InvalidAccountKey,
    InvalidTransfer,
    LedgerBusy,
    LedgerError,
    LedgerInconsistent,
    UnknownAccount,
    UnknownAsset,
)
from coffer.ledger.tables import ledger_accounts, ledger_clients, ledger_postings, ledger_transfers

__all__ = ["Ledger", "AppliedTransfer", "ClientAccount", "ClientLiability", "Statement", "StatementLine",
           "BookTotals", "ConsistencyReport", "BATCH_TRANSFERS_MAX", "STATEMENT_LINES_MAX"]

BATCH_TRANSFERS_MAX = 50_000
STATEMENT_LINES_MAX = 10_000
WRITE_ATTEMPTS_MAX = 5
OPTIMISTIC_BATCH_MIN = 1_000  # batches this large skip the key lookup on their first attempt
ACCOUNT_NUMBER_ATTEMPTS_MAX = 8
ACCOUNT_ID_CACHE_MAX = 1_000_000
_IN_CHUNK = 500
_SCAN_CHUNK = 2_000
_NEGATIVE_CHECK = "client_balance_nonnegative"
_RING_FENCE_GUARD = "ledger_ring_fence"


class AppliedTransfer(NamedTuple):
    """A transfer as stored. `replayed` is true when an earlier apply with the same key wrote it.

    A NamedTuple rather than a frozen dataclass: one is built per transfer on the batched path,
    and a tuple is built several times faster; it is just as immutable.
    """

    transfer_id: int
    idempotency_key: str
    kind: Kind
    asset: str
    postings: tuple[Posting, ...]
    at: datetime
    metadata: Mapping[str, Any]
    reason: str
    digest: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ClientAccount:
    client_id: str
    account_number: int  # 63-bit positive, unique: the client's number in the proof of reserves


@dataclass(frozen=True, slots=True)
class ClientLiability:
    client_id: str
    account_number: int
    available: int
    held: int

    @property
    def total(self) -> int:
        return self.available + self.held


@dataclass(frozen=True, slots=True)
class StatementLine:
    transfer_id: int
    at: datetime
    kind: Kind
    account: str  # "available" or "held"
    delta: int
    balance_after: int  # of `account`, after this line


@dataclass(frozen=True, slots=True)
class Statement:
    client_id: str
    account_number: int
    asset: str
    available: int
    held: int
    lines: tuple[StatementLine, ...]


@dataclass(frozen=True, slots=True)
class BookTotals:
    """Sum of balances per book for one asset. `balanced`: custody = client + company + external."""

    asset: str
    client: int = 0
    company: int = 0
    custody: int = 0
    external: int = 0

    @property
    def balanced(self) -> bool:
        return self.custody == self.client + self.company + self.external


@dataclass(frozen=True, slots=True)
class ConsistencyReport:
    accounts: int
    transfers: int
    postings: int
    totals: Mapping[str, BookTotals] = field(default_factory=dict)


def _stamp(at: datetime) -> str:
    return at.isoformat() if at.tzinfo is UTC else at.astimezone(UTC).isoformat()


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Ledger:
    """The one source of balances. Thread-safe: each call uses its own connection."""

    def __init__(self, engine: Engine, *, assets: Iterable[Asset] = DEFAULT_ASSETS) -> None:
        self._engine = engine
        self._assets: dict[str, Asset] = {asset.code: asset for asset in assets}
        self._audit = AuditLog(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._account_ids: dict[AccountKey, int] = {}

    @property
    def assets(self) -> Mapping[str, Asset]:
        return dict(self._assets)

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction holding its rows (PostgreSQL) or the database (SQLite)."""
        with self._engine.connect() as conn:
            if not self._postgres:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _retrying(self, attempt_once: Callable[[int], Any]) -> Any:
        """Run a write, retrying a bounded number of times when another writer raced it (or an
        optimistic batch met a key already stored). `attempt_once` gets the attempt number."""
        for attempt in range(WRITE_ATTEMPTS_MAX):
            last = attempt + 1 == WRITE_ATTEMPTS_MAX
            try:
                return attempt_once(attempt)
            except sa.exc.IntegrityError as exc:
                if _NEGATIVE_CHECK in str(exc.orig) or _RING_FENCE_GUARD in str(exc.orig):
                    raise LedgerInconsistent(f"the database refused what the core let through: {exc.orig}") from exc
                if last or not _is_unique_violation(exc):
                    raise
            except sa.exc.OperationalError as exc:
                if last or not _is_transient(exc):
                    raise LedgerBusy(f"database busy: {type(exc.orig).__name__}") from exc
        raise LedgerBusy("gave up after repeated write conflicts")

    # ----------------------------------------------------------------- accounts

    def _check_asset(self, asset: str) -> None:
        if asset not in self._assets:
            raise UnknownAsset(f"asset {asset!r} is not configured")

    def open_client(self, client_id: str, assets: Iterable[str], *, at: datetime,
                    account_number: int | None = None) -> ClientAccount:
        """Open (or complete) a client's `available` and `held` accounts for each asset.

        Idempotent. A new client gets `account_number`, or a random 63-bit one when None.
        """
        asset_codes = sorted(set(assets))
        for asset in asset_codes:
            self._check_asset(asset)
        keys = [AccountKey(Book.CLIENT, name, asset, client_id) for asset in asset_codes
                for name in CLIENT_ACCOUNTS]
        if account_number is not None and (type(account_number) is not int or not 0 < account_number < 2**63):
            raise InvalidAccountKey("account number must be an int in 1 .. 2**63 - 1")
        result: ClientAccount = self._retrying(
            lambda _attempt: self._open_client_once(client_id, keys, at, account_number))
        return result

    def _open_client_once(self, client_id: str, keys: list[AccountKey], at: datetime,
                          account_number: int | None) -> ClientAccount:
        with self._write() as conn:
            number = conn.execute(sa.select(ledger_clients.c.account_number)
                                  .where(ledger_clients.c.client_id == client_id)).scalar()
            created = number is None
            if number is None:
                number = self._new_account_number(conn, account_number)
                conn.execute(ledger_clients.insert().values(client_id=client_id, account_number=number,
                                                            opened_at=_stamp(at)))
            elif account_number is not None and account_number != number:
                raise AccountNumberTaken(f"client {client_id} already has another account number")
            opened = self._insert_missing_accounts(conn, keys, at)
            if created or opened:
                self._audit.append("ledger", "ledger.client_opened",
                                   {"client_id": client_id, "account_number": int(number),
                                    "accounts": [str(key) for key in opened]}, at=at, connection=conn)
            return ClientAccount(client_id, int(number))

    def _new_account_number(self, conn: Connection, wanted: int | None) -> int:
        for _ in range(ACCOUNT_NUMBER_ATTEMPTS_MAX):
            number = wanted if wanted is not None else secrets.randbits(63)
            if number == 0:
                continue
            taken = conn.execute(sa.select(ledger_clients.c.client_id)
                                 .where(ledger_clients.c.account_number == number)).first()
            if taken is None:
                return number
            if wanted is not None:
                raise AccountNumberTaken(f"account number {number} belongs to another client")
        raise AccountNumberTaken("could not draw a free account number")

    def open_accounts(self, keys: Iterable[AccountKey], *, at: datetime) -> list[AccountKey]:
        """Open company, custody and external accounts (clients use `open_client`). Idempotent;
        returns the accounts that were new."""
        wanted = sorted(set(keys))
        for key in wanted:
            if key.book is Book.CLIENT:
                raise InvalidAccountKey("open client accounts with open_client")
            self._check_asset(key.asset)
        opened: list[AccountKey] = self._retrying(lambda _attempt: self._open_accounts_once(wanted, at))
        return opened

    def _open_accounts_once(self, keys: list[AccountKey], at: datetime) -> list[AccountKey]:
        with self._write() as conn:
            opened = self._insert_missing_accounts(conn, keys, at)
            if opened:
                self._audit.append("ledger", "ledger.accounts_opened",
                                   {"accounts": [str(key) for key in opened]}, at=at, connection=conn)
            return opened

    def open_house_accounts(self, assets: Iterable[str], *, at: datetime,
                            wallets: Iterable[str] = ("cold", "hot")) -> list[AccountKey]:
        """Open the company accounts, a custody account per wallet and `external:world`, per asset."""
        wallet_names = tuple(wallets)
        keys = []
        for asset in assets:
            keys += [AccountKey.company(name, asset) for name in COMPANY_ACCOUNTS]
            keys += [AccountKey.custody(wallet, asset) for wallet in wallet_names]
            keys.append(AccountKey.world(asset))
        return self.open_accounts(keys, at=at)

    def _insert_missing_accounts(self, conn: Connection, keys: list[AccountKey], at: datetime) -> list[AccountKey]:
        existing = self._lookup_ids(conn, keys)
        missing = [key for key in keys if key not in existing]
        if missing:
            conn.execute(ledger_accounts.insert(), [
                {"account_key": str(key), "book": str(key.book), "name": key.name, "asset": key.asset,
                 "client_id": key.client_id, "balance": 0, "opened_at": _stamp(at)} for key in missing])
        return missing

    def _lookup_ids(self, conn: Connection, keys: Iterable[AccountKey]) -> dict[AccountKey, int]:
        found: dict[AccountKey, int] = {}
        wanted = [key for key in keys if key not in self._account_ids]
        by_text = {str(key): key for key in wanted}
        for chunk in _chunks(list(by_text)):
            rows = conn.execute(sa.select(ledger_accounts.c.id, ledger_accounts.c.account_key)
                                .where(ledger_accounts.c.account_key.in_(chunk)))
            for row in rows:
                found[by_text[row.account_key]] = int(row.id)
        if len(self._account_ids) + len(found) > ACCOUNT_ID_CACHE_MAX:
            self._account_ids.clear()
        self._account_ids.update(found)  # ids never change: safe to keep across transactions
        return {key: self._account_ids[key] for key in keys if key in self._account_ids}

    def _account_ids_or_raise(self, conn: Connection, keys: Iterable[AccountKey]) -> dict[AccountKey, int]:
        wanted = set(keys)
        ids = self._lookup_ids(conn, wanted)
        if len(ids) != len(wanted):
            first = min(key for key in wanted if key not in ids)
            raise UnknownAccount(f"account {first} is not open", account=str(first))
        return ids

    # ----------------------------------------------------------------- transfers

    def apply(self, transfer: Transfer, *, actor: str = "ledger") -> AppliedTransfer:
        """Apply one transfer whole or not at all; a replay of its key returns the first result."""
        return self.apply_many([transfer], actor=actor)[0]

    def apply_many(self, transfers: Sequence[Transfer], *, actor: str = "ledger") -> list[AppliedTransfer]:
        """Apply transfers in order, atomically: all are written (one commit) or, if any is refused,
        none. Results are in input order; replayed keys return their first result."""
        digests = self._prepare(transfers)
        if not transfers:
            return []
        results: list[AppliedTransfer] = self._retrying(partial(self._apply_batch_attempt, transfers, digests, actor))
        return results

    def _look_up_keys(self, attempt: int, transfers: Sequence[Transfer]) -> bool:
        """Whether to look idempotency keys up before writing. A large PostgreSQL batch first goes
        without: the unique index on the key is the check that counts, and if a key is already
        stored the COPY fails, the transaction rolls back and the retry looks the keys up."""
        return attempt > 0 or not self._postgres or len(transfers) < OPTIMISTIC_BATCH_MIN

    def apply_batches(self, batches: Iterable[Sequence[Transfer]], *,
                      actor: str = "ledger") -> Iterator[list[AppliedTransfer]]:
        """Apply batches in order, each as `apply_many` does (atomic, one commit), yielding each
        batch's results once it is committed. While one batch is being written, the next is
        checked, so the checks overlap the database's work. Stops at the first refused batch:
        the batches before it are committed, it and the rest are not. A batch already handed to
        the writer is committed even if the caller stops iterating before its results come."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer") as writer:
            pending: Future[list[AppliedTransfer]] | None = None
            for batch in batches:
                digests = self._prepare(batch)
                if pending is not None:
                    yield pending.result()
                    pending = None
                if batch:
                    pending = writer.submit(self._retrying, partial(self._apply_batch_attempt, batch, digests, actor))
            if pending is not None:
                yield pending.result()

    def _apply_batch_attempt(self, transfers: Sequence[Transfer], digests: list[str], actor: str,
                             attempt: int) -> list[AppliedTransfer]:
        look_up_keys = self._look_up_keys(attempt, transfers)
        try:
            return self._apply_once(transfers, digests, actor, look_up_keys)
        except InsufficientFunds:
            if look_up_keys:
                raise
            # A replayed batch no longer fits the balances it already moved: decide again (rolled
            # back) with the keys looked up, so replays return their first results.
            return self._apply_once(transfers, digests, actor, True)

    def _prepare(self, transfers: Sequence[Transfer]) -> list[str]:
        """Check each transfer on its own (pure core) and return the content digests."""
        if len(transfers) > BATCH_TRANSFERS_MAX:
            raise InvalidTransfer(f"at most {BATCH_TRANSFERS_MAX} transfers per batch")
        digests = []
        for transfer in transfers:
            if type(transfer) is not Transfer:
                raise InvalidTransfer("apply takes Transfer values")
            check_transfer(transfer, self._assets)
            digests.append(transfer_digest(transfer))
        return digests

    def _apply_once(self, transfers: Sequence[Transfer], digests: list[str], actor: str,
                    look_up_keys: bool) -> list[AppliedTransfer]:
        with self._write() as conn:
            existing = self._existing_keys(conn, [t.idempotency_key for t in transfers]) if look_up_keys else {}
            fresh_indices, replay_of = _split_replays(transfers, digests, existing)
            fresh = [transfers[i] for i in fresh_indices]
            accounts = {p.account.text: p.account for t in fresh for p in t.postings}
            ids = self._account_ids_or_raise(conn, accounts.values())
            balances = self._lock_balances(conn, ids)
            try:
                updated = apply_transfers(balances, fresh)
            except InsufficientFunds as exc:
                raise InsufficientFunds(exc.detail, account=exc.account,
                                        index=fresh_indices[exc.index]) from None
            transfer_ids = self._allocate_transfer_ids(conn, len(fresh))
            fresh_digests = [digests[i] for i in fresh_indices]
            self._insert_transfers(conn, fresh, fresh_digests, transfer_ids, ids)
            self._store_balances(conn, {ids[key]: value for key, value in updated.items()})
            if fresh:
                self._audit_applied(conn, actor, fresh, fresh_digests, transfer_ids)
            if not replay_of:
                return [_applied(tid, t, digest) for tid, t, digest in zip(transfer_ids, fresh, fresh_digests, strict=True)]
            new_by_index = {index: _applied(transfer_ids[n], transfers[index], digests[index])
                            for n, index in enumerate(fresh_indices)}
            earlier = self._load_transfers(conn, sorted({tid for tid in replay_of.values() if tid > 0}))
            results = []
            for index in range(len(transfers)):
                if index in new_by_index:
                    results.append(new_by_index[index])
                else:
                    source = replay_of[index]
                    first = earlier[source] if source > 0 else new_by_index[-source - 1]
                    results.append(_as_replay(first))
            return results

    def _existing_keys(self, conn: Connection, keys: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        unique = sorted(set(keys))
        t = ledger_transfers.c
        for chunk in _chunks(unique, 5_000 if self._postgres else _IN_CHUNK):
            if self._postgres:
                with _cursor(conn) as cursor:
                    cursor.execute("SELECT idempotency_key, id, digest FROM ledger_transfers "
                                   "WHERE idempotency_key = ANY(%s)", (list(chunk),))
                    rows = cursor.fetchall()
            else:
                rows = conn.execute(sa.select(t.idempotency_key, t.id, t.digest)
                                    .where(t.idempotency_key.in_(chunk))).all()
            for key, transfer_id, digest in rows:
                found[str(key)] = (int(transfer_id), str(digest))
        return found

    def _lock_balances(self, conn: Connection, ids: Mapping[AccountKey, int]) -> dict[AccountKey, int]:
        if not ids:
            return {}
        key_of = {account_id: key for key, account_id in ids.items()}
        balances: dict[AccountKey, int] = {}
        ordered = sorted(key_of)
        if self._postgres:
            # in id order, so two writers locking overlapping accounts never deadlock
            with _cursor(conn) as cursor:
                cursor.execute("SELECT id, balance FROM ledger_accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                               (ordered,))
                for account_id, balance in cursor.fetchall():
                    balances[key_of[account_id]] = int(balance)
            return balances
        for chunk in _chunks(ordered):
            query = sa.select(ledger_accounts.c.id, ledger_accounts.c.balance).where(ledger_accounts.c.id.in_(chunk))
            for row in conn.execute(query):
                balances[key_of[int(row.id)]] = int(row.balance)
        return balances

    def _allocate_transfer_ids(self, conn: Connection, count: int) -> list[int]:
        if count == 0:
            return []
        if self._postgres:
            with _cursor(conn) as cursor:
                cursor.execute("SELECT nextval(pg_get_serial_sequence('ledger_transfers', 'id')) "
                               "FROM generate_series(1, %s)", (count,))
                return [row[0] for row in cursor.fetchall()]
        last = conn.execute(sa.select(sa.func.max(ledger_transfers.c.id))).scalar()
        first = 1 if last is None else int(last) + 1
        return list(range(first, first + count))

    def _insert_transfers(self, conn: Connection, transfers: Sequence[Transfer], digests: Sequence[str],
                          transfer_ids: Sequence[int], ids: Mapping[AccountKey, int]) -> None:
        if not transfers:
            return
        id_of = {key.text: account_id for key, account_id in ids.items()}
        if self._postgres:
            self._copy_transfers(conn, transfers, digests, transfer_ids, id_of)
            return
        transfer_rows = [
            (transfer_id, t.idempotency_key, t.kind._value_, t.asset, digest, t.reason,
             t.metadata_json.decode(), _stamp(t.at))
            for transfer_id, t, digest in zip(transfer_ids, transfers, digests, strict=True)]
        posting_rows = [
            (transfer_id, index, id_of[p.account.text], p.side._value_, p.amount)
            for transfer_id, t in zip(transfer_ids, transfers, strict=True)
            for index, p in enumerate(t.postings)]
        conn.exec_driver_sql("INSERT INTO ledger_transfers (id, idempotency_key, kind, asset, digest, reason, "
                             "metadata, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", transfer_rows)
        conn.exec_driver_sql("INSERT INTO ledger_postings (transfer_id, idx, account_id, side, amount) "
                             "VALUES (?, ?, ?, ?, ?)", posting_rows)

    @staticmethod
    def _copy_transfers(conn: Connection, transfers: Sequence[Transfer], digests: Sequence[str],
                        transfer_ids: Sequence[int], id_of: Mapping[str, int]) -> None:
        """COPY in text format, one buffer per table: cheap in Python, one hand-over to the driver."""
        transfer_text = "".join(
            f"{transfer_id}\t{t.idempotency_key}\t{t.kind._value_}\t{t.postings[0].account.asset}\t{digest}\t"
            f"{_copy_escape(t.reason)}\t{_copy_json(t.metadata_json)}\t{_stamp(t.at)}\n"
            for transfer_id, t, digest in zip(transfer_ids, transfers, digests, strict=True))
        posting_text = "".join(
            f"{transfer_id}\t{index}\t{id_of[p.account.text]}\t{p.side._value_}\t{p.amount}\n"
            for transfer_id, t in zip(transfer_ids, transfers, strict=True) for index, p in enumerate(t.postings))
        with _cursor(conn) as cursor:
            with cursor.copy("COPY ledger_transfers (id, idempotency_key, kind, asset, digest, reason, "
                             "metadata, at) FROM STDIN") as copy:
                copy.write(transfer_text)
            with cursor.copy("COPY ledger_postings (transfer_id, idx, account_id, side, amount) FROM STDIN") as copy:
                copy.write(posting_text)

    def _store_balances(self, conn: Connection, balances: Mapping[int, int]) -> None:
        if not balances:
            return
        if self._postgres:
            with _cursor(conn) as cursor:
                cursor.execute(
                    "UPDATE ledger_accounts AS a SET balance = u.balance "
                    "FROM unnest(%s::bigint[], %s::numeric[]) AS u(id, balance) WHERE a.id = u.id",
                    (list(balances), [Decimal(value) for value in balances.values()]))
                invariant(cursor.rowcount == len(balances), "balance update missed an account")
            return
        result = conn.exec_driver_sql("UPDATE ledger_accounts SET balance = ? WHERE id = ?",
                                      [(str(value), account_id) for account_id, value in balances.items()])
        invariant(result.rowcount == len(balances), "balance update missed an account")

    def _audit_applied(self, conn: Connection, actor: str, transfers: Sequence[Transfer],
                       digests: Sequence[str], transfer_ids: Sequence[int]) -> None:
        at = max(t.at for t in transfers)
        if len(transfers) == 1:
            (t,) = transfers
            payload: dict[str, Any] = {
                "transfer_id": transfer_ids[0], "idempotency_key": t.idempotency_key, "kind": str(t.kind),
                "asset": t.asset, "digest": digests[0], "reason": t.reason, "metadata": dict(t.metadata),
                "postings": [[str(p.account), str(p.side), p.amount] for p in t.postings]}
            self._audit.append(actor, "ledger.transfer_applied", payload, at=at, connection=conn)
            return
        # one event for the batch: the id ranges, and a digest over every (id, content digest)
        batch_digest = hashlib.sha256("".join(f"{tid}:{digest};" for tid, digest in
                                              zip(transfer_ids, digests, strict=True)).encode()).hexdigest()
        kinds: dict[str, int] = {}
        for t in transfers:
            kinds[str(t.kind)] = kinds.get(str(t.kind), 0) + 1
        self._audit.append(actor, "ledger.transfers_applied",
                           {"count": len(transfers), "id_ranges": _ranges(transfer_ids),
                            "batch_digest": batch_digest, "kinds": kinds}, at=at, connection=conn)

    def _load_transfers(self, conn: Connection, transfer_ids: Sequence[int]) -> dict[int, AppliedTransfer]:
        loaded: dict[int, AppliedTransfer] = {}
        t, p, a = ledger_transfers.c, ledger_postings.c, ledger_accounts.c
        for chunk in _chunks(list(transfer_ids)):
            postings: dict[int, list[Posting]] = {}
            rows = conn.execute(sa.select(p.transfer_id, p.side, p.amount, a.account_key)
                                .join_from(ledger_postings, ledger_accounts, p.account_id == a.id)
                                .where(p.transfer_id.in_(chunk)).order_by(p.transfer_id, p.idx))
            for row in rows:
                postings.setdefault(int(row.transfer_id), []).append(
                    Posting(AccountKey.parse(row.account_key), Side(row.side), int(row.amount)))
            for row in conn.execute(sa.select(ledger_transfers).where(t.id.in_(chunk))):
                loaded[int(row.id)] = AppliedTransfer(
                    int(row.id), row.idempotency_key, Kind(row.kind), row.asset,
                    tuple(postings.get(int(row.id), ())), datetime.fromisoformat(row.at),
                    json.loads(row.metadata), row.reason, row.digest, replayed=True)
        return loaded

    def transfer(self, idempotency_key: str) -> AppliedTransfer | None:
        """The transfer stored under `idempotency_key`, or None: how a restarted caller learns
        whether its request took effect."""
        with self._engine.connect() as conn:
            transfer_id = conn.execute(sa.select(ledger_transfers.c.id)
                                       .where(ledger_transfers.c.idempotency_key == idempotency_key)).scalar()
            if transfer_id is None:
                return None
            return self._load_transfers(conn, [int(transfer_id)])[int(transfer_id)]

    # ----------------------------------------------------------------- queries

    def balance(self, account: AccountKey) -> int:
        """The balance of `account` in minor units (custody debit-normal, the rest credit-normal)."""
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(ledger_accounts.c.balance)
                                 .where(ledger_accounts.c.account_key == str(account))).scalar()
        if value is None:
            raise UnknownAccount(f"account {account} is not open", account=str(account))
        return int(value)

    def balances(self, *, book: Book | None = None, asset: str | None = None,
                 client_id: str | None = None) -> dict[AccountKey, int]:
        """Balances of every open account matching the filters."""
        a = ledger_accounts.c
        query = sa.select(a.account_key, a.balance).order_by(a.id)
        if book is not None:
            query = query.where(a.book == str(book))
        if asset is not None:
            query = query.where(a.asset == asset)
        if client_id is not None:
            query = query.where(a.client_id == client_id)
        with self._engine.connect() as conn:
            return {AccountKey.parse(row.account_key): int(row.balance) for row in conn.execute(query)}

    def client(self, client_id: str) -> ClientAccount:
        with self._engine.connect() as conn:
            number = conn.execute(sa.select(ledger_clients.c.account_number)
                                  .where(ledger_clients.c.client_id == client_id)).scalar()
        if number is None:
            raise UnknownAccount(f"client {client_id} has no accounts", account=f"client:{client_id}")
        return ClientAccount(client_id, int(number))

    def client_liabilities(self, asset: str) -> list[ClientLiability]:
        """Every client's balances in `asset` (what the exchange owes them), by account number."""
        self._check_asset(asset)
        a, c = ledger_accounts.c, ledger_clients.c
        query = (sa.select(c.client_id, c.account_number, a.name, a.balance)
                 .join_from(ledger_accounts, ledger_clients, a.client_id == c.client_id)
                 .where(a.asset == asset, a.book == str(Book.CLIENT)))
        parts: dict[str, dict[str, int]] = {}
        numbers: dict[str, int] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                parts.setdefault(row.client_id, {})[row.name] = int(row.balance)
                numbers[row.client_id] = int(row.account_number)
        result = [ClientLiability(client_id, numbers[client_id], names.get("available", 0), names.get("held", 0))
                  for client_id, names in parts.items()]
        return sorted(result, key=lambda item: item.account_number)

    def statement(self, client_id: str, asset: str, *, limit: int = STATEMENT_LINES_MAX) -> Statement:
        """The client's postings in `asset`, oldest first, with the running balance per account."""
        self._check_asset(asset)
        account = self.client(client_id)
        keys = [AccountKey(Book.CLIENT, name, asset, client_id) for name in CLIENT_ACCOUNTS]
        p, t, a = ledger_postings.c, ledger_transfers.c, ledger_accounts.c
        query = (sa.select(p.transfer_id, p.side, p.amount, a.name, t.kind, t.at)
                 .join_from(ledger_postings, ledger_accounts, p.account_id == a.id)
                 .join(ledger_transfers, p.transfer_id == t.id)
                 .where(a.account_key.in_([str(key) for key in keys]))
                 .order_by(p.transfer_id, p.idx).limit(min(limit, STATEMENT_LINES_MAX)))
        running = dict.fromkeys(CLIENT_ACCOUNTS, 0)
        lines = []
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                delta = int(row.amount) if row.side == Side.CREDIT else -int(row.amount)
                running[row.name] += delta
                lines.append(StatementLine(int(row.transfer_id), datetime.fromisoformat(row.at), Kind(row.kind),
                                           row.name, delta, running[row.name]))
        current = self.balances(client_id=client_id, asset=asset)
        return Statement(client_id, account.account_number, asset, current.get(keys[0], 0),
                         current.get(keys[1], 0), tuple(lines))

    def totals(self) -> dict[str, BookTotals]:
        """Per asset, the sum of balances in each book (client liabilities, company, custody, external)."""
        sums: dict[str, dict[str, int]] = {code: {} for code in self._assets}
        a = ledger_accounts.c
        with self._engine.connect() as conn:
            for row in conn.execute(sa.select(a.asset, a.book, a.balance)):
                per_book = sums.setdefault(row.asset, {})
                per_book[row.book] = per_book.get(row.book, 0) + int(row.balance)
        return {asset: BookTotals(asset, **per_book) for asset, per_book in sums.items()}

    def check_consistency(self, *, audit: bool = True) -> ConsistencyReport:
        """Re-derive every balance from the postings and re-check every stored transfer: it balances,
        moves one asset, passes the ring fence and matches its digest; with `audit`, also that each
        transfer is recorded, with that digest, by an audit event. Raises LedgerInconsistent."""
        digests: dict[int, str] = {}
        with self._engine.connect() as conn:
            accounts = {int(row.id): (AccountKey.parse(row.account_key), int(row.balance))
                        for row in conn.execute(sa.select(ledger_accounts.c.id, ledger_accounts.c.account_key,
                                                          ledger_accounts.c.balance))}
            derived = dict.fromkeys(accounts, 0)
            transfer_count, posting_count = self._scan_transfers(conn, accounts, derived, digests)
            stored_postings = int(conn.execute(sa.select(sa.func.count()).select_from(ledger_postings)).scalar_one())
        if stored_postings != posting_count:
            raise LedgerInconsistent(f"{stored_postings - posting_count} postings belong to no transfer")
        if audit:
            self._check_audit_coverage(digests)
        for account_id, (key, stored) in accounts.items():
            if stored != derived[account_id]:
                raise LedgerInconsistent(f"{key}: stored balance {stored} != sum of postings {derived[account_id]}")
            if key.book is Book.CLIENT and stored < 0:
                raise LedgerInconsistent(f"{key}: client balance below zero")
        totals = self.totals()
        for asset, book_totals in totals.items():
            if not book_totals.balanced:
                raise LedgerInconsistent(f"{asset}: custody != client + company + external ({book_totals})")
        return ConsistencyReport(len(accounts), transfer_count, posting_count, totals)

    def _check_audit_coverage(self, digests: Mapping[int, str]) -> None:
        """Every stored transfer appears, with its content digest, in exactly one audit event."""
        covered: set[int] = set()
        for event in self._ledger_events():
            try:
                ids = _audited_ids(event, digests)
            except (KeyError, TypeError, ValueError) as exc:
                raise LedgerInconsistent(f"audit event {event.seq} is malformed ({exc!r})") from exc
            if covered.intersection(ids):
                raise LedgerInconsistent(f"audit event {event.seq} records a transfer twice")
            covered.update(ids)
        missing = set(digests) - covered
        if missing:
            raise LedgerInconsistent(f"transfers without an audit event: {sorted(missing)[:5]}")

    def _ledger_events(self) -> Iterator[Any]:
        for name in ("ledger.transfer_applied", "ledger.transfers_applied"):
            after = 0
            while True:
                events = self._audit.events(event=name, after_seq=after, limit=_SCAN_CHUNK)
                if not events:
                    break
                yield from events
                after = events[-1].seq

    def _scan_transfers(self, conn: Connection, accounts: Mapping[int, tuple[AccountKey, int]],
                        derived: dict[int, int], digests: dict[int, str]) -> tuple[int, int]:
        t, p = ledger_transfers.c, ledger_postings.c
        after, transfer_count, posting_count = 0, 0, 0
        while True:
            rows = conn.execute(sa.select(ledger_transfers).where(t.id > after).order_by(t.id)
                                .limit(_SCAN_CHUNK)).all()
            if not rows:
                return transfer_count, posting_count
            postings: dict[int, list[Posting]] = {}
            for row in conn.execute(sa.select(p.transfer_id, p.account_id, p.side, p.amount)
                                    .where(p.transfer_id > after, p.transfer_id <= rows[-1].id)
                                    .order_by(p.transfer_id, p.idx)):
                if int(row.account_id) not in accounts:
                    raise LedgerInconsistent(f"posting of transfer {row.transfer_id} names no account")
                posting = Posting(accounts[int(row.account_id)][0], Side(row.side), int(row.amount))
                postings.setdefault(int(row.transfer_id), []).append(posting)
                derived[int(row.account_id)] += balance_delta(posting)
                posting_count += 1
            for row in rows:
                _recheck_stored(row, postings.pop(int(row.id), []))
                digests[int(row.id)] = row.digest
                transfer_count += 1
            if postings:
                raise LedgerInconsistent(f"postings without a transfer: {sorted(postings)[:5]}")
            after = int(rows[-1].id)


def _audited_ids(event: Any, digests: Mapping[int, str]) -> list[int]:
    """The transfer ids an audit event records, after checking it against the stored digests."""
    if event.event == "ledger.transfer_applied":
        transfer_id = int(event.payload["transfer_id"])
        if digests.get(transfer_id) != event.payload["digest"]:
            raise LedgerInconsistent(f"audit event {event.seq}: transfer {transfer_id} differs from its record")
        return [transfer_id]
    ids = [tid for first, last in event.payload["id_ranges"] for tid in range(int(first), int(last) + 1)]
    if any(tid not in digests for tid in ids):
        raise LedgerInconsistent(f"audit event {event.seq} names transfers that are not stored")
    batch = "".join(f"{tid}:{digests[tid]};" for tid in ids)
    if hashlib.sha256(batch.encode()).hexdigest() != event.payload["batch_digest"]:
        raise LedgerInconsistent(f"audit event {event.seq}: batch differs from the stored transfers")
    return ids


def _recheck_stored(row: Any, postings: list[Posting]) -> None:
    """One stored transfer, checked again as if it were new."""
    where = f"transfer {row.id}"
    try:
        kind = Kind(row.kind)
        transfer = Transfer(row.idempotency_key, kind, tuple(postings), datetime.fromisoformat(row.at),
                            json.loads(row.metadata), row.reason)
    except (ValueError, LedgerError) as exc:
        raise LedgerInconsistent(f"{where}: unreadable ({exc})") from exc
    if len(postings) < 2:
        raise LedgerInconsistent(f"{where}: fewer than two postings")
    debit_total = sum(p.amount for p in postings if p.side is Side.DEBIT)
    credit_total = sum(p.amount for p in postings if p.side is Side.CREDIT)
    if debit_total != credit_total:
        raise LedgerInconsistent(f"{where}: debits {debit_total} != credits {credit_total}")
    if {p.account.asset for p in postings} != {row.asset}:
        raise LedgerInconsistent(f"{where}: postings do not all move {row.asset}")
    try:
        check_ring_fence(kind, postings, reason=row.reason)
    except LedgerError as exc:
        raise LedgerInconsistent(f"{where}: breaks the ring fence ({exc})") from exc
    if transfer_digest(transfer) != row.digest:
        raise LedgerInconsistent(f"{where}: content does not match its digest")


def _split_replays(transfers: Sequence[Transfer], digests: Sequence[str],
                   existing: Mapping[str, tuple[int, str]]) -> tuple[list[int], dict[int, int]]:
    """Indices of new transfers, and for each replay where its first result is: a stored transfer
    id (> 0) or -(index + 1) of an earlier transfer in this batch. Raises IdempotencyConflict."""
    fresh: list[int] = []
    replay_of: dict[int, int] = {}
    first_in_batch: dict[str, int] = {}
    for index, (transfer, digest) in enumerate(zip(transfers, digests, strict=True)):
        key = transfer.idempotency_key
        if key in existing:
            check_idempotent_replay(key, existing[key][1], digest)
            replay_of[index] = existing[key][0]
        elif key in first_in_batch:
            check_idempotent_replay(key, digests[first_in_batch[key]], digest)
            replay_of[index] = -first_in_batch[key] - 1
        else:
            first_in_batch[key] = index
            fresh.append(index)
    return fresh, replay_of


def _applied(transfer_id: int, transfer: Transfer, digest: str) -> AppliedTransfer:
    return AppliedTransfer(transfer_id, transfer.idempotency_key, transfer.kind, transfer.asset, transfer.postings,
                           transfer.at, transfer.metadata, transfer.reason, digest, replayed=False)


def _as_replay(first: AppliedTransfer) -> AppliedTransfer:
    return AppliedTransfer(first.transfer_id, first.idempotency_key, first.kind, first.asset, first.postings,
                           first.at, first.metadata, first.reason, first.digest, replayed=True)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_json(encoded: bytes) -> str:
    """Canonical JSON in COPY text format: it is ASCII with no raw control characters, so only
    backslashes need doubling."""
    text = encoded.decode()
    return text.replace("\\", "\\\\") if "\\" in text else text


def _copy_escape(text: str) -> str:
    """A value in PostgreSQL's COPY text format. Keys, kinds, assets, digests and times cannot hold
    these characters (their formats forbid them); reasons and metadata can."""
    return text.translate(_COPY_ESCAPES) if text else text


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A psycopg cursor inside the SQLAlchemy transaction of `conn` (COPY, arrays)."""
    raw = conn.connection.driver_connection
    invariant(raw is not None, "no driver connection")
    driver_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    try:
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            yield cursor
    except driver_error as exc:  # wrapped as SQLAlchemy would, so callers see one kind of error
        raise sa.exc.DBAPIError.instance(None, None, exc, driver_error) from exc


def _ranges(values: Sequence[int]) -> list[list[int]]:
    """[[first, last], ...] covering `values` (ascending runs)."""
    ranges: list[list[int]] = []
    for value in values:
        if ranges and ranges[-1][1] + 1 == value:
            ranges[-1][1] = value
        else:
            ranges.append([value, value])
    return ranges


def _is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _is_transient(exc: sa.exc.OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in {"40001", "40P01"} or "database is locked" in str(exc.orig)
