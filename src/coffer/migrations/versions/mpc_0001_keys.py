"""mpc: the coordinator's public key directory (group keys, public shares, members).

Revision ID: mpc_0001
"""

from alembic import op

from coffer.mpc.service import tables

revision = "mpc_0001"
down_revision = None
branch_labels = ("mpc",)
depends_on = None


def upgrade() -> None:
    tables.mpc_keys.create(op.get_bind())


def downgrade() -> None:
    tables.mpc_keys.drop(op.get_bind())
