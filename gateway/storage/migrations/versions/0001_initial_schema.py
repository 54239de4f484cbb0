"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_id", sa.String(length=300), nullable=False),
        sa.Column("rpc", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_access_log_at"), "access_log", ["at"], unique=False)
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    op.create_table(
        "cosignatures",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cosigner", sa.String(length=300), nullable=False),
        sa.Column("signature_line", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", "cosigner"),
    )
    op.create_table(
        "listing_steps",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("listing_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(
        op.f("ix_listing_steps_listing_id"), "listing_steps", ["listing_id"], unique=False
    )
    op.create_table(
        "listings",
        sa.Column("listing_id", sa.String(length=64), nullable=False),
        sa.Column("subject_key", sa.String(length=80), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("list_kind", sa.SmallInteger(), nullable=False),
        sa.Column("conduct", sa.SmallInteger(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("in_force", sa.Boolean(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("listing_id"),
    )
    op.create_index(op.f("ix_listings_deadline"), "listings", ["deadline"], unique=False)
    op.create_index(
        "ix_listings_filter", "listings", ["list_kind", "conduct", "region_code"], unique=False
    )
    op.create_index(op.f("ix_listings_subject_key"), "listings", ["subject_key"], unique=False)
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    log_state = op.create_table(
        "log_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(log_state, [{"id": 1, "tree_size": 0}])
    op.create_table(
        "members",
        sa.Column("member_id", sa.String(length=300), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "pending",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("listing_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(op.f("ix_pending_listing_id"), "pending", ["listing_id"], unique=False)
    op.create_table(
        "records",
        sa.Column("log_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("payload_type", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("signatures", sa.Text(), nullable=False),
        sa.Column("signer", sa.String(length=300), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("log_index"),
        sa.UniqueConstraint("record_id"),
    )
    op.create_table(
        "sanctions",
        sa.Column("listing_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=300), nullable=False),
        sa.Column("measure", sa.SmallInteger(), nullable=False),
        sa.Column("measure_other", sa.String(length=256), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("listing_id", "platform", "measure", "measure_other"),
    )


def downgrade() -> None:
    op.drop_table("sanctions")
    op.drop_table("records")
    op.drop_index(op.f("ix_pending_listing_id"), table_name="pending")
    op.drop_table("pending")
    op.drop_table("members")
    op.drop_table("log_state")
    op.drop_table("log_nodes")
    op.drop_index(op.f("ix_listings_subject_key"), table_name="listings")
    op.drop_index("ix_listings_filter", table_name="listings")
    op.drop_index(op.f("ix_listings_deadline"), table_name="listings")
    op.drop_table("listings")
    op.drop_index(op.f("ix_listing_steps_listing_id"), table_name="listing_steps")
    op.drop_table("listing_steps")
    op.drop_table("cosignatures")
    op.drop_table("checkpoints")
    op.drop_index(op.f("ix_access_log_at"), table_name="access_log")
    op.drop_table("access_log")
