"""Faults of the real parts: PostgreSQL restarted under a running ledger."""

from __future__ import annotations

import datetime as dt

from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.testing import PostgresServer

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _deposit(key: str, client: str, amount: int) -> Transfer:
    return Transfer(idempotency_key=key, kind=Kind.DEPOSIT,
                    postings=(debit(AccountKey.custody("cold", "BTC"), amount),
                              credit(AccountKey.available(client, "BTC"), amount)), at=NOW)


def test_ledger_survives_a_postgresql_restart(postgres_server: PostgresServer) -> None:
    """The server restarts between two transfers: the first is durable, the second applies, nothing twice."""
    url = postgres_server.create_database()
    engine = make_engine(url)
    try:
        migrate(engine)
        ledger = Ledger(engine)
        ledger.open_house_accounts(["BTC"], at=NOW)
        ledger.open_client("pat", ["BTC"], at=NOW)
        ledger.apply(_deposit("before-restart", "pat", 1_000))
        postgres_server.restart()
        ledger.apply(_deposit("after-restart", "pat", 2_000))
        ledger.apply(_deposit("before-restart", "pat", 1_000))  # a retry after the outage: replayed, not applied
        assert 3_000 == ledger.balance(AccountKey.available("pat", "BTC"))
        ledger.check_consistency()
    finally:
        engine.dispose()
