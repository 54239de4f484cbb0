"""access log: members' reads per day and per call, subjects as keyed digests

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

The old ``access_log`` table (one row per call, subjects in clear) stays until the
gateway, which holds the digest key, has converted its rows at start
(``gateway.service.access_log.AccessLog.convert_legacy``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("member_id", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id"),
    )
    op.create_table(
        "access_days",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("member_no", sa.Integer(), nullable=False),
        sa.Column("rpc", sa.SmallInteger(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("items", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "member_no", "rpc"),
    )
    op.create_table(
        "access_reads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("member_no", sa.Integer(), nullable=False),
        sa.Column("second", sa.Integer(), nullable=False),
        sa.Column("rpc", sa.SmallInteger(), nullable=False),
        sa.Column("digests", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_access_reads_day"), "access_reads", ["day"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_access_reads_day"), table_name="access_reads")
    op.drop_table("access_reads")
    op.drop_table("access_days")
    op.drop_table("access_members")
