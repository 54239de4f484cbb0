"""records by payload type: an index on (payload_type, log_index)

Several readers take the records of one payload type in log order: holiday calendars,
alliance policies, government measures, monthly reports and their submissions. Without
the index each such read scanned the whole log (a PostgreSQL gateway with 40,000
listings spent over 30 s in the compliance ticker's calendar reads). Appends add one
entry to it, at the end of its type's range.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_type_index", "records", ["payload_type", "log_index"])


def downgrade() -> None:
    op.drop_index("ix_records_type_index", table_name="records")
