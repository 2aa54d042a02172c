"""web: sessions (token hashes only).

Revision ID: web_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "web_0001"
down_revision = None
branch_labels = ("web",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at_s", _BIG, nullable=False),
        sa.Column("last_seen_at_s", _BIG, nullable=False),
        sa.Column("expires_at_s", _BIG, nullable=False),
    )
    op.create_index("ix_web_sessions_subject", "web_sessions", ["subject"])
    op.create_index("ix_web_sessions_expires_at_s", "web_sessions", ["expires_at_s"])


def downgrade() -> None:
    op.drop_table("web_sessions")
