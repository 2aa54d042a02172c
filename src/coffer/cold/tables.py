"""The coordinator's cold custody tables: public data only (descriptors, addresses, batches).
No private key or seed is ever stored here."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["cold_wallets", "cold_signers", "cold_addresses", "cold_deposits", "cold_withdrawals", "cold_batches",
           "cold_draws"]

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

cold_wallets = sa.Table(
    "cold_wallets", metadata,
    sa.Column("wallet_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("descriptor", sa.Text(), nullable=False),
    sa.Column("change_descriptor", sa.Text(), nullable=False),
    sa.Column("threshold", sa.Integer(), nullable=False),
    sa.Column("signers", sa.Integer(), nullable=False),
    sa.Column("network", sa.String(16), nullable=False),
    sa.Column("bsms", sa.Text(), nullable=False),
    sa.Column("next_receive_index", sa.Integer(), nullable=False),
    sa.Column("next_change_index", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

cold_signers = sa.Table(
    "cold_signers", metadata,
    sa.Column("signer_id", sa.Integer(), primary_key=True),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(8), nullable=False),
    sa.Column("xpub", sa.Text(), nullable=False),
    sa.Column("identity_pubkey", sa.String(64), nullable=False),
    sa.Column("registration_signature", sa.String(128), nullable=False),
    sa.Column("last_seen", sa.String(40), nullable=True),
)

cold_addresses = sa.Table(
    "cold_addresses", metadata,
    sa.Column("script_hex", sa.String(68), primary_key=True),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("branch", sa.Integer(), nullable=False),
    sa.Column("idx", sa.Integer(), nullable=False),
    sa.Column("address", sa.String(100), nullable=False, unique=True),
    sa.Column("client_id", sa.String(128), nullable=True, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("wallet_id", "branch", "idx", name="uq_cold_addresses_path"),
)

cold_deposits = sa.Table(
    "cold_deposits", metadata,
    sa.Column("txid", sa.String(64), primary_key=True),
    sa.Column("vout", sa.Integer(), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("address", sa.String(100), nullable=False),
    sa.Column("amount_sats", BIGINT, nullable=False),
    sa.Column("height", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | credited | reorged
    sa.Column("credited_height", sa.Integer(), nullable=True),
    sa.Column("seen_at", sa.String(40), nullable=False),
    sa.CheckConstraint("amount_sats > 0", name="amount_positive"),
)

cold_withdrawals = sa.Table(
    "cold_withdrawals", metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=True),
    sa.Column("destination", sa.String(100), nullable=False),
    sa.Column("amount_sats", BIGINT, nullable=False),
    sa.Column("payment", sa.Text(), nullable=False),  # request, approvals, attestation (public)
    sa.Column("status", sa.String(16), nullable=False),  # queued | batched | settled | released
    sa.Column("batch_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.CheckConstraint("amount_sats > 0", name="amount_positive"),
)

cold_batches = sa.Table(
    "cold_batches", metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # sealed | signed | broadcast | confirmed | abandoned
    sa.Column("psbt", sa.LargeBinary(), nullable=False),
    sa.Column("unsigned_txid", sa.String(64), nullable=False),
    sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
    sa.Column("txid", sa.String(64), nullable=True),
    sa.Column("tip_hash", sa.String(64), nullable=False),
    sa.Column("draw", sa.Text(), nullable=True),
    sa.Column("fee_sats", BIGINT, nullable=False),
    sa.Column("change_sats", BIGINT, nullable=False),
    sa.Column("change_index", sa.Integer(), nullable=True),
    sa.Column("inputs", sa.Text(), nullable=False),
    sa.Column("confirmed_height", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)

cold_draws = sa.Table(
    "cold_draws", metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("attempt", sa.Integer(), primary_key=True),
    sa.Column("draw", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
)
