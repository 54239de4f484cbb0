"""due process: the deadline in force, identification and open disputes per listing;
authority scopes in the member projection

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Listings signed by an authority are identified when signed and keep their deadline.
Listings signed by a platform before protocol revision 3 had no identification step:
they become *reported* (``due_at`` NULL), as the rules of revision 3 read them; an
authority of their unit identifies them with an IDENTIFIED step (docs/OPERATIONS.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ESCALATED, _NOTICE = 6, 2


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("identified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dispute_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_listings_due_at", "listings", ["in_force", "step", "due_at"])
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("scope", sa.SmallInteger(), nullable=True))
    op.execute(
        "UPDATE listings SET identified_at = listed_at, due_at = deadline "
        "WHERE issuer LIKE '%/authority/%'"
    )
    # A platform's listing escalated before revision 3 is no longer escalated (it was
    # never identified): it shows as listed.
    op.execute(
        f"UPDATE listings SET step = 1 WHERE step = {_ESCALATED} "  # noqa: S608
        "AND issuer NOT LIKE '%/authority/%'"
    )
    # Authorities registered before member-record.v2 speak for their unit (1).
    op.execute("UPDATE members SET scope = 1 WHERE role = 2")


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("scope")
    op.drop_index("ix_listings_due_at", table_name="listings")
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("dispute_since")
        batch.drop_column("identified_at")
        batch.drop_column("due_at")
