"""policy: operators' further credentials by scheme (e.g. a WebAuthn public key).

Revision ID: policy_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "policy_0002"
down_revision = "policy_0001"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "policy_operator_credentials",
        sa.Column("operator_id", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("scheme", sa.String(32), primary_key=True, autoincrement=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_at_s", _BIG, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("policy_operator_credentials")
