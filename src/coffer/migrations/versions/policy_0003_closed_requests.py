"""policy: requests closed before attestation (cancelled by the client or the exchange).

Revision ID: policy_0003_closed
"""

import sqlalchemy as sa
from alembic import op

revision = "policy_0003_closed"
down_revision = "policy_0002"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "policy_closed_requests",
        sa.Column("request_digest", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=False),
        sa.Column("closed_at_s", _BIG, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("policy_closed_requests")
