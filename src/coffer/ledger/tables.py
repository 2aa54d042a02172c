"""The ledger's tables (SQLAlchemy Core on the shared metadata). Only `coffer.ledger` reads them.

Balances are kept beside each account (one row per account: the row a writer locks). They are
wider than a posting amount: on PostgreSQL NUMERIC(38,0), on SQLite (whose integers stop at 64
bits) canonical decimal text. The migration adds the CHECKs that forbid a negative client balance
in the database itself, whatever the Python above it does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from coffer.db import metadata

__all__ = ["WideAmount", "ledger_clients", "ledger_accounts", "ledger_transfers", "ledger_postings",
           "BALANCE_DIGITS"]

BALANCE_DIGITS = 38


class WideAmount(sa.types.TypeDecorator[int]):
    """A signed integer of up to 38 digits: NUMERIC(38,0) on PostgreSQL, decimal text on SQLite."""

    impl = sa.String(BALANCE_DIGITS + 1)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(BALANCE_DIGITS, 0, asdecimal=True))
        return dialect.type_descriptor(sa.String(BALANCE_DIGITS + 1))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return Decimal(value)
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ledger_clients = sa.Table(
    "ledger_clients", metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("account_number", sa.BigInteger(), nullable=False, unique=True),
    sa.Column("opened_at", sa.String(40), nullable=False),
)

ledger_accounts = sa.Table(
    "ledger_accounts", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("account_key", sa.String(200), nullable=False, unique=True),
    sa.Column("book", sa.String(16), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("client_id", sa.String(64), sa.ForeignKey("ledger_clients.client_id"), nullable=True),
    sa.Column("balance", WideAmount(), nullable=False),
    sa.Column("opened_at", sa.String(40), nullable=False),
)

ledger_transfers = sa.Table(
    "ledger_transfers", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("metadata", sa.Text(), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)

ledger_postings = sa.Table(
    "ledger_postings", metadata,
    sa.Column("transfer_id", _ID, primary_key=True),
    sa.Column("idx", sa.SmallInteger(), primary_key=True),
    sa.Column("account_id", _ID, nullable=False, index=True),
    sa.Column("side", sa.String(1), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
)
