"""disclosures keyed by their record's log index

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Issue 19 (the append path): ``disclosures`` was keyed by ``(record_id, grp)``, a random
key, so every appended record wrote its disclosures into a page of its own somewhere in
the primary key's tree; at 10^6 records that was about a third of the pages an append
writes (docs/PERFORMANCE.md, "Key layouts"). Keyed by ``(log_index, grp)`` the rows of
consecutive records sit side by side at the end of the tree. On SQLite the table is the
key's tree itself (WITHOUT ROWID). The rows are copied over with their record's log
index; a record id is found through ``records``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _table(name: str, key: str, key_type: sa.types.TypeEngine[Any]) -> None:
    op.create_table(
        name,
        sa.Column(key, key_type, primary_key=True, autoincrement=False),
        sa.Column("grp", sa.SmallInteger(), primary_key=True),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        **({"sqlite_with_rowid": False} if key == "log_index" else {}),
    )


def upgrade() -> None:
    _table("disclosures_by_index", "log_index", sa.BigInteger())
    op.execute(
        "INSERT INTO disclosures_by_index (log_index, grp, salt, value) "
        "SELECT r.log_index, d.grp, d.salt, d.value "
        "FROM disclosures d JOIN records r ON r.record_id = d.record_id"
    )
    op.drop_table("disclosures")
    op.rename_table("disclosures_by_index", "disclosures")


def downgrade() -> None:
    _table("disclosures_by_id", "record_id", sa.String(64))
    op.execute(
        "INSERT INTO disclosures_by_id (record_id, grp, salt, value) "
        "SELECT r.record_id, d.grp, d.salt, d.value "
        "FROM disclosures d JOIN records r ON r.log_index = d.log_index"
    )
    op.drop_table("disclosures")
    op.rename_table("disclosures_by_id", "disclosures")
