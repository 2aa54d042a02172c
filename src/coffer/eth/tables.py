"""The coordinator's Ethereum hot-wallet tables. Public data only; wei amounts as decimal strings
(they exceed 64 bits)."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["eth_payments", "eth_deposit_addresses", "eth_deposits", "eth_scan"]

WEI = sa.String(80)

eth_payments = sa.Table(
    "eth_payments", metadata,
    sa.Column("payment_id", sa.String(100), primary_key=True),  # request digest, or "sweep:<address>:<nonce>"
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # withdrawal | deposit_sweep
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("sender", sa.String(42), nullable=False),
    sa.Column("nonce", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("destination", sa.String(42), nullable=False),
    sa.Column("value_wei", WEI, nullable=False),
    sa.Column("spend", sa.Text(), nullable=False),  # EthSpend JSON, fixed before signing
    sa.Column("status", sa.String(16), nullable=False),  # built | signed | broadcast | confirmed | failed
    sa.Column("raw_tx", sa.Text(), nullable=True),
    sa.Column("tx_hash", sa.String(66), nullable=True),
    sa.Column("fee_wei", WEI, nullable=True),
    sa.Column("confirmed_block", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("sender", "nonce", name="uq_eth_payment_sender_nonce"),  # one payment per nonce
)

eth_deposit_addresses = sa.Table(
    "eth_deposit_addresses", metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("derivation_index", sa.Integer(), nullable=False),
    sa.Column("address", sa.String(42), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("key_id", "derivation_index", name="uq_eth_deposit_index"),
)

eth_deposits = sa.Table(
    "eth_deposits", metadata,
    sa.Column("tx_hash", sa.String(66), primary_key=True),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("address", sa.String(42), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("amount_wei", WEI, nullable=False),
    sa.Column("block_number", sa.Integer(), nullable=False),
    sa.Column("credited_at", sa.String(40), nullable=False),
)

eth_scan = sa.Table(
    "eth_scan", metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("height", sa.Integer(), nullable=False),  # last block scanned for deposits
)
