"""notify: client and team OpenPGP keys, the mail outbox, encrypted tickets.

Revision ID: notify_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_client_keys",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(8), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("armored", sa.Text(), nullable=False),
        sa.Column("created_at_s", _BIG, nullable=False),
        sa.Column("activated_at_s", _BIG, nullable=True),
        sa.Column("challenge_sha256", sa.String(64), nullable=True),
        sa.Column("challenge_expires_at_s", _BIG, nullable=True),
        sa.Column("challenge_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "notify_team_keys",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("armored", sa.Text(), nullable=False),
        sa.Column("added_at_s", _BIG, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at_s", _BIG, nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at_s", _BIG, nullable=False),
        sa.Column("sent_at_s", _BIG, nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_notify_outbox_idempotency_key"),
    )
    op.create_index("ix_notify_outbox_client_id", "notify_outbox", ["client_id"])
    op.create_index("ix_notify_outbox_status", "notify_outbox", ["status"])
    op.create_index("ix_notify_outbox_next_attempt_at_s", "notify_outbox", ["next_attempt_at_s"])
    op.create_table(
        "notify_tickets",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at_s", _BIG, nullable=False),
        sa.Column("updated_at_s", _BIG, nullable=False),
    )
    op.create_index("ix_notify_tickets_client_id", "notify_tickets", ["client_id"])
    op.create_table(
        "notify_ticket_messages",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", _BIG, sa.ForeignKey("notify_tickets.id"), nullable=False),
        sa.Column("author", sa.String(71), nullable=False),
        sa.Column("at_s", _BIG, nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
    )
    op.create_index("ix_notify_ticket_messages_ticket_id", "notify_ticket_messages", ["ticket_id"])


def downgrade() -> None:
    for table in ("notify_ticket_messages", "notify_tickets", "notify_outbox", "notify_team_keys",
                  "notify_client_keys"):
        op.drop_table(table)
