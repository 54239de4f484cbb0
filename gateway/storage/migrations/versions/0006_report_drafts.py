"""report drafts: when a draft of a month's report was last written

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_drafts",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("unit", sa.String(length=2), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month", "unit"),
    )


def downgrade() -> None:
    op.drop_table("report_drafts")
