"""The alerts' table: one row per alert, open until resolved. Only `coffer.alerts` uses it."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["alerts"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", _BIG, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("raised_at", sa.String(40), nullable=False),
    sa.Column("last_seen_at", sa.String(40), nullable=False),
    sa.Column("seen", sa.Integer(), nullable=False),
    sa.Column("resolved_at", sa.String(40), nullable=True),
    sa.Column("open_key", sa.String(250), nullable=True, unique=True),
)
