"""recon: the halt switch, security officers, scheduled runs and on-chain results.

Revision ID: recon_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "recon_0001"
down_revision = None
branch_labels = ("recon",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    state = op.create_table(
        "recon_halt_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", _BIG, nullable=False),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.Column("halt_id", sa.String(40), nullable=True),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_recon_halt_state_single_row"),
    )
    op.bulk_insert(state, [{"id": 1, "seq": 0, "halted": False, "halt_id": None,
                            "updated_at": "1970-01-01T00:00:00+00:00"}])
    op.create_table(
        "recon_halts",
        sa.Column("halt_id", sa.String(40), primary_key=True),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("halted_at", sa.String(40), nullable=False),
        sa.Column("seq", _BIG, nullable=False),
        sa.Column("publication_signature", sa.String(200), nullable=True),
        sa.Column("resumed_at", sa.String(40), nullable=True),
        sa.Column("resumed_by", sa.String(200), nullable=True),
        sa.Column("resume_reason", sa.Text(), nullable=True),
        sa.Column("resume_signatures", sa.Text(), nullable=True),
        sa.Column("resume_publication_signature", sa.String(200), nullable=True),
    )
    op.create_table(
        "recon_officers",
        sa.Column("officer_id", sa.String(64), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("registered_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("period", _BIG, nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.UniqueConstraint("job", "period", name="uq_recon_runs_job_period"),
    )
    op.create_table(
        "recon_locks",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("lease_until_ms", _BIG, nullable=False),
    )
    op.create_table(
        "recon_onchain_lines",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("recon_runs.id"), primary_key=True),
        sa.Column("asset", sa.String(64), primary_key=True),
        sa.Column("wallet", sa.String(64), primary_key=True),
        sa.Column("height", _BIG, nullable=False),
        sa.Column("scripts", _BIG, nullable=False),
        sa.Column("ledger_custody", sa.String(80), nullable=False),
        sa.Column("chain_holdings", sa.String(80), nullable=False),
        sa.Column("pending_deposits", sa.String(80), nullable=False),
        sa.Column("inflight_withdrawals", sa.String(80), nullable=False),
        sa.Column("difference", sa.String(80), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "recon_onchain_assets",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("recon_runs.id"), primary_key=True),
        sa.Column("asset", sa.String(64), primary_key=True),
        sa.Column("client_liabilities", sa.String(80), nullable=False),
        sa.Column("chain_holdings", sa.String(80), nullable=False),
        sa.Column("backing", sa.String(80), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for table in ("recon_onchain_assets", "recon_onchain_lines", "recon_locks", "recon_runs", "recon_officers",
                  "recon_halts", "recon_halt_state"):
        op.drop_table(table)
