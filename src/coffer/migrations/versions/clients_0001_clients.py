"""clients: client identities (argon2id password hash, TOTP secret).

Revision ID: clients_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "clients_0001"
down_revision = None
branch_labels = ("clients",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "clients_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=False),
        sa.Column("totp_pending_secret", sa.String(64), nullable=True),
        sa.Column("totp_last_step", _BIG, nullable=False),
        sa.Column("created_at_s", _BIG, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clients_clients")
