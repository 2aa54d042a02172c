"""Web sessions: only a hash of the session token is stored."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["sessions"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

sessions = sa.Table(
    "web_sessions", metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # client | operator
    sa.Column("subject", sa.String(64), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at_s", _BIG, nullable=False),
    sa.Column("last_seen_at_s", _BIG, nullable=False),
    sa.Column("expires_at_s", _BIG, nullable=False, index=True),
)
