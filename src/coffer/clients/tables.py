"""The client identity table: password hash (argon2id) and TOTP secret; no other secret."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["clients"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

clients = sa.Table(
    "clients_clients", metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("totp_secret", sa.String(200), nullable=False),  # sealed in the HSM when configured
    sa.Column("totp_pending_secret", sa.String(200), nullable=True),
    sa.Column("totp_last_step", _BIG, nullable=False),
    sa.Column("created_at_s", _BIG, nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False),
)
