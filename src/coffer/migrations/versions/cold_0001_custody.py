"""cold: wallets, signers, deposit addresses, deposits, withdrawals, batches, draws.

Revision ID: cold_0001
"""

from alembic import op

from coffer.cold import tables

revision = "cold_0001"
down_revision = None
branch_labels = ("cold",)
depends_on = None

_TABLES = [tables.cold_wallets, tables.cold_signers, tables.cold_addresses, tables.cold_deposits,
           tables.cold_withdrawals, tables.cold_batches, tables.cold_draws]


def upgrade() -> None:
    bind = op.get_bind()
    for table in _TABLES:
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_TABLES):
        table.drop(bind)
