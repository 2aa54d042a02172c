"""clients: room for TOTP secrets sealed in the HSM.

Revision ID: clients_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "clients_0002"
down_revision = "clients_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients_clients") as batch:
        batch.alter_column("totp_secret", type_=sa.String(200), existing_type=sa.String(64), existing_nullable=False)
        batch.alter_column("totp_pending_secret", type_=sa.String(200), existing_type=sa.String(64),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("clients_clients") as batch:
        batch.alter_column("totp_secret", type_=sa.String(64), existing_type=sa.String(200), existing_nullable=False)
        batch.alter_column("totp_pending_secret", type_=sa.String(64), existing_type=sa.String(200),
                           existing_nullable=True)
