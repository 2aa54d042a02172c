"""The coordinator's hot-wallet tables: payments and their state. Public data only."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["hot_payments"]

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

hot_payments = sa.Table(
    "hot_payments", metadata,
    sa.Column("request_digest", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("destination", sa.String(128), nullable=False),
    sa.Column("amount_sats", BIGINT, nullable=False),
    sa.Column("fee_sats", BIGINT, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # built | signed | broadcast | confirmed
    sa.Column("unsigned_tx", sa.Text(), nullable=False),
    sa.Column("prevouts", sa.Text(), nullable=False),  # JSON [{txid, vout, amount_sats, script_pubkey}]
    sa.Column("signed_tx", sa.Text(), nullable=True),
    sa.Column("txid", sa.String(64), nullable=False),
    sa.Column("confirmed_height", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
