"""Ledger fixtures: a ledger on each database with the house accounts and two clients open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from coffer.ledger import Ledger

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    """A ledger (SQLite and PostgreSQL) with company, custody (cold, hot), world, alice and bob open."""
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC", "ETH"], at=T0)
    ledger.open_client("alice", ["BTC", "ETH"], at=T0)
    ledger.open_client("bob", ["BTC", "ETH"], at=T0)
    return ledger
