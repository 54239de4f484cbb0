"""compliance: an index for escalation candidates and overdue counts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The ticker asks every round for listings in force, not yet escalated, whose
    # deadline has passed; without this index that scans every past deadline.
    op.create_index("ix_listings_due", "listings", ["in_force", "step", "deadline"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_listings_due", table_name="listings")
