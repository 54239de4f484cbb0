"""publication periods: when each listing closed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The query service hides a closed listing from platforms it does not concern once its
publication ended (issue 18, gateway.core.visibility); that needs the earliest closing
step's effective_at, kept beside the listing. Listings closed before this revision get
it from their stored steps (CORRECTED 4, REMOVED 5, WITHDRAWN 10; RETIRED 11 is new).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE listings SET closed_at = (SELECT MIN(s.effective_at) FROM listing_steps s "
        "WHERE s.listing_id = listings.listing_id AND s.step IN (4, 5, 10)) "
        "WHERE in_force = false"
    )


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("closed_at")
