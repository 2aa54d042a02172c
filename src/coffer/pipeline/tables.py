"""The pipeline's tables: durable jobs and the leases of periodic work.

Only `coffer.pipeline` reads or writes them; other parts call its functions.
"""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["jobs", "leases"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "pipeline_jobs", metadata,
    sa.Column("id", _BIG, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
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
    sa.CheckConstraint("state IN ('ready', 'running', 'done', 'dead')", name="state"),
    sa.CheckConstraint("attempts >= 0 AND attempts <= attempts_max", name="attempts"),
)
sa.Index("ix_pipeline_jobs_ready", jobs.c.state, jobs.c.kind, jobs.c.not_before_ms, jobs.c.id)

leases = sa.Table(
    "pipeline_leases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=True),
    sa.Column("epoch", _BIG, nullable=False),
    sa.Column("lease_until_ms", _BIG, nullable=False),
)
