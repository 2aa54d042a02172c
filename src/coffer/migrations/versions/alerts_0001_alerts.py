"""alerts: halts, failed checks, stuck jobs and unseen key holders, open until resolved.

Revision ID: alerts_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision = None
branch_labels = ("alerts",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.String(40), nullable=False),
        sa.Column("last_seen_at", sa.String(40), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.String(40), nullable=True),
        sa.Column("open_key", sa.String(250), nullable=True),
        sa.UniqueConstraint("open_key", name="uq_alerts_open_key"),
    )


def downgrade() -> None:
    op.drop_table("alerts")
