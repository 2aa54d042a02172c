"""por: lifetime account nonces for the liabilities tree.

Revision ID: por_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "por_0001"
down_revision = None
branch_labels = ("por",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "por_account_nonces",
        sa.Column("account_number", sa.String(20), primary_key=True),
        sa.Column("nonce_hex", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("por_account_nonces")
