"""Tables of the notify part. Nothing here ever holds a plaintext notice to a client with a key,
a ticket's plaintext, or any secret key: only public keys, ciphertexts and hashes."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["client_keys", "team_keys", "outbox", "tickets", "ticket_messages"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# One row per (client, state): at most one active and one pending key per client.
client_keys = sa.Table(
    "notify_client_keys", metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(8), primary_key=True),  # pending | active
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("armored", sa.Text(), nullable=False),
    sa.Column("created_at_s", _BIG, nullable=False),
    sa.Column("activated_at_s", _BIG, nullable=True),
    sa.Column("challenge_sha256", sa.String(64), nullable=True),
    sa.Column("challenge_expires_at_s", _BIG, nullable=True),
    sa.Column("challenge_attempts", sa.Integer(), nullable=False, server_default="0"),
)

team_keys = sa.Table(
    "notify_team_keys", metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("armored", sa.Text(), nullable=False),
    sa.Column("added_at_s", _BIG, nullable=False),
    sa.Column("added_by", sa.String(64), nullable=False),
)

outbox = sa.Table(
    "notify_outbox", metadata,
    sa.Column("id", _BIG, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=True, index=True),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("encrypted", sa.Boolean(), nullable=False),
    sa.Column("status", sa.String(8), nullable=False, index=True),  # pending | sent | dead
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at_s", _BIG, nullable=False, index=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("created_at_s", _BIG, nullable=False),
    sa.Column("sent_at_s", _BIG, nullable=True),
)

tickets = sa.Table(
    "notify_tickets", metadata,
    sa.Column("id", _BIG, primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(8), nullable=False),  # open | answered | closed
    sa.Column("created_at_s", _BIG, nullable=False),
    sa.Column("updated_at_s", _BIG, nullable=False),
)

ticket_messages = sa.Table(
    "notify_ticket_messages", metadata,
    sa.Column("id", _BIG, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", _BIG, sa.ForeignKey("notify_tickets.id"), nullable=False, index=True),
    sa.Column("author", sa.String(71), nullable=False),  # client:<id> | team:<name>
    sa.Column("at_s", _BIG, nullable=False),
    sa.Column("ciphertext", sa.Text(), nullable=False),  # armored OpenPGP message, never plaintext
    sa.Column("recipients", sa.Text(), nullable=False),  # comma-separated fingerprints
)
