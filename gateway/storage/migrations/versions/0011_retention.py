"""retention: the redactable records of this trust domain, by listing and kind

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Retention (issue 18 item 6) erases a trust domain's redactable records a set number of
days after the listing they belong to closed. A sanction confirmation or a government
measure names its listing only inside its payload, so the retention service reads each
such record once and keeps the link here (``gateway.service.retention``). The table
starts empty: the service fills it from the log, oldest first, at the gateway's start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_records",
        sa.Column("log_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("listing_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
    )
    op.create_index("ix_retention_records_kind", "retention_records", ["kind", "log_index"])


def downgrade() -> None:
    op.drop_index("ix_retention_records_kind", table_name="retention_records")
    op.drop_table("retention_records")
