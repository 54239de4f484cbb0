"""redactable records: disclosures apart from the log, erasures, a keyed lookup index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Protocol revision 4 (issue 18): a redactable record's disclosures are kept in their own
table, deleted on erasure; the records an erasure named are remembered; the listings'
lookup key becomes a keyed digest and may be NULL (erased), and each listing keeps its
disclosed values beside it (``disclosed``: a lookup reads them from the one row).
Keys stored in the clear before this revision ("uscc:..." / "person:...") are turned
into digests by the gateway at start (``gateway.storage.disclosures.digest_clear_keys``):
the digest key derives from the gateway's signing key, which a migration does not hold.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("grp", sa.SmallInteger(), primary_key=True),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "erased",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("erasure_id", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("listings") as batch:
        batch.alter_column("subject_key", existing_type=sa.String(80), nullable=True)
        batch.add_column(sa.Column("disclosed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("disclosed")
    op.drop_table("erased")
    op.drop_table("disclosures")
