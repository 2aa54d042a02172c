"""The coordinator's MPC tables: public key packages and who holds which share. Never a share."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["mpc_keys"]

mpc_keys = sa.Table(
    "mpc_keys", metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("suite", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("threshold", sa.Integer(), nullable=False),
    sa.Column("group_public_key", sa.String(130), nullable=False),
    sa.Column("public_package", sa.Text(), nullable=False),
    sa.Column("members", sa.Text(), nullable=False),  # JSON {identifier: {cosigner, hostpubkey}}
    sa.Column("revoked", sa.Text(), nullable=False),  # JSON [co-signer ids]
    sa.Column("status", sa.String(16), nullable=False),  # active | retired
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
