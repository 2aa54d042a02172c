"""pipeline: durable jobs and leases of periodic work.

Revision ID: pipeline_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "pipeline_0001"
down_revision = None
branch_labels = ("pipeline",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_jobs",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_max", sa.Integer(), nullable=False),
        sa.Column("not_before_ms", _BIG, nullable=False),
        sa.Column("fence", _BIG, nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_until_ms", _BIG, nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_ms", _BIG, nullable=False),
        sa.Column("updated_ms", _BIG, nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_pipeline_jobs_dedupe_key"),
        sa.CheckConstraint("state IN ('ready', 'running', 'done', 'dead')", name="ck_pipeline_jobs_state"),
        sa.CheckConstraint("attempts >= 0 AND attempts <= attempts_max", name="ck_pipeline_jobs_attempts"),
    )
    op.create_index("ix_pipeline_jobs_ready", "pipeline_jobs", ["state", "kind", "not_before_ms", "id"])
    op.create_table(
        "pipeline_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("epoch", _BIG, nullable=False),
        sa.Column("lease_until_ms", _BIG, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipeline_leases")
    op.drop_index("ix_pipeline_jobs_ready", table_name="pipeline_jobs")
    op.drop_table("pipeline_jobs")
