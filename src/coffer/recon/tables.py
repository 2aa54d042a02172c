"""Reconciliation's tables: the halt switch, officers, scheduled runs and on-chain results.

Only `coffer.recon` reads or writes them; other parts call its functions.
"""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["halt_state", "halts", "officers", "runs", "locks", "onchain_lines", "onchain_assets"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

halt_state = sa.Table(
    "recon_halt_state", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("seq", _BIG, nullable=False),
    sa.Column("halted", sa.Boolean(), nullable=False),
    sa.Column("halt_id", sa.String(40), nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)

halts = sa.Table(
    "recon_halts", metadata,
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

officers = sa.Table(
    "recon_officers", metadata,
    sa.Column("officer_id", sa.String(64), primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False, unique=True),
    sa.Column("registered_at", sa.String(40), nullable=False),
)

runs = sa.Table(
    "recon_runs", metadata,
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

locks = sa.Table(
    "recon_locks", metadata,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("lease_until_ms", _BIG, nullable=False),
)

onchain_lines = sa.Table(
    "recon_onchain_lines", metadata,
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

onchain_assets = sa.Table(
    "recon_onchain_assets", metadata,
    sa.Column("run_id", sa.Integer(), sa.ForeignKey("recon_runs.id"), primary_key=True),
    sa.Column("asset", sa.String(64), primary_key=True),
    sa.Column("client_liabilities", sa.String(80), nullable=False),
    sa.Column("chain_holdings", sa.String(80), nullable=False),
    sa.Column("backing", sa.String(80), nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
)
