"""eth: the Ethereum hot wallet (payments, deposit addresses, credited deposits, scan cursor).

Revision ID: eth_0001
"""

from alembic import op

from coffer.eth import tables

revision = "eth_0001"
down_revision = None
branch_labels = ("eth",)
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in (tables.eth_payments, tables.eth_deposit_addresses, tables.eth_deposits, tables.eth_scan):
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in (tables.eth_scan, tables.eth_deposits, tables.eth_deposit_addresses, tables.eth_payments):
        table.drop(bind)
