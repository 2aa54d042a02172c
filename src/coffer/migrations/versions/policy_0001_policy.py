"""policy: operators, policy versions and signatures, requests, approvals, decisions,
attestations, whitelist, frozen accounts, audit checkpoints.

Revision ID: policy_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "policy_0001"
down_revision = None
branch_labels = ("policy",)
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "policy_operators",
        sa.Column("operator_id", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("ed25519_public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("added_at_s", _BIG, nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("proposed_at_s", _BIG, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("activated_at_s", _BIG, nullable=True),
    )
    op.create_table(
        "policy_version_signatures",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("operator_id", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("signed_at_s", _BIG, nullable=False),
    )
    op.create_table(
        "policy_requests",
        sa.Column("request_digest", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.String(40), nullable=False),
        sa.Column("created_at_s", _BIG, nullable=False),
    )
    op.create_table(
        "policy_approvals",
        sa.Column("request_digest", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("operator_id", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("received_at_s", _BIG, nullable=False),
    )
    op.create_table(
        "policy_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("route", sa.String(8), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("decided_at_s", _BIG, nullable=False),
    )
    op.create_index("ix_policy_decisions_request_digest", "policy_decisions", ["request_digest"])
    op.create_table(
        "policy_attestations",
        sa.Column("request_digest", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.String(40), nullable=False),
        sa.Column("route", sa.String(8), nullable=False),
        sa.Column("attested_at_s", _BIG, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
    )
    op.create_index("ix_policy_attestations_attested_at_s", "policy_attestations", ["attested_at_s"])
    op.create_table(
        "policy_whitelist",
        sa.Column("account", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("asset", sa.String(16), primary_key=True, autoincrement=False),
        sa.Column("destination", sa.String(128), primary_key=True, autoincrement=False),
        sa.Column("added_at_s", _BIG, nullable=False),
        sa.Column("added_by", sa.String(71), nullable=False),
    )
    op.create_table(
        "policy_frozen_accounts",
        sa.Column("account", sa.String(64), primary_key=True, autoincrement=False),
        sa.Column("frozen_at_s", _BIG, nullable=False),
        sa.Column("frozen_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "policy_audit_checkpoints",
        sa.Column("seq", _BIG, primary_key=True, autoincrement=False),
        sa.Column("head_digest", sa.String(64), nullable=False),
        sa.Column("at_s", _BIG, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("public_key", sa.String(130), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("policy_audit_checkpoints")
    op.drop_table("policy_frozen_accounts")
    op.drop_table("policy_whitelist")
    op.drop_table("policy_attestations")
    op.drop_table("policy_decisions")
    op.drop_table("policy_approvals")
    op.drop_table("policy_requests")
    op.drop_table("policy_version_signatures")
    op.drop_table("policy_versions")
    op.drop_table("policy_operators")
