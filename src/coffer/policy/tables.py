"""The coordinator-side tables of the policy part (other parts call PolicyService, never these)."""

from __future__ import annotations

import sqlalchemy as sa

from coffer.db import metadata

__all__ = ["closed_requests", "operators", "policy_versions", "policy_signatures", "requests", "approvals", "decisions",
           "attestations", "whitelist", "frozen_accounts", "credentials", "checkpoints"]

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

operators = sa.Table(
    "policy_operators", metadata,
    sa.Column("operator_id", sa.String(64), primary_key=True),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("ed25519_public_key", sa.String(64), nullable=False, unique=True),
    sa.Column("added_at_s", _BIG, nullable=False),
    sa.Column("added_by", sa.String(64), nullable=False),
)

policy_versions = sa.Table(
    "policy_versions", metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("policy_hash", sa.String(64), nullable=False),
    sa.Column("policies", sa.Text(), nullable=False),
    sa.Column("schema", sa.Text(), nullable=False),
    sa.Column("proposed_by", sa.String(64), nullable=False),
    sa.Column("proposed_at_s", _BIG, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # proposed | active | superseded
    sa.Column("activated_at_s", _BIG, nullable=True),
)

policy_signatures = sa.Table(
    "policy_version_signatures", metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("operator_id", sa.String(64), primary_key=True),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Column("signed_at_s", _BIG, nullable=False),
)

requests = sa.Table(
    "policy_requests", metadata,
    sa.Column("request_digest", sa.String(64), primary_key=True),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.String(40), nullable=False),
    sa.Column("created_at_s", _BIG, nullable=False),
)

approvals = sa.Table(
    "policy_approvals", metadata,
    sa.Column("request_digest", sa.String(64), primary_key=True),
    sa.Column("operator_id", sa.String(64), primary_key=True),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("received_at_s", _BIG, nullable=False),
)

decisions = sa.Table(
    "policy_decisions", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("request_digest", sa.String(64), nullable=False, index=True),
    sa.Column("allowed", sa.Boolean(), nullable=False),
    sa.Column("refused", sa.Boolean(), nullable=False),
    sa.Column("route", sa.String(8), nullable=False),
    sa.Column("reasons", sa.Text(), nullable=False),
    sa.Column("policy_hash", sa.String(64), nullable=False),
    sa.Column("decided_at_s", _BIG, nullable=False),
)

attestations = sa.Table(
    "policy_attestations", metadata,
    sa.Column("request_digest", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("asset", sa.String(16), nullable=False),
    sa.Column("amount_minor", sa.String(40), nullable=False),
    sa.Column("route", sa.String(8), nullable=False),
    sa.Column("attested_at_s", _BIG, nullable=False, index=True),
    sa.Column("document", sa.Text(), nullable=False),
)

whitelist = sa.Table(
    "policy_whitelist", metadata,
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("asset", sa.String(16), primary_key=True),
    sa.Column("destination", sa.String(128), primary_key=True),
    sa.Column("added_at_s", _BIG, nullable=False),
    sa.Column("added_by", sa.String(71), nullable=False),
)

frozen_accounts = sa.Table(
    "policy_frozen_accounts", metadata,
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("frozen_at_s", _BIG, nullable=False),
    sa.Column("frozen_by", sa.String(64), nullable=False),
)

credentials = sa.Table(
    "policy_operator_credentials", metadata,
    sa.Column("operator_id", sa.String(64), primary_key=True),
    sa.Column("scheme", sa.String(32), primary_key=True),
    sa.Column("public_key", sa.Text(), nullable=False),  # hex; the scheme's own key encoding
    sa.Column("added_at_s", _BIG, nullable=False),
    sa.Column("added_by", sa.String(64), nullable=False),
)

checkpoints = sa.Table(
    "policy_audit_checkpoints", metadata,
    sa.Column("seq", _BIG, primary_key=True, autoincrement=False),
    sa.Column("head_digest", sa.String(64), nullable=False),
    sa.Column("at_s", _BIG, nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Column("public_key", sa.String(130), nullable=False),
)

closed_requests = sa.Table(
    "policy_closed_requests", metadata,
    sa.Column("request_digest", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("closed_by", sa.String(200), nullable=False),
    sa.Column("closed_at_s", _BIG, nullable=False),
)
