"""The integrations' tables: API keys (secrets sealed), seen signatures, idempotency records.

Only `coffer.integrations` and the exchange API read or write them.
"""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["api_keys", "seen_signatures", "idempotency"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

api_keys = sa.Table(
    "integrations_keys", metadata,
    sa.Column("key_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("secret_sealed", sa.Text(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_s", _BIG, nullable=False),
    sa.Column("expires_s", _BIG, nullable=True),
    sa.Column("replaced_by", sa.String(40), nullable=True),
    sa.Column("revoked_by", sa.String(200), nullable=True),
    sa.Column("last_used_s", _BIG, nullable=True),
    sa.CheckConstraint("state IN ('active', 'revoked')", name="state"),
)

seen_signatures = sa.Table(
    "integrations_seen", metadata,
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(40), nullable=False),
    sa.Column("at_s", _BIG, nullable=False),
)

idempotency = sa.Table(
    "integrations_idempotency", metadata,
    sa.Column("key_id", sa.String(40), primary_key=True),
    sa.Column("idempotency_key", sa.String(100), primary_key=True),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("response", sa.Text(), nullable=False),
    sa.Column("at_s", _BIG, nullable=False),
)
