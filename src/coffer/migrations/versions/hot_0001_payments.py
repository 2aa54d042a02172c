"""hot: the hot wallet's payments (accelerated withdrawals, sweeps).

Revision ID: hot_0001
"""

from alembic import op

from coffer.hot import tables

revision = "hot_0001"
down_revision = None
branch_labels = ("hot",)
depends_on = None


def upgrade() -> None:
    tables.hot_payments.create(op.get_bind())


def downgrade() -> None:
    tables.hot_payments.drop(op.get_bind())
