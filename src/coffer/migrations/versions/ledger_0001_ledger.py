"""ledger: clients, accounts with balances, transfers, postings; CHECKs that keep client balances >= 0.

Revision ID: ledger_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BALANCE_DIGITS = 38


def _balance_checks(postgres: bool) -> list[sa.CheckConstraint]:
    if postgres:
        return [
            sa.CheckConstraint("book <> 'client' OR balance >= 0", name="client_balance_nonnegative"),
            sa.CheckConstraint(f"abs(balance) < 1e{_BALANCE_DIGITS}", name="balance_range"),
        ]
    # SQLite keeps balances as canonical decimal text: digits only, a leading '-' only off the client book
    digits = "({x} <> '' AND {x} NOT GLOB '*[^0-9]*' AND ({x} = '0' OR {x} NOT GLOB '0*'))"
    return [
        sa.CheckConstraint(
            f"length(balance) <= {_BALANCE_DIGITS + 1} AND ({digits.format(x='balance')} OR "
            f"(book <> 'client' AND substr(balance, 1, 1) = '-' AND balance <> '-0' AND "
            f"{digits.format(x='substr(balance, 2)')}))",
            name="client_balance_nonnegative"),
    ]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    balance_type = sa.Numeric(_BALANCE_DIGITS, 0) if postgres else sa.String(_BALANCE_DIGITS + 1)
    op.create_table(
        "ledger_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("account_number", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("opened_at", sa.String(40), nullable=False),
        sa.CheckConstraint("account_number > 0", name="account_number_positive"),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("account_key", sa.String(200), nullable=False, unique=True),
        sa.Column("book", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(64), sa.ForeignKey("ledger_clients.client_id"), nullable=True),
        sa.Column("balance", balance_type, nullable=False),
        sa.Column("opened_at", sa.String(40), nullable=False),
        sa.CheckConstraint("book IN ('client', 'company', 'custody', 'external')", name="book_known"),
        sa.CheckConstraint("(book = 'client') = (client_id IS NOT NULL)", name="client_id_iff_client"),
        *_balance_checks(postgres),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.CheckConstraint("kind <> 'adjustment' OR length(trim(reason)) > 0", name="adjustment_reason"),
    )
    # No foreign keys on postings: a per-row FK check costs more than the rest of the insert (the
    # batched write path is COPY). Only Ledger writes postings, with ids it has just resolved, and
    # Ledger.check_consistency verifies that every posting names an account and a transfer.
    op.create_table(
        "ledger_postings",
        sa.Column("transfer_id", _ID, primary_key=True),
        sa.Column("idx", sa.SmallInteger(), primary_key=True),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("side IN ('D', 'C')", name="side_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )
    op.create_index("ix_ledger_postings_account_id", "ledger_postings", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_postings_account_id", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
    op.drop_table("ledger_clients")
