"""integrations: API keys for the exchange API, seen signatures, idempotency records.

Revision ID: integrations_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "integrations_0001"
down_revision = None
branch_labels = ("integrations",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "integrations_keys",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_s", _BIG, nullable=False),
        sa.Column("expires_s", _BIG, nullable=True),
        sa.Column("replaced_by", sa.String(40), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("last_used_s", _BIG, nullable=True),
        sa.CheckConstraint("state IN ('active', 'revoked')", name="ck_integrations_keys_state"),
    )
    op.create_table(
        "integrations_seen",
        sa.Column("signature", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("at_s", _BIG, nullable=False),
    )
    op.create_index("ix_integrations_seen_at_s", "integrations_seen", ["at_s"])
    op.create_table(
        "integrations_idempotency",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(100), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("at_s", _BIG, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("integrations_idempotency")
    op.drop_index("ix_integrations_seen_at_s", table_name="integrations_seen")
    op.drop_table("integrations_seen")
    op.drop_table("integrations_keys")
